//! DescribeGroups, ListGroups and DeleteGroups. Groups that exist only through committed offsets
//! in metadata (no members hosted) are Empty groups, as on a Kafka broker.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use tokio::time::Instant;
use tracing::{info, warn};
use uuid::Uuid;

use super::codec::{decode, encode, sb};
use super::error::{GroupError, NONE};
use super::registry::GroupKey;
use super::state::{Group, GroupState};
use super::GroupCoordinator;
use crate::api::NodeError;

/// Every classic group is of this type (ListGroups v5 `group_type`).
const CLASSIC: &str = "classic";

impl Group {
    /// DescribeGroups' view, as Kafka's group summary: member metadata and assignments only
    /// when Stable.
    fn describe(&self, version: i16) -> DescribedGroup {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        DescribedGroup::default()
            .with_error_code(NONE)
            .with_group_id(GroupId(sb(self.id.clone())))
            .with_group_state(sb(self.state.as_str()))
            .with_protocol_type(sb(self.protocol_type.clone().unwrap_or_default()))
            .with_protocol_data(sb(if stable {
                protocol.clone()
            } else {
                String::new()
            }))
            .with_members(
                self.members
                    .iter()
                    .map(|m| {
                        let (metadata, assignment) = if stable {
                            (m.metadata_for(&protocol), m.assignment.clone())
                        } else {
                            (Bytes::new(), Bytes::new())
                        };
                        DescribedGroupMember::default()
                            .with_member_id(sb(m.id.clone()))
                            .with_group_instance_id(if version >= 4 {
                                m.instance_id.clone().map(sb)
                            } else {
                                None
                            })
                            .with_client_id(sb(m.client_id.clone()))
                            .with_client_host(sb(m.client_host.clone()))
                            .with_member_metadata(metadata)
                            .with_member_assignment(assignment)
                    })
                    .collect(),
            )
    }
}

impl GroupCoordinator {
    pub(super) async fn describe_groups(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
    ) -> Result<Bytes, NodeError> {
        let req: DescribeGroupsRequest = decode(body, version)?;
        let mut described = Vec::with_capacity(req.groups.len());
        for group_id in &req.groups {
            let key = GroupKey::new(cluster, group_id);
            let hosted = self
                .registry
                .with_group(&key, false, &self.config, |g| g.describe(version));
            let d = match hosted {
                Some(d) => d,
                None => self.describe_unhosted(cluster, group_id, version).await,
            };
            described.push(d);
        }
        encode(
            &DescribeGroupsResponse::default().with_groups(described),
            version,
        )
    }

    /// A group without members here: Empty if it has committed offsets, else it does not exist
    /// (Dead; from v6 also GROUP_ID_NOT_FOUND, as Kafka 4.0 answers).
    async fn describe_unhosted(
        &self,
        cluster: Uuid,
        group_id: &GroupId,
        version: i16,
    ) -> DescribedGroup {
        let base = DescribedGroup::default().with_group_id(group_id.clone());
        match self.store.fetch_offsets(cluster, group_id).await {
            Ok(offsets) if !offsets.is_empty() => {
                base.with_group_state(sb(GroupState::Empty.as_str()))
            }
            Ok(_) if version >= 6 => base
                .with_group_state(sb(GroupState::Dead.as_str()))
                .with_error_code(GroupError::GroupIdNotFound.code())
                .with_error_message(Some(sb(format!("Group {} not found.", &**group_id)))),
            Ok(_) => base.with_group_state(sb(GroupState::Dead.as_str())),
            Err(e) => {
                warn!(group = %&**group_id, error = %e, "reading group offsets failed");
                base.with_group_state(sb(GroupState::Dead.as_str()))
                    .with_error_code(GroupError::from(e).code())
            }
        }
    }

    pub(super) async fn list_groups(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
    ) -> Result<Bytes, NodeError> {
        let req: ListGroupsRequest = decode(body, version)?;
        // group id → (protocol type, state)
        let mut all: BTreeMap<String, (String, &'static str)> = BTreeMap::new();
        let mut error = NONE;
        match self.store.list_offset_groups(cluster).await {
            Ok(names) => {
                for name in names {
                    all.insert(name, (String::new(), GroupState::Empty.as_str()));
                }
            }
            Err(e) => {
                warn!(error = %e, "listing groups with offsets failed");
                error = GroupError::from(e).code();
            }
        }
        for slot in self.registry.of_cluster(cluster) {
            let mut g = slot.group.lock();
            g.tick(Instant::now(), &self.config);
            if g.state != GroupState::Dead {
                all.insert(
                    g.id.clone(),
                    (
                        g.protocol_type.clone().unwrap_or_default(),
                        g.state.as_str(),
                    ),
                );
            }
        }
        let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
        let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
        let groups = all
            .into_iter()
            .filter(|(_, (_, state))| states.is_empty() || states.contains(&state.to_lowercase()))
            .filter(|_| types.is_empty() || types.iter().any(|t| t == CLASSIC))
            .map(|(id, (ptype, state))| {
                let g = ListedGroup::default()
                    .with_group_id(GroupId(sb(id)))
                    .with_protocol_type(sb(ptype));
                let g = if version >= 4 {
                    g.with_group_state(sb(state))
                } else {
                    g
                };
                if version >= 5 {
                    g.with_group_type(sb(CLASSIC))
                } else {
                    g
                }
            })
            .collect();
        encode(
            &ListGroupsResponse::default()
                .with_error_code(error)
                .with_groups(groups),
            version,
        )
    }

    pub(super) async fn delete_groups(
        &self,
        cluster: Uuid,
        body: &Bytes,
        version: i16,
    ) -> Result<Bytes, NodeError> {
        let req: DeleteGroupsRequest = decode(body, version)?;
        let mut results = Vec::with_capacity(req.groups_names.len());
        for group_id in &req.groups_names {
            let key = GroupKey::new(cluster, group_id);
            let code = match self.delete_group(&key).await {
                Ok(()) => NONE,
                Err(e) => e.code(),
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(code),
            );
        }
        encode(
            &DeleteGroupsResponse::default().with_results(results),
            version,
        )
    }

    /// Deletes a group without members and its committed offsets.
    async fn delete_group(&self, key: &GroupKey) -> Result<(), GroupError> {
        let _write = self.registry.offset_lock(key).lock().await;
        let hosted = self
            .registry
            .with_group(key, false, &self.config, |g| match g.state {
                GroupState::Empty | GroupState::Dead => {
                    g.state = GroupState::Dead;
                    Ok(())
                }
                _ => Err(GroupError::NonEmptyGroup),
            });
        match hosted {
            Some(Err(e)) => return Err(e),
            // with_group evicted it.
            Some(Ok(())) => {}
            None => {
                let offsets = self.store.fetch_offsets(key.cluster, &key.group).await?;
                if offsets.is_empty() {
                    return Err(GroupError::GroupIdNotFound);
                }
            }
        }
        self.store
            .delete_group_offsets(key.cluster, &key.group)
            .await?;
        info!(group = %key.group, "group deleted");
        Ok(())
    }
}
