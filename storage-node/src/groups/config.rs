//! Coordinator settings.

use std::time::Duration;

/// Settings of the group coordinator; the defaults are Kafka's broker defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms` (default 3000): how long the first rebalance of an empty
    /// group waits for more members, extended by the same delay while members keep arriving (up
    /// to the rebalance timeout). Longer means fewer rebalances when a group starts; shorter means
    /// a faster start for single consumers.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (default 6000): JoinGroup with a shorter session timeout
    /// gets INVALID_SESSION_TIMEOUT. Lower lets clients detect failures faster, at the cost of
    /// more heartbeats and spurious expiries.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (default 1800000): the longest session timeout allowed.
    pub max_session_timeout_ms: i32,
    /// How long a new member may wait in its first JoinGroup before it is dropped (Kafka's
    /// fixed 300000 ms), so clients that disconnect mid-rebalance do not pile up.
    pub new_member_join_timeout_ms: u64,
    /// `group.max.size` (default unlimited, i.e. `i32::MAX`): members beyond it get
    /// GROUP_MAX_SIZE_REACHED.
    pub max_group_size: usize,
    /// `offset.metadata.max.bytes` (default 4096): larger commit metadata gets
    /// OFFSET_METADATA_TOO_LARGE.
    pub max_offset_metadata_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            new_member_join_timeout_ms: 300_000,
            max_group_size: i32::MAX as usize,
            max_offset_metadata_bytes: 4096,
        }
    }
}

impl GroupConfig {
    pub(crate) fn initial_delay(&self) -> Duration {
        Duration::from_millis(self.initial_rebalance_delay_ms)
    }

    pub(crate) fn new_member_join_timeout(&self) -> Duration {
        Duration::from_millis(self.new_member_join_timeout_ms)
    }
}
