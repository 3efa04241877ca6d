//! SyncGroup, Heartbeat and LeaveGroup on one group, following Kafka's classic coordinator.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::info;

use super::config::GroupConfig;
use super::error::GroupError;
use super::state::{Group, GroupState, SyncOutcome};

/// A decoded SyncGroup, independent of its wire version.
#[derive(Clone, Debug)]
pub(crate) struct SyncParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// v5+: the protocol type and name the member believes in; checked when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment (empty for followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// The immediate result of a SyncGroup.
#[derive(Debug)]
pub(crate) enum SyncAction {
    /// Answer now.
    Done(SyncOutcome),
    /// Parked until the leader sends the assignment (or the group rebalances).
    Wait(oneshot::Receiver<SyncOutcome>),
}

/// One member named in a LeaveGroup.
#[derive(Clone, Debug)]
pub(crate) struct LeavingMember {
    pub member_id: String,
    pub instance_id: Option<String>,
}

impl Group {
    /// Handles a SyncGroup.
    pub(crate) fn sync(&mut self, p: SyncParams, now: Instant) -> SyncAction {
        let fail = |e| SyncAction::Done(Err(e));
        if self.state == GroupState::Dead {
            return fail(GroupError::CoordinatorNotAvailable);
        }
        if let Err(e) = self.validate_member(&p.member_id, p.instance_id.as_deref()) {
            return fail(e);
        }
        if p.generation != self.generation {
            return fail(GroupError::IllegalGeneration);
        }
        let type_mismatch = p
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_mismatch = p
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol_name.as_ref());
        if type_mismatch || name_mismatch {
            return fail(GroupError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => fail(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => fail(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                self.pending_sync.remove(&p.member_id);
                match self.member_mut(&p.member_id) {
                    Some(m) => {
                        m.last_heartbeat = now;
                        SyncAction::Done(Ok(m.assignment.clone()))
                    }
                    None => fail(GroupError::UnknownMemberId),
                }
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                self.pending_sync.remove(&p.member_id);
                let Some(m) = self.member_mut(&p.member_id) else {
                    return fail(GroupError::UnknownMemberId);
                };
                m.last_heartbeat = now;
                if let Some(old) = m.sync_waiter.replace(tx) {
                    let _ = old.send(Err(GroupError::RebalanceInProgress));
                }
                if self.is_leader(&p.member_id) {
                    self.apply_assignment(p.assignments);
                }
                SyncAction::Wait(rx)
            }
        }
    }

    /// Stores the leader's assignment, answers every parked SyncGroup and makes the group
    /// Stable. Members the leader left out get an empty assignment, as in Kafka.
    fn apply_assignment(&mut self, assignments: Vec<(String, Bytes)>) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        for m in &mut self.members {
            m.assignment = by_member.remove(&m.id).unwrap_or_default();
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(Ok(m.assignment.clone()));
            }
        }
        self.state = GroupState::Stable;
        info!(group = %self.id, generation = self.generation, "group is stable");
    }

    /// Handles a Heartbeat.
    pub(crate) fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        self.validate_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        let state = self.state;
        let Some(m) = self.member_mut(member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        match state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                m.last_heartbeat = now;
                Err(GroupError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.last_heartbeat = now;
                Ok(())
            }
        }
    }

    /// Handles a LeaveGroup: the per-member results, in request order.
    pub(crate) fn leave(
        &mut self,
        leaving: &[LeavingMember],
        now: Instant,
        cfg: &GroupConfig,
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        Ok(leaving
            .iter()
            .map(|l| self.leave_one(l, now, cfg).err())
            .collect())
    }

    fn leave_one(
        &mut self,
        l: &LeavingMember,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Result<(), GroupError> {
        let member_id = match &l.instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Err(GroupError::UnknownMemberId),
                Some(id) if !l.member_id.is_empty() && *id != l.member_id => {
                    return Err(GroupError::FencedInstanceId)
                }
                Some(id) => id.clone(),
            },
            None => l.member_id.clone(),
        };
        if self.pending_members.remove(&member_id).is_some() {
            info!(group = %self.id, member = %member_id, "pending member left");
            if self.state == GroupState::PreparingRebalance && self.has_all_members_joined() {
                self.complete_join(now);
            }
            return Ok(());
        }
        if !self.has_member(&member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        info!(group = %self.id, member = %member_id, "member left");
        self.remove_member_and_update(&member_id, &GroupError::UnknownMemberId, now, cfg);
        Ok(())
    }
}
