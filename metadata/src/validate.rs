//! Argument checks and error mapping shared by the backends, so that SQLite and DynamoDB refuse
//! the same calls with the same [`MetadataError`] and message; only the storage steps differ.

use uuid::Uuid;

use crate::error::{MetadataError, Result};
use crate::store::PartitionCommit;
use crate::types::*;

/// A new topic needs at least one partition.
pub(crate) fn new_topic(t: &Topic) -> Result<()> {
    if t.partitions < 1 {
        return Err(MetadataError::InvalidArgument(format!(
            "topic {} must have at least one partition, not {}",
            t.name, t.partitions
        )));
    }
    Ok(())
}

/// Checks that an owner row belongs to `topic`, lies within its partition count and has a
/// non-negative log start. Duplicate partitions are each backend's own check (SQLite leaves
/// them to its primary key).
pub(crate) fn owner(topic: &Topic, o: &PartitionOwner) -> Result<()> {
    if o.topic_id != topic.id {
        return Err(MetadataError::InvalidArgument(format!(
            "owner of partition {}/{} given for topic {} ({})",
            o.topic_id, o.partition, topic.name, topic.id
        )));
    }
    if o.partition < 0 || o.partition >= topic.partitions {
        return Err(MetadataError::InvalidArgument(format!(
            "partition {} out of range for topic {} with {} partitions",
            o.partition, topic.name, topic.partitions
        )));
    }
    if o.log_start_offset < 0 {
        return Err(MetadataError::InvalidArgument(format!(
            "negative log start offset {} for {}/{}",
            o.log_start_offset, topic.name, o.partition
        )));
    }
    Ok(())
}

/// The error for a second owner row of one partition.
pub(crate) fn partition_exists(topic_id: Uuid, partition: i32) -> MetadataError {
    MetadataError::AlreadyExists {
        kind: "partition",
        name: format!("{topic_id}/{partition}"),
    }
}

/// The error for a topic id with no stored topic.
pub(crate) fn topic_not_found(topic_id: Uuid) -> MetadataError {
    MetadataError::NotFound {
        kind: "topic",
        name: topic_id.to_string(),
    }
}

/// The error for an update offering `offered_version` of a topic stored as `stored`.
pub(crate) fn topic_version_conflict(stored: &Topic, offered_version: i64) -> MetadataError {
    MetadataError::Conflict(format!(
        "topic {} ({}) is at version {}, not {}",
        stored.name, stored.id, stored.version, offered_version
    ))
}

/// Checks an update `t` against the `stored` topic: same version, same name and cluster, no
/// fewer partitions.
pub(crate) fn topic_update(stored: &Topic, t: &Topic) -> Result<()> {
    if stored.version != t.version {
        return Err(topic_version_conflict(stored, t.version));
    }
    if stored.cluster_id != t.cluster_id || stored.name != t.name {
        return Err(MetadataError::InvalidArgument(format!(
            "topic {} ({}) cannot be renamed or moved to another cluster",
            stored.name, stored.id
        )));
    }
    if t.partitions < stored.partitions {
        return Err(MetadataError::InvalidArgument(format!(
            "topic {} has {} partitions; the count cannot drop to {}",
            stored.name, stored.partitions, t.partitions
        )));
    }
    Ok(())
}

/// The record an accepted update `t` of `stored` writes: `t` at the next version, keeping the
/// stored creation time.
pub(crate) fn updated_topic(stored: &Topic, t: &Topic) -> Result<Topic> {
    let mut updated = t.clone();
    updated.version = t
        .version
        .checked_add(1)
        .ok_or_else(|| MetadataError::Corrupt(format!("topic {} version overflow", t.name)))?;
    updated.created_ms = stored.created_ms;
    Ok(updated)
}

/// The error for a claim of a partition with no owner row (its topic is gone).
pub(crate) fn partition_not_found(topic_id: Uuid, partition: i32) -> MetadataError {
    MetadataError::NotFound {
        kind: "partition",
        name: format!("{topic_id}/{partition}"),
    }
}

