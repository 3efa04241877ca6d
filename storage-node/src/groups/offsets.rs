//! OffsetCommit and OffsetFetch. Committed offsets live in the metadata store, which answers
//! every fetch; a commit is answered only after the store made it durable.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use fjord_metadata::CommittedOffset;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use tokio::time::Instant;
use tracing::{debug, warn};
use uuid::Uuid;

use super::codec::{decode, encode, sb, st};
use super::error::{code_of, GroupError};
use super::registry::GroupKey;
use super::state::{Group, GroupState};
use super::GroupCoordinator;
use crate::api::NodeError;

/// Per partition of a topic: the refusal, if any.
type PartitionResults = Vec<(i32, Option<GroupError>)>;

/// One partition's committed offset as OffsetFetch reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FetchedPartition {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
}

impl FetchedPartition {
    fn missing(partition: i32) -> Self {
        Self {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
        }
    }
}

impl Group {
    /// May this member commit offsets now? As Kafka's `validateOffsetCommit`; a commit also
    /// counts as a heartbeat.
    fn validate_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        self.validate_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            // The member knows the new generation but has no assignment yet.
            return Err(GroupError::RebalanceInProgress);
        }
        if let Some(m) = self.member_mut(member_id) {
            m.last_heartbeat = now;
        }
        Ok(())
    }
}

