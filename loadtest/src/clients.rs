//! librdkafka client contexts: they mint MSK IAM tokens when librdkafka asks (served from
//! `poll`, which `ThreadedProducer` and the consumer threads call), record acknowledgements,
//! and notice the first partition assignment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rdkafka::client::OAuthToken;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use crate::connection::TokenSource;
use crate::stats::Stats;

fn token(tokens: &Option<TokenSource>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    match tokens {
        Some(t) => t.token(SystemTime::now()),
        None => Err("OAUTHBEARER requested but no MSK IAM credentials are configured".into()),
    }
}

/// Producer context: the delivery opaque is the send time in microseconds since `epoch`.
pub struct ProducerCtx {
    /// Token source for OAUTHBEARER.
    pub tokens: Option<TokenSource>,
    /// Where acknowledgements are counted.
    pub stats: Arc<Stats>,
    /// The run's monotonic epoch.
    pub epoch: Instant,
}

impl ClientContext for ProducerCtx {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    /// With `statistics.interval.ms` in the workload's producer `extra`, logs librdkafka's own
    /// view of each broker: time in its queue (int_latency) versus the round trip (rtt). That
    /// tells a client-side backlog from a slow server.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for b in statistics.brokers.values() {
            let (Some(q), Some(rtt)) = (&b.int_latency, &b.rtt) else {
                continue;
            };
            if b.tx == 0 {
                continue;
            }
            tracing::info!(
                broker = %b.name,
                queue_p50_us = q.p50,
                queue_p99_us = q.p99,
                rtt_p50_us = rtt.p50,
                rtt_p99_us = rtt.p99,
                waiting_responses = b.waitresp_cnt,
                "librdkafka producer statistics"
            );
        }
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        token(&self.tokens)
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(m) => {
                let now_us = self.epoch.elapsed().as_micros() as u64;
                let latency = now_us.saturating_sub(sent_us as u64);
                self.stats.record_ack(m.payload_len(), latency);
            }
            Err((e, _)) => {
                self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.note_error(format!("delivery: {e}"));
            }
        }
    }
}

/// Consumer context: flags `assigned` after the first rebalance that assigns partitions.
pub struct ConsumerCtx {
    /// Token source for OAUTHBEARER.
    pub tokens: Option<TokenSource>,
    /// Set once the group has given this consumer its assignment (possibly empty).
    pub assigned: Arc<AtomicBool>,
}

impl ClientContext for ConsumerCtx {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        token(&self.tokens)
    }
}

impl ConsumerContext for ConsumerCtx {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.assigned.store(true, Ordering::Release);
        }
    }
}
