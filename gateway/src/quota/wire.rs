//! Reading the few wire fields quotas need, without decoding whole messages: the
//! `throttle_time_ms` slot of an encoded response, and the per-partition record sizes of a
//! Produce request. Every read is bounds-checked; malformed input yields `None`.

use kafka_protocol::messages::ApiKey;

/// A cursor over wire bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn i16(&mut self) -> Option<i16> {
        let b = self.take(2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        let b = self.take(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An unsigned LEB128 varint of at most 32 bits.
    fn uvarint(&mut self) -> Option<u32> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = *self.take(1)?.first()?;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Skips a tagged-field section (flexible versions).
    fn skip_tagged(&mut self) -> Option<()> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.take(usize::try_from(size).ok()?)?;
        }
        Some(())
    }

    /// A (nullable) string or byte field's content length: i16/i32 or compact (uvarint + 1)
    /// prefix; null is length 0.
    fn len_prefixed(&mut self, flexible: bool, wide: bool) -> Option<&'a [u8]> {
        let len = if flexible {
            match self.uvarint()? {
                0 => return Some(&[]),
                n => usize::try_from(n - 1).ok()?,
            }
        } else if wide {
            match self.i32()? {
                -1 => return Some(&[]),
                n => usize::try_from(n).ok()?,
            }
        } else {
            match self.i16()? {
                -1 => return Some(&[]),
                n => usize::try_from(n).ok()?,
            }
        };
        self.take(len)
    }

    /// An array count: i32 or compact (uvarint + 1); null counts as 0.
    fn count(&mut self, flexible: bool) -> Option<usize> {
        if flexible {
            match self.uvarint()? {
                0 => Some(0),
                n => usize::try_from(n - 1).ok(),
            }
        } else {
            match self.i32()? {
                -1 => Some(0),
                n => usize::try_from(n).ok(),
            }
        }
    }
}

/// The first version of `api` whose response has `throttle_time_ms` as its first body field;
/// `None` for APIs without one there (ApiVersions, SASL, Produce, whose field is last).
fn throttle_first_from(api: ApiKey) -> Option<i16> {
    use ApiKey::*;
    Some(match api {
        Fetch | FindCoordinator | Heartbeat | LeaveGroup | SyncGroup | DescribeGroups
        | ListGroups | DeleteTopics => 1,
        ListOffsets | JoinGroup | CreateTopics | OffsetForLeaderEpoch => 2,
        Metadata | OffsetCommit | OffsetFetch => 3,
        DeleteRecords
        | InitProducerId
        | AddPartitionsToTxn
        | AddOffsetsToTxn
        | EndTxn
        | TxnOffsetCommit
        | DescribeAcls
        | CreateAcls
        | DeleteAcls
        | DescribeConfigs
        | AlterConfigs
        | CreatePartitions
        | DeleteGroups
        | IncrementalAlterConfigs
        | DescribeCluster
        | DescribeProducers
        | DescribeUserScramCredentials
        | AlterUserScramCredentials
        | DescribeLogDirs
        | AlterPartitionReassignments
        | ListPartitionReassignments
        | ElectLeaders
        | DescribeTransactions
        | ListTransactions => 0,
        _ => return None,
    })
}

/// Where `throttle_time_ms` sits in an encoded response frame (size prefix included) of
/// `api` at `version`, whose response header has version `header_version`; `None` if that
/// response has no such field or the frame is too short.
pub fn throttle_offset(
    api: ApiKey,
    version: i16,
    header_version: i16,
    frame: &[u8],
) -> Option<usize> {
    let mut r = Reader::new(frame, 4 + 4);
    if header_version >= 1 {
        r.skip_tagged()?;
    }
    let at = if throttle_first_from(api).is_some_and(|v| version >= v) {
        r.pos
    } else if api == ApiKey::Produce && version >= 1 {
        // Last field; in flexible versions only the (empty, one-byte) tagged section follows.
        let tail = if version >= 9 { 5 } else { 4 };
        if version >= 9 && frame.last() != Some(&0) {
            return None;
        }
        frame.len().checked_sub(tail).filter(|at| *at >= r.pos)?
    } else {
        return None;
    };
    (at + 4 <= frame.len()).then_some(at)
}