impl GroupCoordinator {
    pub(super) async fn offset_commit(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
        now_ms: i64,
    ) -> Result<Bytes, NodeError> {
        let req: OffsetCommitRequest = decode(body, version)?;
        let key = GroupKey::new(cluster, &req.group_id);
        // Serialise with DeleteGroups of this group (see Registry::offset_lock).
        let _write = self.registry.offset_lock(&key).lock().await;
        let member_id = st(&req.member_id);
        let instance_id = req.group_instance_id.as_ref().map(st);
        let generation = req.generation_id_or_member_epoch;
        let validation = self
            .registry
            .with_group(&key, false, &self.config, |g| {
                g.validate_commit(
                    generation,
                    &member_id,
                    instance_id.as_deref(),
                    Instant::now(),
                )
            })
            // Not hosted: only a simple (non-member) commit may create offsets. A member of a
            // group that does not exist hears GROUP_ID_NOT_FOUND from v9 on, as from Kafka 4.0.
            .unwrap_or(match (generation < 0, version >= 9) {
                (true, _) => Ok(()),
                (false, true) => Err(GroupError::GroupIdNotFound),
                (false, false) => Err(GroupError::IllegalGeneration),
            });

        // Per partition: Err(e) = refused, Ok(()) = to be persisted.
        let mut results: Vec<(String, PartitionResults)> = Vec::new();
        let mut to_store = Vec::new();
        for topic in &req.topics {
            let name = st(&topic.name);
            let mut parts = Vec::with_capacity(topic.partitions.len());
            for p in &topic.partitions {
                let metadata = p.committed_metadata.as_ref().map(st).unwrap_or_default();
                let err = match &validation {
                    Err(e) => Some(e.clone()),
                    Ok(()) if metadata.len() > self.config.max_offset_metadata_bytes => {
                        Some(GroupError::OffsetMetadataTooLarge)
                    }
                    Ok(()) => {
                        to_store.push(CommittedOffset {
                            topic: name.clone(),
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata,
                            commit_ms: now_ms,
                        });
                        None
                    }
                };
                parts.push((p.partition_index, err));
            }
            results.push((name, parts));
        }
        if !to_store.is_empty() {
            if let Err(e) = self
                .store
                .commit_offsets(cluster, &key.group, &to_store)
                .await
            {
                warn!(group = %key.group, error = %e, "committing offsets failed");
                let e = GroupError::from(e);
                for (_, parts) in &mut results {
                    for (_, err) in parts.iter_mut().filter(|(_, err)| err.is_none()) {
                        *err = Some(e.clone());
                    }
                }
            }
        }
        if let Err(e) = &validation {
            debug!(group = %key.group, error = %e, "offset commit refused");
        }
        let resp = OffsetCommitResponse::default().with_topics(
            results
                .into_iter()
                .map(|(name, parts)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(TopicName(sb(name)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, e)| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(code_of(e.as_ref()))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
        encode(&resp, version)
    }

    pub(super) async fn offset_fetch(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
    ) -> Result<Bytes, NodeError> {
        let req: OffsetFetchRequest = decode(body, version)?;
        if version >= 8 {
            let mut groups = Vec::with_capacity(req.groups.len());
            for g in &req.groups {
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (st(&t.name), t.partition_indexes.clone()))
                        .collect::<Vec<_>>()
                });
                let group_id = st(&g.group_id);
                let (topics, err) = self.fetch_group(cluster, &group_id, wanted).await;
                groups.push(
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(code_of(err.as_ref()))
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(name, parts)| {
                                    OffsetFetchResponseTopics::default()
                                        .with_name(TopicName(sb(name)))
                                        .with_partitions(
                                            parts
                                                .into_iter()
                                                .map(|p| {
                                                    OffsetFetchResponsePartitions::default()
                                                        .with_partition_index(p.partition)
                                                        .with_committed_offset(p.offset)
                                                        .with_committed_leader_epoch(p.leader_epoch)
                                                        .with_metadata(Some(sb(p.metadata)))
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        ),
                );
            }
            return encode(&OffsetFetchResponse::default().with_groups(groups), version);
        }
        let wanted = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (st(&t.name), t.partition_indexes.clone()))
                .collect::<Vec<_>>()
        });
        let (topics, err) = self.fetch_group(cluster, &st(&req.group_id), wanted).await;
        // v1 has no top-level error: a failure shows on every partition instead.
        let partition_err = if version < 2 {
            code_of(err.as_ref())
        } else {
            0
        };
        let resp = OffsetFetchResponse::default()
            .with_error_code(if version >= 2 {
                code_of(err.as_ref())
            } else {
                0
            })
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, parts)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(sb(name)))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|p| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(p.partition)
                                            .with_committed_offset(p.offset)
                                            .with_committed_leader_epoch(if version >= 5 {
                                                p.leader_epoch
                                            } else {
                                                -1
                                            })
                                            .with_metadata(Some(sb(p.metadata)))
                                            .with_error_code(partition_err)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        encode(&resp, version)
    }

    /// The committed offsets of one group: of the `wanted` partitions (-1 where nothing was
    /// committed), or of every committed partition when `wanted` is `None`.
    async fn fetch_group(
        &self,
        cluster: Uuid,
        group: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> (Vec<(String, Vec<FetchedPartition>)>, Option<GroupError>) {
        let stored = match self.store.fetch_offsets(cluster, group).await {
            Ok(stored) => stored,
            Err(e) => {
                warn!(group, error = %e, "fetching offsets failed");
                let err = GroupError::from(e);
                let topics = wanted
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, ps)| (t, ps.into_iter().map(FetchedPartition::missing).collect()))
                    .collect();
                return (topics, Some(err));
            }
        };
        let found = |o: &CommittedOffset| FetchedPartition {
            partition: o.partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
        };
        let topics = match wanted {
            None => {
                let mut by_topic: BTreeMap<String, Vec<FetchedPartition>> = BTreeMap::new();
                for o in &stored {
                    by_topic.entry(o.topic.clone()).or_default().push(found(o));
                }
                by_topic
                    .into_iter()
                    .map(|(t, mut ps)| {
                        ps.sort_by_key(|p| p.partition);
                        (t, ps)
                    })
                    .collect()
            }
            Some(wanted) => {
                let index: HashMap<(&str, i32), &CommittedOffset> = stored
                    .iter()
                    .map(|o| ((o.topic.as_str(), o.partition), o))
                    .collect();
                wanted
                    .into_iter()
                    .map(|(t, ps)| {
                        let parts = ps
                            .into_iter()
                            .map(|p| match index.get(&(t.as_str(), p)) {
                                Some(o) => found(o),
                                None => FetchedPartition::missing(p),
                            })
                            .collect();
                        (t, parts)
                    })
                    .collect()
            }
        };
        (topics, None)
    }
}
