//! Byte layout of segment headers and record frames (see the module docs of [`crate::wal`]).
//!
//! Decoding never trusts the input: every length is checked before slicing and record lengths
//! are capped, so arbitrary bytes yield a [`Frame::Bad`] or [`Frame::Invalid`], never a panic.

use bytes::Bytes;
use uuid::Uuid;

use super::WalRecord;

/// The first eight bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"FJORDWAL";
/// The on-disk format version this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Length of the segment file header.
pub(crate) const HEADER_LEN: usize = 32;
/// Length of a frame's `len` and `crc` fields.
pub(crate) const FRAME_HEAD_LEN: usize = 8;
/// Length of a record body before the batch bytes:
/// kind (1) + durable_before (8) + topic id (16) + partition (4) + epoch (4) + base (8) + last (8).
pub(crate) const BODY_FIXED_LEN: usize = 1 + 8 + 16 + 4 + 4 + 8 + 8;
/// Bytes a record occupies on disk besides its batch bytes.
pub(crate) const RECORD_OVERHEAD: usize = FRAME_HEAD_LEN + BODY_FIXED_LEN;
/// Largest accepted record body. Caps what a corrupt length field can make recovery allocate
/// or skip, and what one append may write.
pub const MAX_RECORD_BYTES: usize = 256 << 20;
/// `kind` of a record that carries the batches of one partition.
const KIND_BATCHES: u8 = 1;

/// Encodes the header of segment `segment`.
pub(crate) fn encode_header(segment: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // h[12..16] reserved, zero.
    h[16..24].copy_from_slice(&segment.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    // h[28..32] reserved, zero.
    h
}

/// Checks the header at the start of `buf` for segment `segment`; the error says what is wrong.
pub(crate) fn check_header(buf: &[u8], segment: u64) -> Result<(), String> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(format!(
            "file header is {} bytes, expected {HEADER_LEN}",
            buf.len()
        ));
    };
    if h[0..8] != MAGIC {
        return Err("bad magic: not a Fjord WAL segment".to_owned());
    }
    let crc = u32_at(h, 24);
    if crc != crc32c::crc32c(&h[0..24]) {
        return Err("file header checksum mismatch".to_owned());
    }
    let version = u32_at(h, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "unsupported format version {version}, this build reads {FORMAT_VERSION}"
        ));
    }
    let stored = u64_at(h, 16);
    if stored != segment {
        return Err(format!(
            "header names segment {stored} but the file name says {segment}"
        ));
    }
    Ok(())
}

/// Appends the frame head and fixed body of `rec` to `out`; the batch bytes follow it on disk.
/// The CRC covers the length field, the fixed body and the batches.
pub(crate) fn encode_record_head(rec: &WalRecord, durable_before: u64, out: &mut Vec<u8>) {
    let body_len = BODY_FIXED_LEN + rec.batches.len();
    // The writer rejects records over MAX_RECORD_BYTES (< u32::MAX) before encoding them.
    let len = u32::try_from(body_len).unwrap_or(u32::MAX);
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // crc, patched below
    out.push(KIND_BATCHES);
    out.extend_from_slice(&durable_before.to_le_bytes());
    out.extend_from_slice(rec.topic_id.as_bytes());
    out.extend_from_slice(&rec.partition.to_le_bytes());
    out.extend_from_slice(&rec.epoch.to_le_bytes());
    out.extend_from_slice(&rec.base_offset.to_le_bytes());
    out.extend_from_slice(&rec.last_offset.to_le_bytes());
    let mut crc = crc32c::crc32c(&out[start..start + 4]);
    crc = crc32c::crc32c_append(crc, &out[start + FRAME_HEAD_LEN..]);
    crc = crc32c::crc32c_append(crc, &rec.batches);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What [`decode_frame`] found at an offset.
#[derive(Debug)]
pub(crate) enum Frame {
    /// An intact record.
    Record {
        /// The record.
        record: WalRecord,
        /// Every byte of the segment before this offset was fsynced before the record was written.
        durable_before: u64,
        /// Offset just after the frame.
        end: usize,
    },
    /// A frame that is cut short or fails its checksum: either a torn write or corruption.
    Bad {
        /// What is wrong.
        reason: &'static str,
        /// End of the frame if its length field is plausible and fits the file, so that a scan
        /// can look at what follows it.
        end: Option<usize>,
    },
    /// A frame whose checksum matches but whose contents make no sense: never a torn write.
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

/// Decodes the frame starting at `at` in the segment contents `buf`.
pub(crate) fn decode_frame(buf: &Bytes, at: usize) -> Frame {
    let Some(rest) = buf.get(at..) else {
        return Frame::Bad {
            reason: "offset past end of segment",
            end: None,
        };
    };
    if rest.len() < FRAME_HEAD_LEN {
        return Frame::Bad {
            reason: "frame header cut short",
            end: None,
        };
    }
    let len = u32_at(rest, 0) as usize;
    if !(BODY_FIXED_LEN..=MAX_RECORD_BYTES).contains(&len) {
        return Frame::Bad {
            reason: "implausible record length",
            end: None,
        };
    }
    let Some(body) = rest.get(FRAME_HEAD_LEN..FRAME_HEAD_LEN + len) else {
        return Frame::Bad {
            reason: "record cut short",
            end: None,
        };
    };
    let end = at + FRAME_HEAD_LEN + len;
    let stored_crc = u32_at(rest, 4);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&rest[0..4]), body);
    if crc != stored_crc {
        return Frame::Bad {
            reason: "record checksum mismatch",
            end: Some(end),
        };
    }
    let kind = body[0];
    if kind != KIND_BATCHES {
        return Frame::Invalid {
            reason: format!("unknown record kind {kind}"),
        };
    }
    let durable_before = u64_at(body, 1);
    if durable_before < HEADER_LEN as u64 || durable_before > at as u64 {
        return Frame::Invalid {
            reason: format!("record claims {durable_before} synced bytes before offset {at}"),
        };
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&body[9..25]);
    let record = WalRecord {
        topic_id: Uuid::from_bytes(id),
        partition: i32_at(body, 25),
        epoch: i32_at(body, 29),
        base_offset: i64_at(body, 33),
        last_offset: i64_at(body, 41),
        batches: buf.slice(at + RECORD_OVERHEAD..end),
    };
    Frame::Record {
        record,
        durable_before,
        end,
    }
}

