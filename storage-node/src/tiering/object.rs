//! The byte layout of a tiered object: the batches of many partitions, with an index.
//!
//! ```text
//! offset 0   magic "FJOB" (4 bytes) | version u16 = 1 | reserved u16 = 0
//! offset 8   data: for each partition, its batches back to back (Kafka v2 batches, headers
//!            rewritten with assigned offsets), one contiguous range per partition
//! index      count u32, then per range (60 bytes): topic id (16 bytes), partition i32,
//!            base offset i64, end offset i64 (exclusive), max timestamp i64,
//!            position u64, length u64
//! footer     index position u64 | CRC-32C of the index u32 | magic "FJOB"   (16 bytes)
//! ```
//!
//! All integers are big endian. Readers normally never parse the index: the manifest in metadata
//! records each range's position and length, and fetches read just that range. The index makes
//! every object self-describing, for repair and audits.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Magic at both ends of an object.
pub const MAGIC: &[u8; 4] = b"FJOB";
/// Format version.
pub const VERSION: u16 = 1;
const HEADER_LEN: usize = 8;
const ENTRY_LEN: usize = 60;
const FOOTER_LEN: usize = 16;

/// One partition's range inside an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// First offset.
    pub base_offset: i64,
    /// One past the last offset.
    pub end_offset: i64,
    /// Max batch timestamp.
    pub max_timestamp_ms: i64,
    /// Byte position in the object.
    pub position: u64,
    /// Byte length.
    pub length: u64,
}

/// Why an object could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectFormatError {
    /// Wrong magic, version, lengths or CRC.
    #[error("invalid tiered object: {0}")]
    Invalid(String),
}

/// Builds an object from partition ranges; the parts are kept as `Bytes` (no copy of the data).
#[derive(Debug, Default)]
pub struct ObjectBuilder {
    parts: Vec<Bytes>,
    len: u64,
    index: Vec<IndexEntry>,
}

impl ObjectBuilder {
    /// A new object.
    pub fn new() -> Self {
        let mut h = BytesMut::with_capacity(HEADER_LEN);
        h.put_slice(MAGIC);
        h.put_u16(VERSION);
        h.put_u16(0);
        Self {
            parts: vec![h.freeze()],
            len: HEADER_LEN as u64,
            index: Vec::new(),
        }
    }

    /// Adds one partition's range made of `batches`, in order.
    pub fn add(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        base_offset: i64,
        end_offset: i64,
        max_timestamp_ms: i64,
        batches: impl IntoIterator<Item = Bytes>,
    ) -> IndexEntry {
        let position = self.len;
        for b in batches {
            self.len += b.len() as u64;
            self.parts.push(b);
        }
        let e = IndexEntry {
            topic_id,
            partition,
            base_offset,
            end_offset,
            max_timestamp_ms,
            position,
            length: self.len - position,
        };
        self.index.push(e.clone());
        e
    }

    /// The object's parts (to upload as one payload) and its index.
    pub fn finish(mut self) -> (Vec<Bytes>, Vec<IndexEntry>) {
        let index_pos = self.len;
        let mut idx = BytesMut::with_capacity(4 + self.index.len() * ENTRY_LEN + FOOTER_LEN);
        idx.put_u32(self.index.len() as u32);
        for e in &self.index {
            idx.put_slice(e.topic_id.as_bytes());
            idx.put_i32(e.partition);
            idx.put_i64(e.base_offset);
            idx.put_i64(e.end_offset);
            idx.put_i64(e.max_timestamp_ms);
            idx.put_u64(e.position);
            idx.put_u64(e.length);
        }
        let crc = crc32c::crc32c(&idx);
        idx.put_u64(index_pos);
        idx.put_u32(crc);
        idx.put_slice(MAGIC);
        self.parts.push(idx.freeze());
        (self.parts, self.index)
    }
}

/// Reads the index of a whole object.
pub fn read_index(obj: &[u8]) -> Result<Vec<IndexEntry>, ObjectFormatError> {
    let bad = |m: &str| ObjectFormatError::Invalid(m.to_string());
    if obj.len() < HEADER_LEN + 4 + FOOTER_LEN || &obj[..4] != MAGIC {
        return Err(bad("missing header"));
    }
    if u16::from_be_bytes([obj[4], obj[5]]) != VERSION {
        return Err(bad("unknown version"));
    }
    let foot = &obj[obj.len() - FOOTER_LEN..];
    if &foot[12..16] != MAGIC {
        return Err(bad("missing footer"));
    }
    let mut p = [0u8; 8];
    p.copy_from_slice(&foot[..8]);
    let index_pos = usize::try_from(u64::from_be_bytes(p)).map_err(|_| bad("index position"))?;
    let index_end = obj.len() - FOOTER_LEN;
    if index_pos < HEADER_LEN || index_pos + 4 > index_end {
        return Err(bad("index position out of bounds"));
    }
    let idx = &obj[index_pos..index_end];
    let crc = u32::from_be_bytes([foot[8], foot[9], foot[10], foot[11]]);
    if crc32c::crc32c(idx) != crc {
        return Err(bad("index CRC mismatch"));
    }
    let count = u32::from_be_bytes([idx[0], idx[1], idx[2], idx[3]]) as usize;
    if idx.len() != 4 + count * ENTRY_LEN {
        return Err(bad("index length does not match its count"));
    }
    let i64_at = |b: &[u8], at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        i64::from_be_bytes(a)
    };
    let mut out = Vec::with_capacity(count);
    for e in idx[4..].chunks_exact(ENTRY_LEN) {
        let mut id = [0u8; 16];
        id.copy_from_slice(&e[..16]);
        let entry = IndexEntry {
            topic_id: Uuid::from_bytes(id),
            partition: i32::from_be_bytes([e[16], e[17], e[18], e[19]]),
            base_offset: i64_at(e, 20),
            end_offset: i64_at(e, 28),
            max_timestamp_ms: i64_at(e, 36),
            position: i64_at(e, 44) as u64,
            length: i64_at(e, 52) as u64,
        };
        if entry.position.saturating_add(entry.length) > index_pos as u64 {
            return Err(bad("range beyond the data"));
        }
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_damage() {
        let mut b = ObjectBuilder::new();
        let t = Uuid::new_v4();
        let e1 = b.add(
            t,
            0,
            0,
            3,
            10,
            [Bytes::from_static(b"abc"), Bytes::from_static(b"de")],
        );
        let e2 = b.add(t, 1, 7, 9, 20, [Bytes::from_static(b"xyz")]);
        let (parts, idx) = b.finish();
        let obj: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(read_index(&obj).unwrap(), idx);
        assert_eq!(idx, vec![e1.clone(), e2]);
        assert_eq!(&obj[e1.position as usize..][..e1.length as usize], b"abcde");
        let mut bad = obj.clone();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert!(read_index(&bad).is_err());
        for cut in 0..obj.len() {
            assert!(read_index(&obj[..cut]).is_err());
        }
    }
}
