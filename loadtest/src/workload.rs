//! Workload files: OpenMessaging Benchmark's YAML shape, plus Kafka client settings and a few
//! extensions (durations in seconds, a backlog to build before consumers start, idle
//! connections).
//!
//! ```yaml
//! name: max-throughput-1kb-8p
//! topics: 1
//! partitionsPerTopic: 8
//! messageSize: 1024
//! randomBytesRatio: 0.5       # share of each payload that is random (the rest is zeros)
//! keyDistributor: NO_KEY      # NO_KEY | RANDOM_NANO | KEY_ROUND_ROBIN
//! producersPerTopic: 2
//! subscriptionsPerTopic: 1
//! consumerPerSubscription: 2
//! producerRate: 0             # messages/s over all producers; 0 = as fast as possible
//! consumerBacklogSizeGB: 0    # build this backlog before consumers start (catch-up read)
//! warmupDurationMinutes: 0.5  # or warmupDurationSeconds
//! testDurationMinutes: 2      # or testDurationSeconds
//! producer: { acks: all, lingerMs: 5, batchSize: 131072, compression: none }
//! consumer: { fetchMinBytes: 1, fetchMaxWaitMs: 100 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::LoadtestError;

/// How producers choose message keys (OMB's `KeyDistributorType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyDistributor {
    /// No key: librdkafka spreads messages over partitions (sticky per batch).
    #[default]
    NoKey,
    /// A random 64-bit key per message.
    RandomNano,
    /// Keys cycle through a counter, so partitions are hit in turn.
    KeyRoundRobin,
}

/// Producer settings, mapped onto librdkafka properties.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProducerSettings {
    /// `acks`: `all`, `1` or `0`.
    pub acks: String,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `batch.size` in bytes.
    pub batch_size: u32,
    /// `compression.type`: none, gzip, snappy, lz4, zstd.
    pub compression: String,
    /// `enable.idempotence`.
    pub idempotence: bool,
    /// Further librdkafka producer properties, passed through as they are.
    pub extra: BTreeMap<String, String>,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        Self {
            acks: "all".into(),
            linger_ms: 1,
            batch_size: 131_072,
            compression: "none".into(),
            idempotence: false,
            extra: BTreeMap::new(),
        }
    }
}

/// Consumer settings, mapped onto librdkafka properties.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ConsumerSettings {
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: u32,
    /// `fetch.wait.max.ms`.
    pub fetch_max_wait_ms: u32,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: u32,
    /// Further librdkafka consumer properties, passed through as they are.
    pub extra: BTreeMap<String, String>,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            fetch_min_bytes: 1,
            fetch_max_wait_ms: 100,
            max_partition_fetch_bytes: 1_048_576,
            extra: BTreeMap::new(),
        }
    }
}

/// One workload file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    /// Name, used in reports.
    pub name: String,
    /// Number of topics.
    pub topics: u32,
    /// Partitions in each topic.
    pub partitions_per_topic: u32,
    /// Payload size in bytes (at least the 16-byte timestamp header).
    pub message_size: u32,
    /// Share of each payload that is random; the rest is zeros (compressibility).
    #[serde(default = "one")]
    pub random_bytes_ratio: f64,
    /// Accepted for OMB compatibility; payloads are always generated.
    #[serde(default)]
    pub use_randomized_payloads: Option<bool>,
    /// Accepted for OMB compatibility and ignored: payloads are generated, never read from a file.
    #[serde(default)]
    pub payload_file: Option<String>,
    /// Distinct payloads each producer cycles through.
    #[serde(default = "default_pool")]
    pub randomized_payload_pool_size: u32,
    /// Key distribution.
    #[serde(default)]
    pub key_distributor: KeyDistributor,
    /// Producers per topic.
    pub producers_per_topic: u32,
    /// Subscriptions (consumer groups) per topic; 0 = produce only.
    pub subscriptions_per_topic: u32,
    /// Consumers in each subscription.
    pub consumer_per_subscription: u32,
    /// Target messages per second over all producers; 0 = as fast as possible.
    pub producer_rate: f64,
    /// Build this much backlog (GB, 10^9 bytes) before consumers start.
    #[serde(default, rename = "consumerBacklogSizeGB")]
    pub consumer_backlog_size_gb: f64,
    /// Warm-up in minutes (not measured).
    #[serde(default)]
    pub warmup_duration_minutes: f64,
    /// Warm-up in seconds; overrides the minutes when set.
    #[serde(default)]
    pub warmup_duration_seconds: Option<f64>,
    /// Measured window in minutes.
    #[serde(default)]
    pub test_duration_minutes: f64,
    /// Measured window in seconds; overrides the minutes when set.
    #[serde(default)]
    pub test_duration_seconds: Option<f64>,
    /// Authenticated connections opened and kept idle for the whole run.
    #[serde(default)]
    pub idle_connections: u32,
    /// Producer settings.
    #[serde(default)]
    pub producer: ProducerSettings,
    /// Consumer settings.
    #[serde(default)]
    pub consumer: ConsumerSettings,
}

fn one() -> f64 {
    1.0
}

fn default_pool() -> u32 {
    64
}

/// Bytes of the header each payload starts with (see [`crate::payload`]).
pub const HEADER_LEN: u32 = 16;

