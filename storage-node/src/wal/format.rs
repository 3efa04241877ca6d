//! Byte layout of segment headers and record frames (see the module docs of [`crate::wal`]).
//!
//! Decoding never trusts the input: every length is checked before slicing and record lengths
//! are capped, so arbitrary bytes yield a [`Frame::Bad`] or [`Frame::Invalid`], never a panic.

use bytes::Bytes;
use uuid::Uuid;

use super::WalRecord;

/// The first eight bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"FJORDWAL";
/// The on-disk format version this code writes. Version 1 segments (no record seeds, no
/// previous-segment length) are still read, and appended to when one is the active segment.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The first format version, still readable.
const FORMAT_V1: u32 = 1;
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

/// What a segment's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Format version of the segment's records.
    pub version: u32,
    /// The segment's sequence number.
    pub segment: u64,
    /// Final length of the previous segment, written when this one was started (version 2;
    /// `None` for the first segment of a log and in version 1). It bounds the previous
    /// segment's records, so that bytes a recycled file held beyond them are never read.
    pub previous_len: Option<u64>,
}

impl SegmentHeader {
    /// The CRC-32C every record checksum of this segment starts from. Version 2 seeds it with
    /// the segment number, so that the records a recycled file still holds from its previous
    /// life fail their checksum here instead of passing for records of this segment (the
    /// scheme RocksDB's recyclable log format uses). Version 1 starts from zero.
    pub fn crc_seed(&self) -> u32 {
        if self.version == FORMAT_V1 {
            0
        } else {
            Self::v2_seed(self.segment)
        }
    }

    /// The seed of version-2 segment `segment`.
    pub fn v2_seed(segment: u64) -> u32 {
        crc32c::crc32c(&segment.to_le_bytes())
    }
}

/// Encodes a version-2 header of segment `segment`, after a previous segment of
/// `previous_len` bytes (`None` for the first segment).
pub(crate) fn encode_header(segment: u64, previous_len: Option<u64>) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&segment.to_le_bytes());
    h[24..32].copy_from_slice(&previous_len.unwrap_or(0).to_le_bytes());
    let crc = header_crc_v2(&h);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// CRC-32C of a version-2 header without its checksum field (bytes 12..16).
fn header_crc_v2(h: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&h[0..12]), &h[16..32])
}

/// Checks the header at the start of `buf` for segment `segment`; the error says what is wrong.
pub(crate) fn check_header(buf: &[u8], segment: u64) -> Result<SegmentHeader, String> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(format!(
            "file header is {} bytes, expected {HEADER_LEN}",
            buf.len()
        ));
    };
    if h[0..8] != MAGIC {
        return Err("bad magic: not a Fjord WAL segment".to_owned());
    }
    // The version is read before the checksum is known to match: it says where the checksum
    // is. A damaged version field fails below either way.
    let version = u32_at(h, 8);
    let (crc_ok, previous_len) = match version {
        FORMAT_V1 => (u32_at(h, 24) == crc32c::crc32c(&h[0..24]), None),
        FORMAT_VERSION => {
            let previous = u64_at(h, 24);
            (
                u32_at(h, 12) == header_crc_v2(h),
                (previous != 0).then_some(previous),
            )
        }
        _ => {
            return Err(format!(
                "unsupported format version {version}, this build reads {FORMAT_V1} and {FORMAT_VERSION}"
            ))
        }
    };
    if !crc_ok {
        return Err("file header checksum mismatch".to_owned());
    }
    let stored = u64_at(h, 16);
    if stored != segment {
        return Err(format!(
            "header names segment {stored} but the file name says {segment}"
        ));
    }
    Ok(SegmentHeader {
        version,
        segment,
        previous_len,
    })
}

