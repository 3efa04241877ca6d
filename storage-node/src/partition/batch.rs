//! Kafka record batch (magic 2) headers: parsing with length checks, validation, and the header
//! rewrite that assigns offsets.
//!
//! Header layout (big endian), 61 bytes before the records:
//!
//! | at | field                | type |
//! |----|----------------------|------|
//! | 0  | baseOffset           | i64  |
//! | 8  | batchLength          | i32 (bytes after this field) |
//! | 12 | partitionLeaderEpoch | i32  |
//! | 16 | magic                | i8 (= 2) |
//! | 17 | crc                  | u32, CRC-32C of bytes 21.. |
//! | 21 | attributes           | i16  |
//! | 23 | lastOffsetDelta      | i32  |
//! | 27 | baseTimestamp        | i64  |
//! | 35 | maxTimestamp         | i64  |
//! | 43 | producerId           | i64  |
//! | 51 | producerEpoch        | i16  |
//! | 53 | baseSequence         | i32  |
//! | 57 | recordsCount         | i32  |

use bytes::{Bytes, BytesMut};

use crate::partition::codes::{CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, UNSUPPORTED_FOR_MESSAGE_FORMAT};

/// Size of a v2 batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength`'s counted region (baseOffset + batchLength).
const LOG_OVERHEAD: usize = 12;
/// Where the CRC-covered region starts.
const CRC_START: usize = 21;
/// Attribute bit: timestamps are LogAppendTime.
const TIMESTAMP_TYPE_BIT: i16 = 0x08;

/// Why a produced batch was refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Truncated, garbage or inconsistent bytes.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// The CRC-32C does not match.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes={limit}")]
    TooLarge {
        /// Batch size.
        size: usize,
        /// The topic limit.
        limit: u32,
    },
    /// Not magic 2.
    #[error("record batch magic {0} is not supported (only v2 record batches)")]
    UnsupportedMagic(i8),
}

impl BatchError {
    /// The Kafka error code of this failure.
    pub fn code(&self) -> i16 {
        match self {
            BatchError::Corrupt(_) | BatchError::BadCrc { .. } => CORRUPT_MESSAGE,
            BatchError::TooLarge { .. } => MESSAGE_TOO_LARGE,
            BatchError::UnsupportedMagic(_) => UNSUPPORTED_FOR_MESSAGE_FORMAT,
        }
    }
}

/// The parsed fixed header of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Whole batch length in bytes (including baseOffset and batchLength).
    pub total_len: usize,
    /// partitionLeaderEpoch.
    pub leader_epoch: i32,
    /// attributes.
    pub attributes: i16,
    /// lastOffsetDelta.
    pub last_offset_delta: i32,
    /// baseTimestamp.
    pub base_timestamp: i64,
    /// maxTimestamp.
    pub max_timestamp: i64,
    /// producerId (-1 when not idempotent).
    pub producer_id: i64,
    /// producerEpoch.
    pub producer_epoch: i16,
    /// baseSequence.
    pub base_sequence: i32,
    /// recordsCount.
    pub records_count: i32,
}

impl BatchHeader {
    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Sequence number of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// `seq + delta`, wrapping to 0 after `i32::MAX` (Kafka's `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Parses the header of the batch at the start of `buf` (which may hold more batches after it).
/// Checks lengths and magic, not the CRC.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < 17 {
        return Err(BatchError::Corrupt(format!(
            "{} bytes left, too short for a batch header",
            buf.len()
        )));
    }
    let magic = buf[16] as i8;
    if magic != 2 {
        return Err(BatchError::UnsupportedMagic(magic));
    }
    if buf.len() < HEADER_LEN {
        return Err(BatchError::Corrupt(format!(
            "{} bytes left, a v2 header needs {HEADER_LEN}",
            buf.len()
        )));
    }
    let batch_length = be_i32(buf, 8);
    let min = (HEADER_LEN - LOG_OVERHEAD) as i32;
    if batch_length < min {
        return Err(BatchError::Corrupt(format!(
            "batchLength {batch_length} below {min}"
        )));
    }
    let h = BatchHeader {
        base_offset: be_i64(buf, 0),
        total_len: LOG_OVERHEAD + batch_length as usize,
        leader_epoch: be_i32(buf, 12),
        attributes: be_i16(buf, 21),
        last_offset_delta: be_i32(buf, 23),
        base_timestamp: be_i64(buf, 27),
        max_timestamp: be_i64(buf, 35),
        producer_id: be_i64(buf, 43),
        producer_epoch: be_i16(buf, 51),
        base_sequence: be_i32(buf, 53),
        records_count: be_i32(buf, 57),
    };
    if h.last_offset_delta < 0 || h.records_count < 0 {
        return Err(BatchError::Corrupt(format!(
            "negative lastOffsetDelta {} or recordsCount {}",
            h.last_offset_delta, h.records_count
        )));
    }
    Ok(h)
}

