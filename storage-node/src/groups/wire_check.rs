//! A bounds check of request bodies before `kafka-protocol` decodes them.
//!
//! The crate allocates every array with the capacity the wire claims, so a few bytes can ask
//! for gigabytes (and an allocation failure aborts the process). This module walks the same
//! layout the decoder will (field by field, per version) without allocating, and refuses a
//! body whose arrays claim more elements than the remaining bytes could hold, or whose arrays
//! would together take much more memory than the body itself.

use std::mem::size_of;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{ApiKey, GroupId};
use kafka_protocol::protocol::StrBytes;

use crate::api::NodeError;

/// Memory the decoded arrays may take beyond a multiple of the body size: small requests with
/// short strings (e.g. DescribeGroups of many one-letter groups) stay well inside it.
const ALLOC_FLOOR: usize = 1 << 20;
/// Decoded arrays may take at most this many times the body size (plus the floor). Real
/// requests stay below 5; minimal-element garbage would reach about 30.
const ALLOC_FACTOR: usize = 8;

/// Checks `body` against the layout of `key` at `version`.
pub(crate) fn check(key: ApiKey, version: i16, body: &[u8]) -> Result<(), NodeError> {
    let mut c = Cursor {
        buf: body,
        flex: false,
        alloc: 0,
        budget: body
            .len()
            .saturating_mul(ALLOC_FACTOR)
            .saturating_add(ALLOC_FLOOR),
    };
    let v = version;
    let r = match key {
        ApiKey::JoinGroup => join_group(&mut c, v),
        ApiKey::SyncGroup => sync_group(&mut c, v),
        ApiKey::Heartbeat => heartbeat(&mut c, v),
        ApiKey::LeaveGroup => leave_group(&mut c, v),
        ApiKey::OffsetCommit => offset_commit(&mut c, v),
        ApiKey::OffsetFetch => offset_fetch(&mut c, v),
        ApiKey::DescribeGroups => string_list(&mut c, v >= 5).and_then(|()| {
            if v >= 3 {
                c.skip(1)?;
            }
            c.tags()
        }),
        ApiKey::ListGroups => list_groups(&mut c, v),
        ApiKey::DeleteGroups => string_list(&mut c, v >= 2).and_then(|()| c.tags()),
        _ => Err(Malformed("not a group api")),
    };
    r.map_err(|Malformed(why)| {
        NodeError::InvalidRequest(format!("malformed {key:?} v{version} body: {why}"))
    })
}

/// Why a body was refused.
struct Malformed(&'static str);

type Check = Result<(), Malformed>;

struct Cursor<'a> {
    buf: &'a [u8],
    /// Flexible versions: compact strings/arrays and tagged fields.
    flex: bool,
    alloc: usize,
    budget: usize,
}

impl Cursor<'_> {
    fn skip(&mut self, n: usize) -> Check {
        if self.buf.len() < n {
            return Err(Malformed("truncated"));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }

    /// The next `N` bytes.
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(Malformed("truncated"))?;
        self.buf = rest;
        Ok(*head)
    }

    fn uvarint(&mut self) -> Result<u32, Malformed> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let Some((&b, rest)) = self.buf.split_first() else {
                return Err(Malformed("truncated varint"));
            };
            self.buf = rest;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed("varint too long"))
    }

    /// A length or count prefix, 0 for null: a compact varint (value + 1) in flexible versions,
    /// else a big-endian `i16` (`wide` false, strings) or `i32` (bytes, arrays) where -1 is null.
    fn length(&mut self, wide: bool, negative: &'static str) -> Result<usize, Malformed> {
        if self.flex {
            return Ok((self.uvarint()? as usize).saturating_sub(1));
        }
        let n = if wide {
            i32::from_be_bytes(self.take()?)
        } else {
            i32::from(i16::from_be_bytes(self.take()?))
        };
        match n {
            -1 => Ok(0),
            n if n < 0 => Err(Malformed(negative)),
            n => Ok(n as usize),
        }
    }

    /// A (nullable) string: the decoder checks nullability itself.
    fn string(&mut self) -> Check {
        let len = self.length(false, "negative string length")?;
        self.skip(len)
    }

    fn bytes(&mut self) -> Check {
        let len = self.length(true, "negative bytes length")?;
        self.skip(len)
    }

    /// An array header: the element count (0 for null), checked against the bytes left (each
    /// element needs at least `min_wire` bytes) and the allocation budget (`mem` bytes each).
    fn array(&mut self, min_wire: usize, mem: usize) -> Result<usize, Malformed> {
        let n = self.length(true, "negative array length")?;
        if n.saturating_mul(min_wire.max(1)) > self.buf.len() {
            return Err(Malformed("array longer than the body"));
        }
        self.alloc = self.alloc.saturating_add(n.saturating_mul(mem));
        if self.alloc > self.budget {
            return Err(Malformed("arrays too large for the body size"));
        }
        Ok(n)
    }

    /// Tagged fields (flexible versions only).
    fn tags(&mut self) -> Check {
        if !self.flex {
            return Ok(());
        }
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }

    /// Minimal encoded size of a string / bytes / array header / tag section.
    fn min_str(&self) -> usize {
        if self.flex {
            1
        } else {
            2
        }
    }

    fn min_bytes(&self) -> usize {
        if self.flex {
            1
        } else {
            4
        }
    }

    fn min_tags(&self) -> usize {
        usize::from(self.flex)
    }
}

