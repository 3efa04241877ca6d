//! The partition mutation quota (KIP-599) as the admin handlers apply it to one request.
//!
//! CreateTopics, CreatePartitions and DeleteTopics charge the partitions they create or delete
//! to the cluster's `partition-mutations-per-window` bucket (MSK Serverless: 250 per 5 minutes).
//! Like Kafka's controller mutation quota, there are two modes, by request version:
//! - strict (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+): while the bucket is in
//!   debt, each remaining topic is refused with THROTTLING_QUOTA_EXCEEDED and the response's
//!   `throttle_time_ms` says when the bucket is out of debt; a topic admitted while the bucket
//!   is not in debt goes through whole, even if it takes the bucket into debt (so one topic
//!   larger than the window's allowance can still be created);
//! - permissive (older versions, whose clients do not know the error): every topic goes
//!   through and the response is throttled by the debt it leaves.
//!
//! Validate-only requests charge nothing. A topic is charged once its mutation succeeded, so a
//! refusal for another reason (already exists, invalid config) costs nothing.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::{Buckets, ClusterEntry};
use crate::admin::Failure;

/// The first version of each mutating API whose clients understand THROTTLING_QUOTA_EXCEEDED.
pub fn strict_since(api: ApiKey) -> Option<i16> {
    match api {
        ApiKey::CreateTopics => Some(6),
        ApiKey::CreatePartitions => Some(3),
        ApiKey::DeleteTopics => Some(5),
        _ => None,
    }
}

/// One request's view of its cluster's partition mutation quota; see the module docs.
#[derive(Debug)]
pub struct MutationQuota {
    buckets: Option<Arc<Buckets>>,
    strict: bool,
    throttle_ms: u64,
}

impl MutationQuota {
    /// No quota (a cluster without an entry, and tests of other behaviour).
    pub fn unlimited() -> Self {
        Self {
            buckets: None,
            strict: true,
            throttle_ms: 0,
        }
    }

    /// The quota of `entry`'s cluster for a request of `api` at `version`.
    pub fn for_request(entry: &ClusterEntry, api: ApiKey, version: i16) -> Self {
        Self {
            buckets: Some(entry.quotas()),
            strict: strict_since(api).is_some_and(|v| version >= v),
            throttle_ms: 0,
        }
    }

    /// Before mutating one topic: refuses it (strict mode) while the bucket is in debt.
    pub(crate) fn admit(&mut self, now_ms: i64) -> Result<(), Failure> {
        let Some(b) = &self.buckets else {
            return Ok(());
        };
        if !self.strict {
            return Ok(());
        }
        let wait = b.quotas.partition_mutations.throttle_ms(now_ms);
        if wait == 0 {
            return Ok(());
        }
        self.throttle_ms = self.throttle_ms.max(wait);
        let limits = &b.limits;
        let share = if b.gateways > 1 {
            format!(
                " (this gateway enforces {}, its 1/{} share)",
                b.quotas.limits().partition_mutations_per_window,
                b.gateways
            )
        } else {
            String::new()
        };
        Err(Failure::new(
            ResponseError::ThrottlingQuotaExceeded,
            format!(
                "the cluster's partition mutation quota of {} partitions created or deleted \
                 per {}{share} is exhausted; retry in {wait} ms",
                limits.partition_mutations_per_window,
                window(limits.partition_mutation_window_ms)
            ),
        ))
    }

    /// After a topic's mutation of `partitions` partitions succeeded.
    pub(crate) fn record(&mut self, now_ms: i64, partitions: u64) {
        let Some(b) = &self.buckets else {
            return;
        };
        let debt = b.quotas.partition_mutations.record(now_ms, partitions);
        if !self.strict {
            self.throttle_ms = self.throttle_ms.max(debt);
        }
    }

    /// The response's `throttle_time_ms`: how long the client should wait before mutating again.
    pub fn throttle_ms(&self) -> i32 {
        i32::try_from(self.throttle_ms).unwrap_or(i32::MAX)
    }
}

/// A window as MSK states it: whole seconds when it is, else milliseconds.
fn window(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}