impl Workload {
    /// Reads and validates a workload file.
    pub fn load(path: &Path) -> Result<Workload, LoadtestError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadtestError::ReadWorkload {
            path: path.to_path_buf(),
            source,
        })?;
        let w: Workload =
            serde_yaml::from_str(&text).map_err(|source| LoadtestError::ParseWorkload {
                path: path.to_path_buf(),
                source,
            })?;
        w.validate()?;
        Ok(w)
    }

    /// Checks the values a run depends on.
    pub fn validate(&self) -> Result<(), LoadtestError> {
        let bad = |m: String| Err(LoadtestError::InvalidWorkload(m));
        if self.topics == 0 || self.partitions_per_topic == 0 {
            return bad("topics and partitionsPerTopic must be at least 1".into());
        }
        if self.message_size < HEADER_LEN {
            return bad(format!(
                "messageSize must be at least {HEADER_LEN} (the timestamp header)"
            ));
        }
        if !(0.0..=1.0).contains(&self.random_bytes_ratio) {
            return bad("randomBytesRatio must be between 0 and 1".into());
        }
        if self.randomized_payload_pool_size == 0 {
            return bad("randomizedPayloadPoolSize must be at least 1".into());
        }
        if self.subscriptions_per_topic > 0 && self.consumer_per_subscription == 0 {
            return bad("consumerPerSubscription must be at least 1 when subscribing".into());
        }
        if !self.producer_rate.is_finite() || self.producer_rate < 0.0 {
            return bad("producerRate must be 0 (max) or positive".into());
        }
        if !self.consumer_backlog_size_gb.is_finite() || self.consumer_backlog_size_gb < 0.0 {
            return bad("consumerBacklogSizeGB must not be negative".into());
        }
        if self.consumer_backlog_size_gb > 0.0 && self.subscriptions_per_topic == 0 {
            return bad("consumerBacklogSizeGB needs at least one subscription".into());
        }
        for (what, secs) in [
            ("warm-up", self.warmup()),
            ("test duration", self.test_duration()),
        ] {
            if secs.is_none() {
                return bad(format!("{what} must be a finite, non-negative time"));
            }
        }
        if self.test_duration() == Some(Duration::ZERO) {
            return bad("testDurationMinutes or testDurationSeconds must be set".into());
        }
        Ok(())
    }

    /// The warm-up, or `None` if it is negative or not finite.
    pub fn warmup(&self) -> Option<Duration> {
        seconds(
            self.warmup_duration_seconds
                .unwrap_or(self.warmup_duration_minutes * 60.0),
        )
    }

    /// The measured window, or `None` if it is negative or not finite.
    pub fn test_duration(&self) -> Option<Duration> {
        seconds(
            self.test_duration_seconds
                .unwrap_or(self.test_duration_minutes * 60.0),
        )
    }

    /// The backlog to build before consumers start, in bytes.
    pub fn backlog_bytes(&self) -> u64 {
        (self.consumer_backlog_size_gb * 1e9) as u64
    }
}

fn seconds(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const OMB: &str = "
name: 1 topic / 16 partitions / 1kb
topics: 1
partitionsPerTopic: 16
messageSize: 1024
payloadFile: payload/payload-1Kb.data
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 50000
consumerBacklogSizeGB: 0
testDurationMinutes: 15
";

    #[test]
    fn parses_a_stock_omb_workload() {
        let w: Workload = serde_yaml::from_str(OMB).unwrap();
        w.validate().unwrap();
        assert_eq!(w.partitions_per_topic, 16);
        assert_eq!(w.key_distributor, KeyDistributor::NoKey);
        assert_eq!(w.test_duration(), Some(Duration::from_secs(900)));
        assert_eq!(w.warmup(), Some(Duration::ZERO));
        assert_eq!(w.producer.acks, "all");
    }

    #[test]
    fn extensions_and_overrides() {
        let text = format!(
            "{OMB}testDurationSeconds: 3\nkeyDistributor: KEY_ROUND_ROBIN\n\
             producer: {{ acks: '1', lingerMs: 0, extra: {{ queue.buffering.max.kbytes: '1024' }} }}\n"
        );
        let w: Workload = serde_yaml::from_str(&text).unwrap();
        assert_eq!(w.test_duration(), Some(Duration::from_secs(3)));
        assert_eq!(w.key_distributor, KeyDistributor::KeyRoundRobin);
        assert_eq!(w.producer.acks, "1");
        assert_eq!(w.producer.batch_size, 131_072);
        assert_eq!(w.producer.extra["queue.buffering.max.kbytes"], "1024");
    }

    #[test]
    fn rejects_typos_and_nonsense() {
        let typo = format!("{OMB}partitionPerTopic: 3\n");
        assert!(serde_yaml::from_str::<Workload>(&typo).is_err());
        let mut w: Workload = serde_yaml::from_str(OMB).unwrap();
        w.message_size = 8;
        assert!(w.validate().is_err());
        w.message_size = 100;
        w.random_bytes_ratio = 1.5;
        assert!(w.validate().is_err());
        w.random_bytes_ratio = 0.5;
        w.test_duration_minutes = -1.0;
        assert!(w.validate().is_err());
    }

    #[test]
    fn bundled_workloads_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                Workload::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 6, "expected the six bundled workloads, found {n}");
    }
}
