//! The gateway's settings, validated once when the gateway is built.

use std::time::Duration;

/// Settings of one gateway process. Build with [`GatewayConfig::new`] and adjust fields; every
/// field documents its default and its trade-off.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The Kafka broker id this gateway presents itself as. Every partition's leader, every
    /// group coordinator and the controller are this id, because the gateway forwards them all.
    /// Default 1.
    pub broker_id: i32,
    /// Host name that Metadata and FindCoordinator responses advertise. Clients connect to it
    /// after bootstrapping, so it must be reachable by them (and, for the Java MSK IAM plugin,
    /// contain the region).
    pub advertised_host: String,
    /// Port advertised with `advertised_host`.
    pub advertised_port: u16,
    /// Largest request frame accepted from an authenticated connection. Default 100 MiB (the
    /// Kafka broker's `socket.request.max.bytes`). Larger frames close the connection. Higher
    /// values admit bigger produce requests at the cost of memory per connection.
    pub max_frame_bytes: usize,
    /// Largest frame accepted before authentication. Default 64 KiB: enough for any SASL
    /// payload, and small because `kafka-protocol` pre-allocates arrays from counts on the wire.
    pub max_unauthenticated_frame_bytes: usize,
    /// Simultaneous client connections; further connections wait in the accept queue.
    /// Default 10,000.
    pub max_connections: usize,
    /// Delay before a failed authentication is answered and the connection closed. Default
    /// 500 ms: librdkafka retries a failed login ~20 times a second, and the delay makes each
    /// retry cheap for the gateway. Shorter is friendlier to humans, longer to the CPU.
    pub auth_failure_delay: Duration,
    /// A connection idle (no request) this long is closed. Default 10 minutes (the Kafka
    /// broker's `connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// Longest time a response may take to be written (a client that stops reading is
    /// disconnected after it). Default 30 s; it also bounds how long shutdown can be held up by
    /// such a client.
    pub write_timeout: Duration,
    /// A storage node whose last heartbeat is older than this is not chosen as a group
    /// coordinator (unless no node is fresher). Default 30 s.
    pub node_liveness: Duration,
    /// How long the list of storage nodes (for group coordinators) is cached. Default 5 s;
    /// shorter reacts faster to node changes, at one metadata read per period.
    pub node_list_ttl: Duration,
    /// Producer ids fetched from metadata at a time. Default 1000; larger means fewer metadata
    /// writes and more ids lost when the gateway restarts (ids are plentiful).
    pub producer_id_block: i64,
}

impl GatewayConfig {
    /// A configuration with defaults, advertising `advertised_host:advertised_port`.
    pub fn new(advertised_host: impl Into<String>, advertised_port: u16) -> Self {
        Self {
            broker_id: 1,
            advertised_host: advertised_host.into(),
            advertised_port,
            max_frame_bytes: 100 * 1024 * 1024,
            max_unauthenticated_frame_bytes: 64 * 1024,
            max_connections: 10_000,
            auth_failure_delay: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(30),
            node_liveness: Duration::from_secs(30),
            node_list_ttl: Duration::from_secs(5),
            producer_id_block: 1000,
        }
    }

    /// Checks the settings; the gateway refuses to start with invalid ones.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.advertised_host.is_empty() {
            return Err(ConfigError("advertised_host must not be empty".into()));
        }
        if self.advertised_port == 0 {
            return Err(ConfigError("advertised_port must not be 0".into()));
        }
        if self.broker_id < 0 {
            return Err(ConfigError(format!(
                "broker_id must be >= 0, got {}",
                self.broker_id
            )));
        }
        // The size prefix is an i32, so no larger frame can exist.
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > i32::MAX as usize {
            return Err(ConfigError(format!(
                "max_frame_bytes must be between 1 KiB and 2 GiB, got {}",
                self.max_frame_bytes
            )));
        }
        if self.max_unauthenticated_frame_bytes < 1024
            || self.max_unauthenticated_frame_bytes > self.max_frame_bytes
        {
            return Err(ConfigError(format!(
                "max_unauthenticated_frame_bytes must be between 1 KiB and max_frame_bytes, got {}",
                self.max_unauthenticated_frame_bytes
            )));
        }
        if self.max_connections == 0 {
            return Err(ConfigError("max_connections must be at least 1".into()));
        }
        if self.producer_id_block < 1 {
            return Err(ConfigError("producer_id_block must be at least 1".into()));
        }
        Ok(())
    }
}

/// An invalid gateway setting; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid gateway config: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let cfg = GatewayConfig::new("localhost", 9092);
        assert_eq!(cfg.validate(), Ok(()));
        let mut bad = cfg.clone();
        bad.max_unauthenticated_frame_bytes = bad.max_frame_bytes + 1;
        let err = bad
            .validate()
            .expect_err("inverted frame limits are refused");
        assert!(err.0.contains("max_unauthenticated_frame_bytes"), "{err}");
        let mut bad = cfg;
        bad.advertised_port = 0;
        assert!(bad.validate().is_err());
    }
}
