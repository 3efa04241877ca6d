//! [`ControlPlaneConfig`]: the control plane's settings, validated once.

use std::time::Duration;

/// Settings of a [`crate::ControlPlane`]. [`Default`] gives the documented defaults.
#[derive(Clone, Debug)]
pub struct ControlPlaneConfig {
    /// The region this control plane serves (e.g. `us-east-1`): clusters are created in it,
    /// and SigV4 credential scopes must name it.
    pub region: String,
    /// What GetBootstrapBrokers answers as `bootstrapBrokerStringSaslIam` (the IAM listener,
    /// MSK port 9098). A template: `{cluster}`, `{cluster_id}`, `{account}` and `{region}` are
    /// replaced by the cluster's name, uuid, account and region, so each cluster can get its
    /// own bootstrap name (e.g. `boot-{cluster}.{account}.{region}.fjord.example:9098`); a plain
    /// `host:port` (the dev listener) is the same for every cluster.
    pub bootstrap_brokers: String,
    /// `bootstrapBrokerStringSaslScram` (SCRAM listener, MSK port 9096), same template; `None`
    /// omits it.
    pub bootstrap_brokers_scram: Option<String>,
    /// `bootstrapBrokerStringTls` (mTLS listener, MSK port 9094), same template; `None` omits
    /// it.
    pub bootstrap_brokers_tls: Option<String>,
    /// Largest accepted difference between a request's `X-Amz-Date` and the server clock
    /// (default 15 minutes, as AWS). Larger tolerates worse clocks but widens the window in
    /// which a captured request can be replayed.
    pub max_clock_skew_ms: i64,
    /// Largest request body read (default 1 MiB); larger requests are refused before any
    /// parsing.
    pub max_body_bytes: usize,
    /// Requests handled at once (default 256); more are refused with 429 rather than queued.
    pub max_concurrent_requests: usize,
    /// Longest a request may take, body upload included (default 30 s).
    pub request_timeout: Duration,
    /// The broker id the gateways report (default 1, the gateway's default), used as leader
    /// and replica of every partition in DescribeTopicPartitions.
    pub broker_id: i32,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_string(),
            bootstrap_brokers: "127.0.0.1:9092".to_string(),
            bootstrap_brokers_scram: None,
            bootstrap_brokers_tls: None,
            max_clock_skew_ms: 15 * 60 * 1000,
            max_body_bytes: 1024 * 1024,
            max_concurrent_requests: 256,
            request_timeout: Duration::from_secs(30),
            broker_id: 1,
        }
    }
}

/// A setting with an unusable value; the text names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid control-plane setting {field}: {reason}")]
pub struct ConfigError {
    /// The setting.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ControlPlaneConfig {
    /// Checks the settings once at startup.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_string(),
            })
        };
        let region_ok = !self.region.is_empty()
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return err(
                "region",
                "must be an AWS-style region name such as us-east-1",
            );
        }
        if self.bootstrap_brokers.trim().is_empty() {
            return err("bootstrap_brokers", "must not be empty");
        }
        if self.max_clock_skew_ms < 1000 {
            return err("max_clock_skew_ms", "must be at least 1000");
        }
        if self.max_body_bytes < 1024 {
            return err("max_body_bytes", "must be at least 1024");
        }
        if self.max_concurrent_requests == 0 {
            return err("max_concurrent_requests", "must be at least 1");
        }
        if self.request_timeout.is_zero() {
            return err("request_timeout", "must be positive");
        }
        if self.broker_id < 0 {
            return err("broker_id", "must be >= 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(ControlPlaneConfig::default().validate(), Ok(()));
        let bad = ControlPlaneConfig {
            region: "US_EAST".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("region"));
        let bad = ControlPlaneConfig {
            max_concurrent_requests: 0,
            ..Default::default()
        };
        assert_eq!(
            bad.validate().map_err(|e| e.field),
            Err("max_concurrent_requests")
        );
    }
}
