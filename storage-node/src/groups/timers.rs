//! Deadlines of a group: session expiry, pending members, the join-phase timer and the sync
//! deadline. [`Group::tick`] applies the due ones; [`Group::next_deadline`] tells the waiting
//! requests when to look again.

use tokio::time::Instant;
use tracing::info;

use super::config::GroupConfig;
use super::error::GroupError;
use super::state::{later, Group, GroupState, JoinTimer};

impl Group {
    /// Applies every deadline that has passed by `now`: expired sessions and pending members,
    /// the join timer, the sync deadline. Returns whether anything changed.
    pub(crate) fn tick(&mut self, now: Instant, cfg: &GroupConfig) -> bool {
        let mut changed = false;
        // Each pass removes a member or moves a due timer into the future (see `later`), so this
        // terminates.
        loop {
            if self.state == GroupState::Dead {
                return changed;
            }
            if let Some(id) = self
                .pending_members
                .iter()
                .find(|(_, deadline)| **deadline <= now)
                .map(|(id, _)| id.clone())
            {
                self.pending_members.remove(&id);
                info!(group = %self.id, member = %id, "pending member expired");
                if self.state == GroupState::PreparingRebalance && self.has_all_members_joined() {
                    self.complete_join(now);
                }
                changed = true;
                continue;
            }
            if let Some(id) = self
                .members
                .iter()
                .find(|m| m.expiry(cfg).is_some_and(|at| at <= now))
                .map(|m| m.id.clone())
            {
                info!(group = %self.id, member = %id, "member session expired");
                self.remove_member_and_update(&id, &GroupError::UnknownMemberId, now, cfg);
                changed = true;
                continue;
            }
            if let Some(timer) = self.join_timer.filter(|t| t.at() <= now) {
                changed = true;
                match timer {
                    JoinTimer::Initial { remaining, .. }
                        if self.new_member_added && !remaining.is_zero() =>
                    {
                        self.new_member_added = false;
                        let delay = cfg.initial_delay().min(remaining);
                        self.join_timer = Some(JoinTimer::Initial {
                            at: later(now, delay),
                            remaining: remaining - delay,
                        });
                    }
                    _ => self.complete_join(now),
                }
                continue;
            }
            if self.sync_deadline.is_some_and(|at| at <= now) {
                self.sync_deadline = None;
                changed = true;
                if matches!(
                    self.state,
                    GroupState::CompletingRebalance | GroupState::Stable
                ) && !self.pending_sync.is_empty()
                {
                    let laggards: Vec<String> = self.pending_sync.drain().collect();
                    info!(group = %self.id, members = ?laggards, "members did not sync in time");
                    for id in &laggards {
                        self.remove_member(id, &GroupError::RebalanceInProgress);
                    }
                    self.prepare_rebalance(now, cfg, "members failed to sync");
                }
                continue;
            }
            return changed;
        }
    }

    /// The earliest instant at which [`Group::tick`] has something to do.
    pub(crate) fn next_deadline(&self, cfg: &GroupConfig) -> Option<Instant> {
        let members = self.members.iter().filter_map(|m| m.expiry(cfg));
        let pending = self.pending_members.values().copied();
        members
            .chain(pending)
            .chain(self.join_timer.map(JoinTimer::at))
            .chain(self.sync_deadline)
            .min()
    }
}