/// Parses every batch in `buf` (trusted bytes, e.g. from the WAL or object storage), returning
/// each header with its byte range. Stops with an error at the first inconsistency.
pub fn scan(buf: &[u8]) -> Result<Vec<(BatchHeader, std::ops::Range<usize>)>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let h = parse_header(&buf[at..])?;
        let end = at
            .checked_add(h.total_len)
            .filter(|e| *e <= buf.len())
            .ok_or_else(|| {
                BatchError::Corrupt(format!("batch of {} bytes is truncated", h.total_len))
            })?;
        out.push((h, at..end));
        at = end;
    }
    Ok(out)
}

/// Validates client-sent batches: lengths, magic, size limit and CRC of each.
pub fn validate(buf: &[u8], max_message_bytes: u32) -> Result<Vec<BatchHeader>, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::Corrupt(
            "produce carries no record batch".into(),
        ));
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let h = parse_header(&buf[at..])?;
        if h.total_len > max_message_bytes as usize {
            return Err(BatchError::TooLarge {
                size: h.total_len,
                limit: max_message_bytes,
            });
        }
        let end = at
            .checked_add(h.total_len)
            .filter(|e| *e <= buf.len())
            .ok_or_else(|| {
                BatchError::Corrupt(format!(
                    "batch declares {} bytes, only {} left",
                    h.total_len,
                    buf.len() - at
                ))
            })?;
        let stored = u32::from_be_bytes([buf[at + 17], buf[at + 18], buf[at + 19], buf[at + 20]]);
        let computed = crc32c::crc32c(&buf[at + CRC_START..end]);
        if stored != computed {
            return Err(BatchError::BadCrc { stored, computed });
        }
        out.push(h);
        at = end;
    }
    Ok(out)
}

/// Copies validated batches once and rewrites each header: consecutive offsets from
/// `base_offset`, `leader_epoch`, and with `log_append_time_ms`, the LogAppendTime attribute and
/// maxTimestamp (then the CRC, which covers them). Record bytes are untouched.
pub fn assign(
    buf: &[u8],
    headers: &[BatchHeader],
    base_offset: i64,
    leader_epoch: i32,
    log_append_time_ms: Option<i64>,
) -> Bytes {
    let mut out = BytesMut::from(buf);
    let mut at = 0;
    let mut next = base_offset;
    for h in headers {
        let b = &mut out[at..at + h.total_len];
        b[0..8].copy_from_slice(&next.to_be_bytes());
        b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        if let Some(now) = log_append_time_ms {
            let attrs = h.attributes | TIMESTAMP_TYPE_BIT;
            b[21..23].copy_from_slice(&attrs.to_be_bytes());
            b[35..43].copy_from_slice(&now.to_be_bytes());
            let crc = crc32c::crc32c(&b[CRC_START..]);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        next += i64::from(h.last_offset_delta) + 1;
        at += h.total_len;
    }
    out.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fake_batch(count: i32) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + 5];
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn truncated_and_garbage_are_corrupt_not_panics() {
        let b = fake_batch(3);
        for cut in 0..b.len() {
            let r = validate(&b[..cut], 1 << 20);
            assert!(r.is_err(), "prefix of {cut} bytes accepted");
        }
        let mut bad = b.clone();
        bad[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            validate(&bad, u32::MAX).map_err(|e| e.code()),
            Err(CORRUPT_MESSAGE)
        );
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(
            validate(&bad, u32::MAX).map_err(|e| e.code()),
            Err(CORRUPT_MESSAGE)
        );
    }

    #[test]
    fn assign_rewrites_offsets_and_keeps_crc_valid() {
        let mut two = fake_batch(3);
        two.extend(fake_batch(2));
        let hs = validate(&two, 1 << 20).unwrap();
        let out = assign(&two, &hs, 100, 7, Some(55));
        let hs2 = validate(&out, 1 << 20).unwrap();
        assert_eq!(hs2[0].base_offset, 100);
        assert_eq!(hs2[1].base_offset, 103);
        assert_eq!(hs2[1].leader_epoch, 7);
        assert_eq!(hs2[0].max_timestamp, 55);
        assert_eq!(hs2[0].attributes & TIMESTAMP_TYPE_BIT, TIMESTAMP_TYPE_BIT);
    }
}
