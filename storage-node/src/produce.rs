//! The produce path: validate, assign offsets under a short partition lock while enqueueing to
//! the WAL, wait for the covering fsync, then publish in WAL order (high watermark, tail cache,
//! pending uploads, long-poll wake-ups).
//!
//! Publication follows the WAL order (a global append sequence), not the order in which fsync
//! waiters happen to wake up: that keeps each partition's high watermark contiguous and lets the
//! uploader trim the WAL exactly up to what it has uploaded.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;
use tracing::{debug, error, info_span, warn, Instrument};

use crate::api::*;
use crate::node::StorageNode;
use crate::partition::batch::{self, BatchHeader};
use crate::partition::cache::CachedBatch;
use crate::partition::codes::{KAFKA_STORAGE_ERROR, MESSAGE_TOO_LARGE, NOT_LEADER_OR_FOLLOWER};
use crate::partition::producer::SeqCheck;
use crate::partition::{Partition, PartitionKey};
use crate::wal::{WalPosition, WalRecord, WalTicket};

/// Orders appends as the WAL does, and holds completions until all earlier ones are in.
#[derive(Default)]
pub(crate) struct Sequencer {
    next_seq: u64,
    next_publish: u64,
    done: BTreeMap<u64, (Completion, WalPosition)>,
}

/// One durable partition append, ready to publish.
pub(crate) struct Completion {
    partition: Arc<Partition>,
    last_offset: i64,
    bytes: Bytes,
    /// Per batch: base offset, last offset, max timestamp, byte range in `bytes`.
    batches: Vec<(i64, i64, i64, Range<usize>)>,
}

impl Completion {
    fn new(
        partition: Arc<Partition>,
        bytes: Bytes,
        headers: &[BatchHeader],
        base: i64,
        append_ms: Option<i64>,
    ) -> Self {
        let mut batches = Vec::with_capacity(headers.len());
        let (mut at, mut off) = (0usize, base);
        for h in headers {
            let last = off + i64::from(h.last_offset_delta);
            batches.push((
                off,
                last,
                append_ms.unwrap_or(h.max_timestamp),
                at..at + h.total_len,
            ));
            at += h.total_len;
            off = last + 1;
        }
        Self {
            partition,
            last_offset: off - 1,
            bytes,
            batches,
        }
    }

    /// Rebuilds a completion from a recovered WAL record, replaying its producer state.
    /// `None` when the record is already tiered or does not parse.
    pub(crate) fn replay(partition: Arc<Partition>, r: WalRecord) -> Option<Self> {
        let scanned = match batch::scan(&r.batches) {
            Ok(s) => s,
            Err(e) => {
                error!(topic_id = %r.topic_id, partition = r.partition, base = r.base_offset, "unreadable WAL record skipped: {e}");
                return None;
            }
        };
        let batches = {
            let mut st = partition.state.lock();
            if r.last_offset < st.tiered_end {
                return None;
            }
            if r.base_offset != st.next_offset {
                warn!(topic_id = %r.topic_id, partition = r.partition, expected = st.next_offset, got = r.base_offset, "WAL record does not continue the log");
            }
            for (h, _) in &scanned {
                st.producers.record(h, h.base_offset);
            }
            st.next_offset = r.last_offset + 1;
            scanned
                .into_iter()
                .map(|(h, range)| (h.base_offset, h.last_offset(), h.max_timestamp, range))
                .collect()
        };
        Some(Self {
            partition,
            last_offset: r.last_offset,
            bytes: r.batches,
            batches,
        })
    }
}

/// One published WAL record waiting for upload.
pub(crate) struct PendingRecord {
    pub(crate) partition: Arc<Partition>,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) bytes: Bytes,
}

impl PendingRecord {
    /// Its partition.
    pub(crate) fn key(&self) -> PartitionKey {
        self.partition.key
    }
}

/// Durable data not yet in object storage, in WAL order.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) records: Vec<PendingRecord>,
    /// Bytes published and not yet uploaded (including an upload in progress).
    pub(crate) bytes: u64,
    /// Position just after the last published record: everything before it is published.
    pub(crate) published_pos: Option<WalPosition>,
    /// Publish sequence of the last published batch (tail-cache eviction order).
    pub(crate) publish_seq: u64,
    /// The WAL was trimmed up to here.
    pub(crate) trimmed_to: Option<WalPosition>,
}

/// One partition of a produce after its offsets were assigned.
enum Sequenced {
    /// Answered already (refused before anything was queued).
    Done(ProducePartitionResult),
    /// Queued in the WAL (or a duplicate of an earlier append).
    Pending {
        partition: Arc<Partition>,
        step: Step,
        append_ms: Option<i64>,
    },
}

enum Step {
    Refused(i16, String),
    Duplicate {
        base: i64,
        last: i64,
    },
    Appended {
        seq: u64,
        ticket: WalTicket,
        completion: Completion,
    },
}

fn refused(code: i16, msg: impl Into<String>) -> ProducePartitionResult {
    ProducePartitionResult {
        error_code: code,
        error_message: Some(msg.into()),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
    }
}

