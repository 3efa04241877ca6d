//! The request layer under every DynamoDB operation: strongly consistent reads, paginated
//! queries, and transactions retried with jittered backoff.
//!
//! The SDK's own standard retry mode already retries throttling and transient HTTP failures of a
//! single request with jittered exponential backoff. A transaction adds two things it does not
//! cover: a cancellation because another transaction touched the same item
//! (`TransactionConflict`) or because one item was throttled, which must be retried here; and
//! idempotency, which comes from one `ClientRequestToken` per logical call, reused by every retry,
//! so a retry of a transaction that was applied but whose answer was lost succeeds instead of
//! failing its own condition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use rand::Rng;

use super::DynamoStore;
use crate::error::{MetadataError, Result};

/// One stored item.
pub(super) type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on the actions of one `TransactWriteItems` call.
pub(super) const MAX_TRANSACTION_ITEMS: usize = 100;

/// Attempts of a transaction cancelled for a retryable reason before giving up.
const TRANSACTION_ATTEMPTS: u32 = 12;
const BACKOFF_BASE: Duration = Duration::from_millis(20);
const BACKOFF_CAP: Duration = Duration::from_millis(1_000);

/// Counts of the requests a store made, by kind (relaxed atomics: one increment per request).
#[derive(Debug, Default)]
pub(super) struct RequestCounters {
    reads: AtomicU64,
    read_items: AtomicU64,
    writes: AtomicU64,
    written_items: AtomicU64,
}

impl RequestCounters {
    /// A read request that returned `items` items.
    pub(super) fn read(&self, items: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.read_items.fetch_add(items as u64, Ordering::Relaxed);
    }

    /// A write request (a single write or a transaction) of `items` items.
    pub(super) fn write(&self, items: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.written_items
            .fetch_add(items as u64, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> super::DynamoRequestCounts {
        super::DynamoRequestCounts {
            read_requests: self.reads.load(Ordering::Relaxed),
            items_read: self.read_items.load(Ordering::Relaxed),
            write_requests: self.writes.load(Ordering::Relaxed),
            items_written: self.written_items.load(Ordering::Relaxed),
        }
    }
}

/// How a transaction ended, when it was not an error.
pub(super) enum TxOutcome {
    /// Every action was applied.
    Applied,
    /// A condition failed: the index of each action whose condition failed.
    ConditionFailed(Vec<usize>),
}

/// Maps any SDK failure to the layer's error. A missing table is named so the operator knows to
/// create it.
pub(super) fn backend<E, R>(op: &str, e: SdkError<E, R>) -> MetadataError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(code) = e.code() {
        let message = e.message().unwrap_or_default();
        if code == "ResourceNotFoundException" {
            return MetadataError::Backend(format!(
                "{op}: metadata table not found ({message}); create it with `fjord admin \
                 init-metadata`"
            ));
        }
        return MetadataError::Backend(format!("{op}: {code}: {message}"));
    }
    MetadataError::Backend(format!("{op}: {}", DisplayChain(&e)))
}

/// Prints an error with its sources (the SDK's top-level message alone is often just
/// "dispatch failure").
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// Full-jitter exponential backoff for the `attempt`-th retry (0-based).
pub(super) fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(10));
    let cap = exp.min(BACKOFF_CAP);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

/// Whether a cancellation reason code is worth retrying (nothing was applied, and the cause is
/// contention or capacity rather than a condition).
fn retryable_reason(code: &str) -> bool {
    matches!(
        code,
        "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
    )
}

impl DynamoStore {
    /// A strongly consistent read of one item.
    pub(super) async fn get_item(&self, op: &str, pk: &str, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend(op, e))?;
        self.counters.read(usize::from(out.item.is_some()));
        Ok(out.item)
    }

    /// All items of partition `pk` whose sort key lies in `[lo, hi]` (both inclusive), in sort
    /// key order (reversed if `!forward`), following pagination; at most `limit` items. Strongly
    /// consistent.
    pub(super) async fn query_range(
        &self,
        op: &str,
        pk: &str,
        lo: &str,
        hi: &str,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":lo", s(lo))
                .expression_attribute_values(":hi", s(hi))
                .consistent_read(true)
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            if let Some(limit) = limit {
                let left = limit.saturating_sub(out.len()).max(1);
                req = req.limit(i32::try_from(left).unwrap_or(i32::MAX));
            }
            let page = req.send().await.map_err(|e| backend(op, e))?;
            self.counters.read(page.items().len());
            out.extend(page.items.unwrap_or_default());
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(usize::MAX));
                return Ok(out);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// All items of partition `pk` whose sort key starts with `prefix`, in order.
    pub(super) async fn query_prefix(&self, op: &str, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        // Every sort key this backend writes is printable ASCII, so `prefix + U+FFFF` bounds
        // all keys with the prefix from above.
        let hi = format!("{prefix}\u{ffff}");
        self.query_range(op, pk, prefix, &hi, true, None).await
    }

    /// All items of the node index partition `gpk`, in order, following pagination. Index reads
    /// are eventually consistent (DynamoDB offers nothing else on a GSI).
    pub(super) async fn query_node_index(&self, op: &str, gpk: &str) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(super::NODE_INDEX)
                .key_condition_expression("gpk = :g")
                .expression_attribute_values(":g", s(gpk))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend(op, e))?;
            self.counters.read(page.items().len());
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Runs one transaction (at most [`MAX_TRANSACTION_ITEMS`] actions), retrying contention and
    /// throttling with jittered backoff under one idempotency token.
    pub(super) async fn transact(
        &self,
        op: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<TxOutcome> {
        if items.is_empty() {
            return Ok(TxOutcome::Applied);
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(MetadataError::InvalidArgument(format!(
                "{op}: {} writes exceed DynamoDB's {MAX_TRANSACTION_ITEMS} per transaction",
                items.len()
            )));
        }
        let token = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            // A cancelled transaction is billed too, so every attempt counts.
            self.counters.write(items.len());
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(TxOutcome::Applied),
                Err(e) => e,
            };
            let retry = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let codes: Vec<&str> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    let failed: Vec<usize> = codes
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| **c == "ConditionalCheckFailed")
                        .map(|(i, _)| i)
                        .collect();
                    if !failed.is_empty() {
                        return Ok(TxOutcome::ConditionFailed(failed));
                    }
                    codes.iter().any(|c| retryable_reason(c))
                }
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => true,
                _ => false,
            };
            if !retry || attempt + 1 >= TRANSACTION_ATTEMPTS {
                return Err(backend(op, err));
            }
            let wait = backoff(attempt);
            tracing::debug!(op, attempt, ?wait, "transaction contended; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A string attribute.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Reads a string attribute.
pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        other => Err(MetadataError::Corrupt(format!(
            "attribute {name} is not a string: {other:?}"
        ))),
    }
}

/// Reads a number attribute as `i64`.
pub(super) fn get_n(item: &Item, name: &str) -> Result<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|e| MetadataError::Corrupt(format!("attribute {name}={v}: {e}"))),
        other => Err(MetadataError::Corrupt(format!(
            "attribute {name} is not a number: {other:?}"
        ))),
    }
}

/// Decodes the JSON record kept in attribute `d`.
pub(super) fn record<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T> {
    Ok(serde_json::from_str(get_s(item, "d")?)?)
}

/// Encodes a record for attribute `d`.
pub(super) fn to_record<T: serde::Serialize>(v: &T) -> Result<AttributeValue> {
    serde_json::to_string(v)
        .map(AttributeValue::S)
        .map_err(|e| MetadataError::InvalidArgument(format!("record does not encode: {e}")))
}