/// The error for a node's fenced write to a partition with no owner row: a `Conflict` like any
/// other lost ownership, so the writer stops serving the partition.
pub(crate) fn partition_gone(topic_id: Uuid, partition: i32) -> MetadataError {
    MetadataError::Conflict(format!(
        "partition {topic_id}/{partition} no longer exists (topic deleted)"
    ))
}

/// Checks a claim expecting `expected_epoch` against the current `owner` and returns the epoch
/// the claim takes.
pub(crate) fn claim(owner: &PartitionOwner, expected_epoch: i32) -> Result<i32> {
    if owner.epoch != expected_epoch {
        return Err(claim_conflict(owner, expected_epoch));
    }
    expected_epoch.checked_add(1).ok_or_else(|| {
        MetadataError::Conflict(format!(
            "partition {}/{} has exhausted its epochs",
            owner.topic_id, owner.partition
        ))
    })
}

/// The error for a claim expecting `expected_epoch` of a partition now owned as `owner`.
pub(crate) fn claim_conflict(owner: &PartitionOwner, expected_epoch: i32) -> MetadataError {
    MetadataError::Conflict(format!(
        "partition {}/{} is at epoch {} (owned by node {}), not the expected epoch {expected_epoch}",
        owner.topic_id, owner.partition, owner.epoch, owner.node_id
    ))
}

/// A log start offset cannot be negative.
pub(crate) fn log_start_offset(
    topic_id: Uuid,
    partition: i32,
    log_start_offset: i64,
) -> Result<()> {
    if log_start_offset < 0 {
        return Err(MetadataError::InvalidArgument(format!(
            "negative log start offset {log_start_offset} for {topic_id}/{partition}"
        )));
    }
    Ok(())
}

/// Checks that a fenced write at `epoch` still holds the partition owned as `owner`.
pub(crate) fn epoch_fence(owner: &PartitionOwner, epoch: i32) -> Result<()> {
    if owner.epoch != epoch {
        return Err(MetadataError::Conflict(format!(
            "partition {}/{} is at epoch {} (owned by node {}), not epoch {epoch}",
            owner.topic_id, owner.partition, owner.epoch, owner.node_id
        )));
    }
    Ok(())
}

/// Checks that `node_id` at the commit's epoch still owns the partition owned as `owner`.
pub(crate) fn commit_fence(
    c: &PartitionCommit,
    node_id: &str,
    owner: &PartitionOwner,
) -> Result<()> {
    if owner.node_id != node_id || owner.epoch != c.epoch {
        return Err(MetadataError::Conflict(format!(
            "partition {}/{} is owned by node {} epoch {}, not node {node_id} epoch {}",
            c.topic_id, c.partition, owner.node_id, owner.epoch, c.epoch
        )));
    }
    Ok(())
}

/// Checks that a manifest entry belongs to the partition it is committed under and covers a
/// non-empty, non-negative offset range.
pub(crate) fn manifest_entry(c: &PartitionCommit, e: &ManifestEntry) -> Result<()> {
    if e.topic_id != c.topic_id || e.partition != c.partition {
        return Err(MetadataError::InvalidArgument(format!(
            "manifest entry for {}/{} committed under partition {}/{}",
            e.topic_id, e.partition, c.topic_id, c.partition
        )));
    }
    if e.base_offset < 0 || e.end_offset <= e.base_offset {
        return Err(MetadataError::InvalidArgument(format!(
            "manifest entry of {}/{} has an empty or negative range [{}, {})",
            e.topic_id, e.partition, e.base_offset, e.end_offset
        )));
    }
    Ok(())
}

/// The error for a new manifest entry `e` overlapping the stored entry `prev`.
pub(crate) fn manifest_overlap(e: &ManifestEntry, prev: &ManifestEntry) -> MetadataError {
    MetadataError::Conflict(format!(
        "manifest entry [{}, {}) of {}/{} in {} overlaps stored entry [{}, {}) in {}",
        e.base_offset,
        e.end_offset,
        e.topic_id,
        e.partition,
        e.object_key,
        prev.base_offset,
        prev.end_offset,
        prev.object_key
    ))
}