impl StorageNode {
    /// Appends every partition of `req` and answers once they are durable and published.
    /// `sequenced` is dropped as soon as every partition's offsets are assigned (or it was
    /// refused): a produce the caller sends after that lands after this one everywhere.
    pub(crate) async fn handle_produce(
        &self,
        req: ProduceRequest,
        sequenced: Option<oneshot::Sender<()>>,
    ) -> Result<ProduceResponse, NodeError> {
        if self.is_stopped() {
            return Err(NodeError::Unavailable(
                "node is not accepting writes".into(),
            ));
        }
        let now = self.clock.now_ms();
        let spans: Vec<_> = req
            .partitions
            .iter()
            .map(|pp| {
                info_span!("produce_partition", topic_id = %pp.topic_id, partition = pp.partition, bytes = pp.records.len())
            })
            .collect();
        let steps = futures::future::join_all(
            req.partitions
                .iter()
                .zip(&spans)
                .map(|(p, span)| self.sequence_partition(p, now).instrument(span.clone())),
        )
        .await;
        drop(sequenced);
        let results = futures::future::join_all(
            steps
                .into_iter()
                .zip(spans)
                .map(|(step, span)| self.finish_partition(step).instrument(span)),
        )
        .await;
        Ok(ProduceResponse {
            partitions: results,
        })
    }

    /// Validates one partition's batches and assigns their offsets, queueing them in the WAL:
    /// after this the partition's order is fixed.
    async fn sequence_partition(&self, pp: &ProducePartition, now_ms: i64) -> Sequenced {
        let partition = match self.partition((pp.topic_id, pp.partition)).await {
            Ok(p) => p,
            Err((code, msg)) => return Sequenced::Done(refused(code, msg)),
        };
        let headers = match batch::validate(&pp.records, pp.limits.max_message_bytes) {
            Ok(h) => h,
            Err(e) => {
                debug!("batch refused: {e}");
                return Sequenced::Done(refused(e.code(), e.to_string()));
            }
        };
        // Checked here so that the WAL never refuses an append after offsets were assigned.
        if pp.records.len() > crate::wal::MAX_BATCH_BYTES {
            return Sequenced::Done(refused(
                MESSAGE_TOO_LARGE,
                format!(
                    "{} bytes in one partition exceed the {} byte write limit",
                    pp.records.len(),
                    crate::wal::MAX_BATCH_BYTES
                ),
            ));
        }
        if !self.wait_for_upload_room().await {
            return Sequenced::Done(refused(KAFKA_STORAGE_ERROR, "storage node stopped"));
        }
        let permit = match self.wal.reserve().await {
            Ok(p) => p,
            Err(e) => return Sequenced::Done(self.fatal(e)),
        };
        let append_ms = pp.limits.log_append_time.then_some(now_ms);
        let step = {
            let mut st = partition.state.lock();
            if st.fenced {
                Step::Refused(
                    NOT_LEADER_OR_FOLLOWER,
                    "partition moved to another node".into(),
                )
            } else {
                // Multi-batch produces check against a scratch copy so a refusal leaves no trace.
                let multi = headers.len() > 1 && headers.iter().any(|h| h.producer_id >= 0);
                let mut scratch = multi.then(|| st.producers.clone());
                let mut refusal = None;
                let mut dup = None;
                let mut off = st.next_offset;
                for h in &headers {
                    let table = scratch.as_mut().unwrap_or(&mut st.producers);
                    match table.check(h) {
                        Ok(SeqCheck::Append) => {
                            if multi {
                                table.record(h, off);
                            }
                            off += i64::from(h.last_offset_delta) + 1;
                        }
                        Ok(SeqCheck::Duplicate {
                            base_offset,
                            last_offset,
                        }) => {
                            dup.get_or_insert((base_offset, last_offset));
                        }
                        Err(e) => {
                            refusal = Some(Step::Refused(e.code(), e.to_string()));
                            break;
                        }
                    }
                }
                if let Some(r) = refusal {
                    r
                } else if let Some((base, last)) = dup {
                    // Kafka answers a retried batch with its original offset, not an error.
                    Step::Duplicate { base, last }
                } else {
                    let base = st.next_offset;
                    let bytes = batch::assign(&pp.records, &headers, base, st.epoch, append_ms);
                    match scratch {
                        Some(t) => st.producers = t,
                        None => {
                            let mut o = base;
                            for h in &headers {
                                st.producers.record(h, o);
                                o += i64::from(h.last_offset_delta) + 1;
                            }
                        }
                    }
                    st.next_offset = off;
                    let record = WalRecord {
                        topic_id: pp.topic_id,
                        partition: pp.partition,
                        epoch: st.epoch,
                        base_offset: base,
                        last_offset: off - 1,
                        batches: bytes.clone(),
                    };
                    let completion =
                        Completion::new(partition.clone(), bytes, &headers, base, append_ms);
                    let mut sq = self.sequencer.lock();
                    let seq = sq.next_seq;
                    sq.next_seq += 1;
                    let ticket = permit.append(vec![record]);
                    Step::Appended {
                        seq,
                        ticket,
                        completion,
                    }
                }
            }
        };
        Sequenced::Pending {
            partition,
            step,
            append_ms,
        }
    }