// The helpers below are only called with `at + N <= b.len()`, established by the callers above.
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(batches: &'static [u8]) -> WalRecord {
        WalRecord {
            topic_id: Uuid::from_u128(0x1234_5678_9abc_def0_0fed_cba9_8765_4321),
            partition: 7,
            epoch: 3,
            base_offset: 100,
            last_offset: 104,
            batches: Bytes::from_static(batches),
        }
    }

    fn encode(rec: &WalRecord, durable_before: u64) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        encode_record_head(rec, durable_before, &mut out);
        out.extend_from_slice(&rec.batches);
        out
    }

    #[test]
    fn record_round_trips() {
        let rec = record(b"some batch bytes");
        let buf = Bytes::from(encode(&rec, HEADER_LEN as u64));
        match decode_frame(&buf, HEADER_LEN) {
            Frame::Record {
                record,
                durable_before,
                end,
            } => {
                assert_eq!(record, rec);
                assert_eq!(durable_before, HEADER_LEN as u64);
                assert_eq!(end, buf.len());
            }
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let rec = record(b"payload");
        let good = encode(&rec, HEADER_LEN as u64);
        for i in HEADER_LEN..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let frame = decode_frame(&Bytes::from(bad), HEADER_LEN);
            assert!(
                matches!(frame, Frame::Bad { .. }),
                "flip at byte {i} not detected: {frame:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_bad_with_no_end() {
        let good = encode(&record(b"payload"), HEADER_LEN as u64);
        for cut in HEADER_LEN..good.len() {
            let buf = Bytes::copy_from_slice(&good[..cut]);
            assert!(matches!(
                decode_frame(&buf, HEADER_LEN),
                Frame::Bad { end: None, .. }
            ));
        }
    }

    #[test]
    fn header_checks() {
        let h = encode_header(42);
        assert!(check_header(&h, 42).is_ok());
        assert!(check_header(&h, 41).unwrap_err().contains("segment 42"));
        assert!(check_header(&h[..10], 42).is_err());
        for i in 0..28 {
            let mut bad = h;
            bad[i] ^= 0x80;
            assert!(
                check_header(&bad, 42).is_err(),
                "flip at header byte {i} not detected"
            );
        }
    }

    #[test]
    fn durable_before_beyond_the_record_is_invalid() {
        let rec = record(b"x");
        let buf = Bytes::from(encode(&rec, HEADER_LEN as u64 + 1));
        assert!(matches!(
            decode_frame(&buf, HEADER_LEN),
            Frame::Invalid { .. }
        ));
    }
}