/// An array of strings, each decoding to `mem` bytes.
fn string_array(c: &mut Cursor<'_>, mem: usize) -> Check {
    let n = c.array(c.min_str(), mem)?;
    (0..n).try_for_each(|_| c.string())
}

/// An array of `name: string, data: bytes, tags` entries (JoinGroup protocols, SyncGroup
/// assignments), each decoding to `mem` bytes.
fn named_bytes_array(c: &mut Cursor<'_>, mem: usize) -> Check {
    let min = c.min_str() + c.min_bytes() + c.min_tags();
    let n = c.array(min, mem)?;
    for _ in 0..n {
        c.string()?;
        c.bytes()?;
        c.tags()?;
    }
    Ok(())
}

/// The `group_id, generation_id: i32, member_id` head of SyncGroup, Heartbeat and
/// OffsetCommit, then `group_instance_id` when the version has it.
fn group_member_head(c: &mut Cursor<'_>, instance_id: bool) -> Check {
    c.string()?;
    c.skip(4)?;
    c.string()?;
    if instance_id {
        c.string()?;
    }
    Ok(())
}

fn list_groups(c: &mut Cursor<'_>, v: i16) -> Check {
    c.flex = v >= 3;
    if v >= 4 {
        string_array(c, size_of::<StrBytes>())?;
    }
    if v >= 5 {
        string_array(c, size_of::<StrBytes>())?;
    }
    c.tags()
}

fn string_list(c: &mut Cursor<'_>, flex: bool) -> Check {
    c.flex = flex;
    string_array(c, size_of::<GroupId>())
}

fn join_group(c: &mut Cursor<'_>, v: i16) -> Check {
    c.flex = v >= 6;
    c.string()?;
    c.skip(if v >= 1 { 8 } else { 4 })?;
    c.string()?;
    if v >= 5 {
        c.string()?;
    }
    c.string()?;
    named_bytes_array(c, size_of::<JoinGroupRequestProtocol>())?;
    if v >= 8 {
        c.string()?;
    }
    c.tags()
}

fn sync_group(c: &mut Cursor<'_>, v: i16) -> Check {
    c.flex = v >= 4;
    group_member_head(c, v >= 3)?;
    if v >= 5 {
        c.string()?;
        c.string()?;
    }
    named_bytes_array(c, size_of::<SyncGroupRequestAssignment>())?;
    c.tags()
}

fn heartbeat(c: &mut Cursor<'_>, v: i16) -> Check {
    c.flex = v >= 4;
    group_member_head(c, v >= 3)?;
    c.tags()
}

fn leave_group(c: &mut Cursor<'_>, v: i16) -> Check {
    c.flex = v >= 4;
    c.string()?;
    if v <= 2 {
        c.string()?;
    } else {
        let strings = if v >= 5 { 3 } else { 2 };
        let min = strings * c.min_str() + c.min_tags();
        let n = c.array(min, size_of::<MemberIdentity>())?;
        for _ in 0..n {
            for _ in 0..strings {
                c.string()?;
            }
            c.tags()?;
        }
    }
    c.tags()
}

fn offset_commit(c: &mut Cursor<'_>, v: i16) -> Check {
    c.flex = v >= 8;
    group_member_head(c, v >= 7)?;
    if v <= 4 {
        c.skip(8)?;
    }
    let part_fixed = if v >= 6 { 16 } else { 12 };
    let topic_min = c.min_str() + c.min_bytes() + c.min_tags();
    let topics = c.array(topic_min, size_of::<OffsetCommitRequestTopic>())?;
    for _ in 0..topics {
        c.string()?;
        let part_min = part_fixed + c.min_str() + c.min_tags();
        let parts = c.array(part_min, size_of::<OffsetCommitRequestPartition>())?;
        for _ in 0..parts {
            c.skip(part_fixed)?;
            c.string()?;
            c.tags()?;
        }
        c.tags()?;
    }
    c.tags()
}

/// `name, partition_indexes: [i32], tags` (the topic entry of both OffsetFetch layouts).
fn fetch_topics(c: &mut Cursor<'_>, mem: usize) -> Check {
    let min = c.min_str() + c.min_bytes() + c.min_tags();
    let n = c.array(min, mem)?;
    for _ in 0..n {
        c.string()?;
        let parts = c.array(4, size_of::<i32>())?;
        c.skip(parts * 4)?;
        c.tags()?;
    }
    Ok(())
}

fn offset_fetch(c: &mut Cursor<'_>, v: i16) -> Check {
    c.flex = v >= 6;
    if v <= 7 {
        c.string()?;
        fetch_topics(c, size_of::<OffsetFetchRequestTopic>())?;
    } else {
        let extra = if v >= 9 { 1 + 4 } else { 0 };
        let min = c.min_str() + extra + c.min_bytes() + c.min_tags();
        let groups = c.array(min, size_of::<OffsetFetchRequestGroup>())?;
        for _ in 0..groups {
            c.string()?;
            if v >= 9 {
                c.string()?;
                c.skip(4)?;
            }
            fetch_topics(c, size_of::<OffsetFetchRequestTopics>())?;
            c.tags()?;
        }
    }
    if v >= 7 {
        c.skip(1)?;
    }
    c.tags()
}