    /// Waits until a sequenced append is durable and published, and answers it.
    async fn finish_partition(&self, sequenced: Sequenced) -> ProducePartitionResult {
        let (partition, step, append_ms) = match sequenced {
            Sequenced::Done(result) => return result,
            Sequenced::Pending {
                partition,
                step,
                append_ms,
            } => (partition, step, append_ms),
        };
        let (base, last) = match step {
            Step::Refused(code, msg) => return refused(code, msg),
            Step::Duplicate { base, last } => (base, last),
            Step::Appended {
                seq,
                ticket,
                completion,
            } => {
                let (base, last) = (
                    completion.batches.first().map_or(-1, |b| b.0),
                    completion.last_offset,
                );
                match ticket.durable().await {
                    Ok(pos) => self.complete(seq, completion, pos),
                    Err(e) => return self.fatal(e),
                }
                (base, last)
            }
        };
        // Acked data is durable already; waiting for publication too makes it readable as soon
        // as the client sees the ack (and a duplicate is never acked before its original).
        if !self.wait_published(&partition, last).await {
            return refused(
                KAFKA_STORAGE_ERROR,
                "storage node stopped before the write was published",
            );
        }
        let log_start_offset = partition.state.lock().log_start;
        ProducePartitionResult {
            error_code: NO_ERROR,
            error_message: None,
            base_offset: base,
            log_append_time_ms: append_ms.unwrap_or(-1),
            log_start_offset,
        }
    }

    fn fatal(&self, e: crate::wal::WalError) -> ProducePartitionResult {
        error!("WAL failed, node stops accepting writes: {e}");
        self.stopped.send_replace(true);
        refused(KAFKA_STORAGE_ERROR, format!("write-ahead log failed: {e}"))
    }

    /// Waits while too much data awaits upload. False if the node stopped.
    async fn wait_for_upload_room(&self) -> bool {
        let mut stopped = self.stopped.subscribe();
        loop {
            let notified = self.pending_drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending.lock().bytes < self.max_pending_bytes {
                return !*stopped.borrow();
            }
            self.tier_wake.notify_one();
            tokio::select! {
                _ = notified => {}
                _ = stopped.wait_for(|s| *s) => return false,
            }
        }
    }

    async fn wait_published(&self, p: &Partition, last: i64) -> bool {
        let mut hw = p.hw.subscribe();
        let mut stopped = self.stopped.subscribe();
        tokio::select! {
            r = hw.wait_for(|h| *h > last) => r.is_ok(),
            _ = stopped.wait_for(|s| *s) => *p.hw.borrow() > last,
        }
    }

    /// Records a durable append and publishes every append whose predecessors are all durable.
    fn complete(&self, seq: u64, c: Completion, pos: WalPosition) {
        let _g = self.publish_lock.lock();
        let ready = {
            let mut s = self.sequencer.lock();
            s.done.insert(seq, (c, pos));
            let mut ready = Vec::new();
            loop {
                let next = s.next_publish;
                let Some(x) = s.done.remove(&next) else { break };
                ready.push(x);
                s.next_publish += 1;
            }
            ready
        };
        for (c, pos) in ready {
            self.publish_one(c, pos);
        }
    }

    /// Publishes one durable append: pending upload, tail cache, high watermark. The caller
    /// holds `publish_lock`.
    pub(crate) fn publish_one(&self, c: Completion, pos: WalPosition) {
        let key = c.partition.key;
        let max_ts = c.batches.iter().map(|b| b.2).max().unwrap_or(-1);
        let (first_seq, over) = {
            let mut p = self.pending.lock();
            let first = p.publish_seq + 1;
            p.publish_seq += c.batches.len() as u64;
            p.bytes += c.bytes.len() as u64;
            p.published_pos = Some(pos);
            p.records.push(PendingRecord {
                partition: c.partition.clone(),
                base_offset: c.batches.first().map_or(c.last_offset, |b| b.0),
                last_offset: c.last_offset,
                max_timestamp: max_ts,
                bytes: c.bytes.clone(),
            });
            (first, p.bytes >= self.upload_bytes)
        };
        {
            let mut cache = self.cache.lock();
            for (i, (base, last, ts, range)) in c.batches.iter().enumerate() {
                let batch = CachedBatch {
                    last_offset: *last,
                    max_timestamp: *ts,
                    bytes: c.bytes.slice(range.clone()),
                };
                cache.insert(first_seq + i as u64, key, *base, batch);
            }
        }
        {
            let mut st = c.partition.state.lock();
            st.high_watermark = st.high_watermark.max(c.last_offset + 1);
        }
        c.partition.publish_hw(c.last_offset + 1);
        if over {
            self.tier_wake.notify_one();
        }
    }
}
