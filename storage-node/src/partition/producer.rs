//! Idempotent-producer state of one partition: per producer id the epoch, the last sequence and
//! the last few batches, so a retried batch gets its original offset back instead of a
//! duplicate append.

use std::collections::{HashMap, VecDeque};

use fjord_metadata::ProducerSnapshot;

use crate::partition::batch::BatchHeader;
use crate::partition::codes::{INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER};

/// How many recent batches per producer are remembered for duplicate detection (Kafka: 5, the
/// most in-flight requests an idempotent producer may have).
const KEPT_BATCHES: usize = 5;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

/// State of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Producer {
    epoch: i16,
    last_seq: i32,
    last_offset: i64,
    recent: VecDeque<BatchMeta>,
}

/// What to do with an incoming idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Append it.
    Append,
    /// Already written: answer with the original offsets, do not append.
    Duplicate {
        /// Original base offset.
        base_offset: i64,
        /// Original last offset.
        last_offset: i64,
    },
}

/// Why an idempotent batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SequenceError {
    /// The producer was fenced by a newer epoch.
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    StaleEpoch {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// Known epoch.
        current: i16,
    },
    /// A gap or reordering of sequence numbers.
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrder {
        /// Producer id.
        producer_id: i64,
        /// The sequence that would continue the log.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
}

impl SequenceError {
    /// The Kafka error code.
    pub fn code(&self) -> i16 {
        match self {
            SequenceError::StaleEpoch { .. } => INVALID_PRODUCER_EPOCH,
            SequenceError::OutOfOrder { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
        }
    }
}

/// All producers of one partition.
#[derive(Debug, Clone, Default)]
pub struct ProducerTable {
    producers: HashMap<i64, Producer>,
}

impl ProducerTable {
    /// Starts from snapshots committed with the manifest. A snapshot keeps only the last batch's
    /// last sequence and offset, which is enough to continue the sequence.
    pub fn from_snapshots(snaps: &[ProducerSnapshot]) -> Self {
        let producers = snaps
            .iter()
            .map(|s| {
                (
                    s.producer_id,
                    Producer {
                        epoch: s.producer_epoch,
                        last_seq: s.last_sequence,
                        last_offset: s.last_offset,
                        recent: VecDeque::new(),
                    },
                )
            })
            .collect();
        Self { producers }
    }

    /// Snapshots of every producer, for a manifest commit.
    pub fn snapshots(&self) -> Vec<ProducerSnapshot> {
        let mut v: Vec<_> = self
            .producers
            .iter()
            .map(|(id, p)| ProducerSnapshot {
                producer_id: *id,
                producer_epoch: p.epoch,
                last_sequence: p.last_seq,
                last_offset: p.last_offset,
            })
            .collect();
        v.sort_by_key(|s| s.producer_id);
        v
    }

    /// Checks a batch against the producer's state (non-idempotent batches always append).
    pub fn check(&self, h: &BatchHeader) -> Result<SeqCheck, SequenceError> {
        if h.producer_id < 0 {
            return Ok(SeqCheck::Append);
        }
        // An unknown producer may start anywhere: its earlier state may have been removed with
        // the data it wrote (retention), and Kafka accepts it too.
        let Some(p) = self.producers.get(&h.producer_id) else {
            return Ok(SeqCheck::Append);
        };
        if h.producer_epoch < p.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: p.epoch,
            });
        }
        if h.producer_epoch > p.epoch {
            if h.base_sequence != 0 {
                return Err(SequenceError::OutOfOrder {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            return Ok(SeqCheck::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(b) = p
            .recent
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SeqCheck::Duplicate {
                base_offset: b.base_offset,
                last_offset: b.last_offset,
            });
        }
        // Restored from a snapshot: only the last batch's end is known; a retry of it ends at
        // the same sequence and offset.
        if p.recent.is_empty() && last_seq == p.last_seq {
            return Ok(SeqCheck::Duplicate {
                base_offset: p.last_offset - i64::from(h.last_offset_delta),
                last_offset: p.last_offset,
            });
        }
        let expected = super::batch::increment_sequence(p.last_seq, 1);
        if h.base_sequence != expected {
            return Err(SequenceError::OutOfOrder {
                producer_id: h.producer_id,
                expected,
                got: h.base_sequence,
            });
        }
        Ok(SeqCheck::Append)
    }

    /// Records an appended batch (with its assigned offsets).
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if h.producer_id < 0 {
            return;
        }
        let last_offset = base_offset + i64::from(h.last_offset_delta);
        let meta = BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset,
            last_offset,
        };
        let p = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| Producer {
                epoch: h.producer_epoch,
                last_seq: meta.last_seq,
                last_offset,
                recent: VecDeque::new(),
            });
        if h.producer_epoch != p.epoch {
            p.recent.clear();
            p.epoch = h.producer_epoch;
        }
        p.last_seq = meta.last_seq;
        p.last_offset = last_offset;
        if p.recent.len() == KEPT_BATCHES {
            p.recent.pop_front();
        }
        p.recent.push_back(meta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pid: i64, epoch: i16, seq: i32, n: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            total_len: 61,
            leader_epoch: 0,
            attributes: 0,
            last_offset_delta: n - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: n,
        }
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut t = ProducerTable::default();
        assert_eq!(t.check(&h(1, 0, 0, 3)), Ok(SeqCheck::Append));
        t.record(&h(1, 0, 0, 3), 10);
        assert_eq!(t.check(&h(1, 0, 3, 2)), Ok(SeqCheck::Append));
        t.record(&h(1, 0, 3, 2), 20);
        assert_eq!(
            t.check(&h(1, 0, 0, 3)),
            Ok(SeqCheck::Duplicate {
                base_offset: 10,
                last_offset: 12
            })
        );
        assert_eq!(
            t.check(&h(1, 0, 7, 1)).map_err(|e| e.code()),
            Err(OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            t.check(&h(1, 1, 5, 1)).map_err(|e| e.code()),
            Err(OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        t.record(&h(1, 1, 0, 1), 30);
        assert_eq!(
            t.check(&h(1, 0, 5, 1)).map_err(|e| e.code()),
            Err(INVALID_PRODUCER_EPOCH)
        );
    }

    #[test]
    fn snapshot_round_trip_continues_sequence() {
        let mut t = ProducerTable::default();
        t.record(&h(9, 2, 0, 4), 100);
        let t2 = ProducerTable::from_snapshots(&t.snapshots());
        assert_eq!(
            t2.check(&h(9, 2, 0, 4)),
            Ok(SeqCheck::Duplicate {
                base_offset: 100,
                last_offset: 103
            })
        );
        assert_eq!(t2.check(&h(9, 2, 4, 1)), Ok(SeqCheck::Append));
        assert!(t2.check(&h(9, 2, 6, 1)).is_err());
    }
}