/// Appends the frame head and fixed body of `rec` to `out`; the batch bytes follow it on disk.
/// The CRC covers the length field, the fixed body and the batches.
/// `seed` is the segment's [`SegmentHeader::crc_seed`].
pub(crate) fn encode_record_head(
    rec: &WalRecord,
    durable_before: u64,
    seed: u32,
    out: &mut Vec<u8>,
) {
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
    let mut crc = crc32c::crc32c_append(seed, &out[start..start + 4]);
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

/// Decodes the frame starting at `at` in the segment contents `buf`, whose records' checksums
/// start from `seed` ([`SegmentHeader::crc_seed`]).
pub(crate) fn decode_frame(buf: &Bytes, at: usize, seed: u32) -> Frame {
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
    let crc = crc32c::crc32c_append(crc32c::crc32c_append(seed, &rest[0..4]), body);
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

    /// The seed of a version-2 segment 5.
    const SEED: u32 = 0x5eed;

    fn encode(rec: &WalRecord, durable_before: u64) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        encode_record_head(rec, durable_before, SEED, &mut out);
        out.extend_from_slice(&rec.batches);
        out
    }

    #[test]
    fn record_round_trips() {
        let rec = record(b"some batch bytes");
        let buf = Bytes::from(encode(&rec, HEADER_LEN as u64));
        match decode_frame(&buf, HEADER_LEN, SEED) {
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
            let frame = decode_frame(&Bytes::from(bad), HEADER_LEN, SEED);
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
                decode_frame(&buf, HEADER_LEN, SEED),
                Frame::Bad { end: None, .. }
            ));
        }
    }

    #[test]
    fn header_checks() {
        let h = encode_header(42, Some(1 << 26));
        let header = check_header(&h, 42).unwrap();
        assert_eq!(header.version, FORMAT_VERSION);
        assert_eq!(header.previous_len, Some(1 << 26));
        assert_eq!(
            check_header(&encode_header(1, None), 1)
                .unwrap()
                .previous_len,
            None
        );
        assert!(check_header(&h, 41).unwrap_err().contains("segment 42"));
        assert!(check_header(&h[..10], 42).is_err());
        for i in 0..HEADER_LEN {
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
            decode_frame(&buf, HEADER_LEN, SEED),
            Frame::Invalid { .. }
        ));
    }

    /// A version-1 header as the first release wrote it: CRC of bytes 0..24 at 24.
    fn header_v1(segment: u64) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&FORMAT_V1.to_le_bytes());
        h[16..24].copy_from_slice(&segment.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        h
    }

    #[test]
    fn version_1_segments_are_still_read_with_unseeded_records() {
        let header = check_header(&header_v1(9), 9).unwrap();
        assert_eq!(header.version, FORMAT_V1);
        assert_eq!(header.previous_len, None);
        assert_eq!(header.crc_seed(), 0);
        let mut bad = header_v1(9);
        bad[20] ^= 1;
        assert!(check_header(&bad, 9).is_err());
        let mut unknown = header_v1(9);
        unknown[8] = 3;
        assert!(check_header(&unknown, 9)
            .unwrap_err()
            .contains("unsupported format version 3"));
    }

    #[test]
    fn a_record_of_another_segment_fails_its_checksum() {
        // What a recycled file holds beyond the new records: intact frames of an older segment.
        let seed = |segment| {
            check_header(&encode_header(segment, None), segment)
                .unwrap()
                .crc_seed()
        };
        assert_ne!(seed(3), seed(4));
        let rec = record(b"old life");
        let mut out = vec![0u8; HEADER_LEN];
        encode_record_head(&rec, HEADER_LEN as u64, seed(3), &mut out);
        out.extend_from_slice(&rec.batches);
        let buf = Bytes::from(out);
        assert!(matches!(
            decode_frame(&buf, HEADER_LEN, seed(3)),
            Frame::Record { .. }
        ));
        assert!(matches!(
            decode_frame(&buf, HEADER_LEN, seed(4)),
            Frame::Bad { end: Some(_), .. }
        ));
    }
}
