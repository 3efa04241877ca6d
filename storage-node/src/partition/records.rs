//! Record-level reads of one stored batch, for ListOffsets by timestamp.
//!
//! Produce and fetch move batches whole and never look inside; only time lookups need the exact
//! record. Compressed record data is decompressed as a stream and each record is skipped after its
//! timestamp and offset deltas are read, so memory stays bounded however far a batch expands, and
//! the walk stops at the first match.
//!
//! Record layout (after the 61-byte batch header, possibly compressed), Kafka varints (zigzag):
//! `length varint | attributes i8 | timestampDelta varlong | offsetDelta varint | key, value,
//! headers` where `length` counts every byte after itself.

use std::io::{self, BufRead, BufReader, Read};

use crate::partition::batch::{self, BatchHeader, HEADER_LEN};

/// Most decompressed record bytes one lookup walks through in a batch: a batch expanding past
/// this (a decompression bomb) is refused instead of burning a core on it.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;
/// Attribute bits naming the compression codec.
const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit: every record's timestamp is the batch's maxTimestamp (LogAppendTime).
const LOG_APPEND_TIME_BIT: i16 = 0x08;
/// Where the CRC-covered region starts.
const CRC_START: usize = 21;
/// The xerial snappy stream header (Java clients): magic, then version and compatible version.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// Snappy expands at most ~21x (a 3-byte copy of 64 bytes); a block declaring more is corrupt,
/// which keeps a lying length from sizing an allocation.
const SNAPPY_MAX_RATIO: usize = 32;

/// Why a stored batch could not be read record by record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Bytes that do not parse, fail the CRC, or disagree with the header.
    #[error("stored batch at offset {base_offset} is corrupt: {reason}")]
    Corrupt {
        /// Base offset from the header (-1 when even the header is unreadable).
        base_offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// The records expand past the decompression limit.
    #[error("stored batch at offset {base_offset} decompresses past {limit} bytes")]
    TooLarge {
        /// Base offset from the header.
        base_offset: i64,
        /// The limit.
        limit: u64,
    },
}

/// What a lookup wants from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// The first record whose timestamp is at or after this.
    AtOrAfter(i64),
    /// The first record with the largest timestamp.
    Max,
}

/// Whether [`find`] on this batch decompresses records (real CPU work), rather than answering
/// from the header or walking plain bytes.
pub fn needs_decompression(h: &BatchHeader, from_offset: i64, seek: Seek) -> bool {
    h.attributes & COMPRESSION_MASK != 0
        && h.attributes & LOG_APPEND_TIME_BIT == 0
        && !skips(h, from_offset, seek)
}

/// Whether the header alone shows no record of the batch qualifies.
fn skips(h: &BatchHeader, from_offset: i64, seek: Seek) -> bool {
    h.last_offset() < from_offset
        || h.records_count == 0
        || matches!(seek, Seek::AtOrAfter(ts) if h.max_timestamp < ts)
}

/// Finds the record `seek` asks for among the records of the batch at the start of `buf` whose
/// offset is at least `from_offset`: `Some((offset, timestamp))`, or `None` when no record
/// qualifies. Checks the CRC of any batch it reads into.
pub fn find(buf: &[u8], from_offset: i64, seek: Seek) -> Result<Option<(i64, i64)>, RecordError> {
    find_limited(buf, from_offset, seek, MAX_DECOMPRESSED)
}

fn find_limited(
    buf: &[u8],
    from_offset: i64,
    seek: Seek,
    limit: u64,
) -> Result<Option<(i64, i64)>, RecordError> {
    let h = batch::parse_header(buf).map_err(|e| RecordError::Corrupt {
        base_offset: -1,
        reason: e.to_string(),
    })?;
    let corrupt = |reason: String| RecordError::Corrupt {
        base_offset: h.base_offset,
        reason,
    };
    // Header checks first: most batches a lookup passes over end here.
    if skips(&h, from_offset, seek) {
        return Ok(None);
    }
    let b = buf.get(..h.total_len).ok_or_else(|| {
        corrupt(format!(
            "{} bytes of a {}-byte batch",
            buf.len(),
            h.total_len
        ))
    })?;
    let stored = u32::from_be_bytes([b[17], b[18], b[19], b[20]]);
    let computed = crc32c::crc32c(&b[CRC_START..]);
    if stored != computed {
        return Err(corrupt(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    if h.attributes & LOG_APPEND_TIME_BIT != 0 {
        // Every record carries the append time; offsets are dense from the base offset.
        return Ok(Some((h.base_offset.max(from_offset), h.max_timestamp)));
    }
    let data = &b[HEADER_LEN..];
    let reader = open(data, h.attributes & COMPRESSION_MASK).map_err(|e| corrupt(e.to_string()))?;
    let mut r = reader.take(limit);
    walk(&mut r, &h, from_offset, seek).map_err(|e| {
        if r.limit() == 0 {
            RecordError::TooLarge {
                base_offset: h.base_offset,
                limit,
            }
        } else {
            corrupt(format!("reading records: {e}"))
        }
    })
}

/// A reader of the decompressed records.
fn open<'a>(data: &'a [u8], codec: i16) -> io::Result<Box<dyn BufRead + 'a>> {
    Ok(match codec {
        0 => Box::new(data),
        1 => Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(data))),
        2 => Box::new(BufReader::new(SnappyReader::new(data)?)),
        3 => Box::new(BufReader::new(lz4::Decoder::new(data)?)),
        4 => Box::new(BufReader::new(zstd::stream::read::Decoder::with_buffer(
            data,
        )?)),
        c => return Err(invalid(format!("unknown compression codec {c}"))),
    })
}