/// Raises the `throttle_time_ms` at `offset` of `frame` to at least `ms`.
pub fn raise_throttle(frame: &mut [u8], offset: usize, ms: i32) {
    if let Some(slot) = frame.get_mut(offset..offset + 4) {
        let current = i32::from_be_bytes([slot[0], slot[1], slot[2], slot[3]]);
        slot.copy_from_slice(&current.max(ms).to_be_bytes());
    }
}

/// Calls `each(topic, partition, record_bytes)` for every partition of a Produce request
/// body (after the request header) at `version`; `None` if the body does not parse (the
/// partitions before the fault were reported) or the version addresses topics by id (v13+).
pub fn produce_partitions(
    body: &[u8],
    version: i16,
    mut each: impl FnMut(&[u8], i32, usize),
) -> Option<()> {
    if !(3..=12).contains(&version) {
        return None;
    }
    let flexible = version >= 9;
    let mut r = Reader::new(body, 0);
    r.len_prefixed(flexible, false)?; // transactional_id
    r.i16()?; // acks
    r.i32()?; // timeout_ms
    let topics = r.count(flexible)?;
    for _ in 0..topics {
        let name = r.len_prefixed(flexible, false)?;
        let partitions = r.count(flexible)?;
        for _ in 0..partitions {
            let index = r.i32()?;
            let records = r.len_prefixed(flexible, true)?;
            each(name, index, records.len());
            if flexible {
                r.skip_tagged()?;
            }
        }
        if flexible {
            r.skip_tagged()?;
        }
    }
    if flexible {
        r.skip_tagged()?;
    }
    Some(())
}

/// Calls `each(topic, partition, record_bytes)` for every partition of an encoded Fetch
/// response frame (size prefix included) at `version` (4..=16), whose header has version
/// `header_version`. `topic` is the name (v ≤ 12) or the 16 id bytes (v13+). `None` if the
/// frame does not parse (partitions before the fault were reported).
pub fn fetch_partitions(
    frame: &[u8],
    version: i16,
    header_version: i16,
    mut each: impl FnMut(&[u8], i32, usize),
) -> Option<()> {
    if !(4..=16).contains(&version) {
        return None;
    }
    let flexible = version >= 12;
    let mut r = Reader::new(frame, 4 + 4);
    if header_version >= 1 {
        r.skip_tagged()?;
    }
    r.i32()?; // throttle_time_ms
    if version >= 7 {
        r.i16()?; // error_code
        r.i32()?; // session_id
    }
    let topics = r.count(flexible)?;
    for _ in 0..topics {
        let topic = if version >= 13 {
            r.take(16)?
        } else {
            r.len_prefixed(flexible, false)?
        };
        let partitions = r.count(flexible)?;
        for _ in 0..partitions {
            let index = r.i32()?;
            r.i16()?; // error_code
            r.take(8 + 8)?; // high_watermark, last_stable_offset
            if version >= 5 {
                r.take(8)?; // log_start_offset
            }
            let aborted = r.count(flexible)?;
            for _ in 0..aborted {
                r.take(8 + 8)?; // producer_id, first_offset
                if flexible {
                    r.skip_tagged()?;
                }
            }
            if version >= 11 {
                r.i32()?; // preferred_read_replica
            }
            let records = r.len_prefixed(flexible, true)?;
            each(topic, index, records.len());
            if flexible {
                r.skip_tagged()?;
            }
        }
        if flexible {
            r.skip_tagged()?;
        }
    }
    if flexible {
        r.skip_tagged()?;
    }
    Some(())
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