fn walk(
    r: &mut impl BufRead,
    h: &BatchHeader,
    from_offset: i64,
    seek: Seek,
) -> io::Result<Option<(i64, i64)>> {
    let mut best: Option<(i64, i64)> = None;
    for _ in 0..h.records_count {
        let len = varint(r, &mut 0)?;
        let len = u64::try_from(len).map_err(|_| invalid(format!("record length {len}")))?;
        let mut used = 1u64;
        byte(r)?; // record attributes: unused
        let ts_delta = varlong(r, &mut used)?;
        let offset_delta = varint(r, &mut used)?;
        let rest = len
            .checked_sub(used)
            .ok_or_else(|| invalid(format!("record of {len} bytes is shorter than its fields")))?;
        skip(r, rest)?;
        if !(0..=h.last_offset_delta).contains(&offset_delta) {
            return Err(invalid(format!(
                "offset delta {offset_delta} outside 0..={}",
                h.last_offset_delta
            )));
        }
        let offset = h.base_offset + i64::from(offset_delta);
        let ts = h
            .base_timestamp
            .checked_add(ts_delta)
            .ok_or_else(|| invalid(format!("timestamp delta {ts_delta} overflows")))?;
        if offset < from_offset {
            continue;
        }
        match seek {
            Seek::AtOrAfter(t) if ts >= t => return Ok(Some((offset, ts))),
            Seek::AtOrAfter(_) => {}
            Seek::Max => {
                if best.is_none_or(|(_, b)| ts > b) {
                    best = Some((offset, ts));
                }
            }
        }
    }
    Ok(best)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn byte(r: &mut impl BufRead) -> io::Result<u8> {
    let b = r
        .fill_buf()?
        .first()
        .copied()
        .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
    r.consume(1);
    Ok(b)
}

/// A zigzag varint of at most `max_bytes` bytes; adds the bytes read to `used`.
fn zigzag(r: &mut impl BufRead, used: &mut u64, max_bytes: u32) -> io::Result<i64> {
    let mut raw = 0u64;
    for i in 0..max_bytes {
        let b = byte(r)?;
        *used += 1;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(invalid(format!("varint longer than {max_bytes} bytes")))
}

fn varlong(r: &mut impl BufRead, used: &mut u64) -> io::Result<i64> {
    zigzag(r, used, 10)
}

fn varint(r: &mut impl BufRead, used: &mut u64) -> io::Result<i32> {
    let v = zigzag(r, used, 5)?;
    i32::try_from(v).map_err(|_| invalid(format!("varint {v} out of i32 range")))
}

fn skip(r: &mut impl BufRead, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let avail = r.fill_buf()?.len();
        if avail == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let k = usize::try_from(n).map_or(avail, |n| n.min(avail));
        r.consume(k);
        n -= k as u64;
    }
    Ok(())
}

/// Kafka snappy: the xerial stream Java clients write (header, then length-prefixed raw blocks),
/// or one raw block (librdkafka); decoded a block at a time.
struct SnappyReader<'a> {
    /// Compressed bytes not yet decoded.
    rest: &'a [u8],
    /// Xerial framing, rather than one raw block.
    framed: bool,
    /// The current decoded block and how much of it was read.
    block: Vec<u8>,
    pos: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(data: &'a [u8]) -> io::Result<Self> {
        let (rest, framed) = if data.starts_with(XERIAL_MAGIC) {
            let rest = data
                .get(XERIAL_HEADER_LEN..)
                .ok_or_else(|| invalid("truncated xerial snappy header".into()))?;
            (rest, true)
        } else {
            (data, false)
        };
        Ok(Self {
            rest,
            framed,
            block: Vec::new(),
            pos: 0,
        })
    }

    /// The next compressed block, or `None` at the end.
    fn next_block(&mut self) -> io::Result<Option<&'a [u8]>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        if !self.framed {
            return Ok(Some(std::mem::take(&mut self.rest)));
        }
        let (len, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| invalid("truncated snappy block length".into()))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = rest
            .get(..len)
            .ok_or_else(|| invalid("truncated snappy block".into()))?;
        self.rest = &rest[len..];
        Ok(Some(block))
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.block.len() {
            let Some(block) = self.next_block()? else {
                return Ok(0);
            };
            let n = snap::raw::decompress_len(block).map_err(|e| invalid(e.to_string()))?;
            if n > block
                .len()
                .saturating_mul(SNAPPY_MAX_RATIO)
                .saturating_add(64)
            {
                return Err(invalid(format!(
                    "snappy block of {} bytes declares {n}",
                    block.len()
                )));
            }
            self.block.resize(n, 0);
            let got = snap::raw::Decoder::new()
                .decompress(block, &mut self.block)
                .map_err(|e| invalid(e.to_string()))?;
            self.block.truncate(got);
            self.pos = 0;
        }
        let k = out.len().min(self.block.len() - self.pos);
        out[..k].copy_from_slice(&self.block[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::Compression;

    use super::*;

    /// One batch of records with these timestamps (offsets from `base`), values large enough
    /// that compression has something to chew on.
    fn encoded(timestamps: &[i64], compression: Compression, base: i64) -> Bytes {
        let buf = crate::tests::timed_batch(timestamps, compression, |i, _| {
            (
                Some(Bytes::from(format!("key-{i}"))),
                Bytes::from(format!("value {i} ").repeat(40)),
            )
        });
        let hs = batch::validate(&buf, u32::MAX).unwrap();
        assert_eq!(hs.len(), 1, "encoder split the batch");
        batch::assign(&buf, &hs, base, 0, None)
    }

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn finds_the_exact_record_in_every_codec() {
        // Out of order on purpose: the first record at or after a time is not the first larger.
        let ts = [1000, 1300, 1200, 1500, 1500, 1100];
        for c in ALL {
            let b = encoded(&ts, c, 100);
            let at = |t| find(&b, 0, Seek::AtOrAfter(t)).unwrap();
            assert_eq!(at(1000), Some((100, 1000)), "{c:?}");
            assert_eq!(at(1001), Some((101, 1300)), "{c:?}");
            assert_eq!(at(1400), Some((103, 1500)), "{c:?}");
            assert_eq!(at(1501), None, "{c:?}");
            // The earliest of the records sharing the largest timestamp.
            assert_eq!(find(&b, 0, Seek::Max).unwrap(), Some((103, 1500)), "{c:?}");
            // Records below the log start do not count.
            assert_eq!(
                find(&b, 102, Seek::AtOrAfter(1001)).unwrap(),
                Some((102, 1200))
            );
            assert_eq!(find(&b, 104, Seek::Max).unwrap(), Some((104, 1500)));
            assert_eq!(find(&b, 105, Seek::Max).unwrap(), Some((105, 1100)));
            assert_eq!(find(&b, 106, Seek::Max).unwrap(), None);
        }
    }

    #[test]
    fn log_append_time_records_carry_the_batch_time() {
        let plain = encoded(&[5, 6, 7], Compression::Gzip, 0);
        let hs = batch::validate(&plain, u32::MAX).unwrap();
        let b = batch::assign(&plain, &hs, 40, 0, Some(9_000));
        assert_eq!(find(&b, 0, Seek::AtOrAfter(6)).unwrap(), Some((40, 9_000)));
        assert_eq!(find(&b, 41, Seek::Max).unwrap(), Some((41, 9_000)));
        assert_eq!(find(&b, 0, Seek::AtOrAfter(9_001)).unwrap(), None);
    }

    #[test]
    fn damaged_batches_are_errors_not_panics() {
        for c in ALL {
            let good = encoded(&[10, 20, 30], c, 0);
            for cut in 0..good.len() {
                assert!(find(&good[..cut], 0, Seek::Max).is_err(), "{c:?} cut {cut}");
            }
            // Flipped record bytes fail the CRC.
            let mut bad = BytesMut::from(&good[..]);
            let last = bad.len() - 1;
            bad[last] ^= 0x55;
            assert!(matches!(
                find(&bad, 0, Seek::Max),
                Err(RecordError::Corrupt { .. })
            ));
            // Garbage record data under a valid CRC is still refused cleanly.
            for (i, byte) in bad[HEADER_LEN..].iter_mut().enumerate() {
                *byte = (i * 37) as u8;
            }
            let crc = crc32c::crc32c(&bad[CRC_START..]);
            bad[17..21].copy_from_slice(&crc.to_be_bytes());
            assert!(find(&bad, 0, Seek::Max).is_err(), "{c:?} garbage accepted");
        }
    }

    #[test]
    fn decompression_past_the_limit_is_refused() {
        let b = encoded(&[1, 2, 3, 4], Compression::Zstd, 0);
        assert!(matches!(
            find_limited(&b, 0, Seek::Max, 500),
            Err(RecordError::TooLarge { limit: 500, .. })
        ));
        assert_eq!(
            find_limited(&b, 0, Seek::Max, 1 << 20).unwrap(),
            Some((3, 4))
        );
    }

    #[test]
    fn cheap_cases_skip_decompression() {
        let b = encoded(&[1, 2], Compression::Lz4, 10);
        let h = batch::parse_header(&b).unwrap();
        assert!(needs_decompression(&h, 0, Seek::Max));
        assert!(!needs_decompression(&h, 12, Seek::Max));
        assert!(!needs_decompression(&h, 0, Seek::AtOrAfter(3)));
        let plain = batch::parse_header(&encoded(&[1], Compression::None, 0)).unwrap();
        assert!(!needs_decompression(&plain, 0, Seek::Max));
    }
}
