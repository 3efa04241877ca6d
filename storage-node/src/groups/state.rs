//! The in-memory state of one classic consumer group and the transitions shared by all group
//! operations (rebalance start, join completion, member removal, timer expiry).
//!
//! Everything here is synchronous and takes `now` as a parameter: the async shell
//! ([`super::registry`]) locks a group, calls these functions and wakes waiters afterwards.
//! Waiting requests (JoinGroup, SyncGroup) receive their answer through a `oneshot` channel
//! stored in the member; a dropped receiver (client gone) is harmless.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::info;

use super::config::GroupConfig;
use super::error::GroupError;

/// The shortest timer: a deadline is always in the future of the tick that sets it, so a zero
/// timeout (clients may send one) cannot make [`Group::tick`] or a waiter spin.
const MIN_TIMER: Duration = Duration::from_millis(1);

/// `now + d`, at least [`MIN_TIMER`] ahead.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now + d.max(MIN_TIMER)
}

/// The classic group states, as Kafka names them on the wire (DescribeGroups, ListGroups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses for the state.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A successful JoinGroup answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinSuccess {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
}

/// What a JoinGroup request eventually answers. The error carries the member id to report
/// (MEMBER_ID_REQUIRED hands out a new one).
pub(crate) type JoinOutcome = Result<JoinSuccess, (GroupError, String)>;

/// What a SyncGroup request eventually answers: the member's assignment.
pub(crate) type SyncOutcome = Result<Bytes, GroupError>;

/// A group member.
#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    pub session_timeout: Duration,
    pub protocol_type: String,
    /// Supported protocols in preference order, with the member's metadata for each.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Set while a JoinGroup of this member is parked ("awaiting join").
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    /// Set while a SyncGroup of this member waits for the leader's assignment.
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    pub last_heartbeat: Instant,
    /// Joined but not yet part of a completed generation.
    pub is_new: bool,
}

impl Member {
    pub(crate) fn awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    /// The metadata the member sent for `protocol` (empty if it does not support it, which
    /// cannot happen for the selected protocol).
    pub(crate) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Same protocols, same order, same metadata.
    pub(crate) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// When the member expires if nothing happens, following Kafka: a parked JoinGroup keeps an
    /// existing member alive (the join deadline bounds it) but a new member only for the new
    /// member join timeout; a parked SyncGroup keeps it alive (the sync deadline bounds it).
    pub(crate) fn expiry(&self, cfg: &GroupConfig) -> Option<Instant> {
        if self.awaiting_join() {
            self.is_new
                .then(|| self.last_heartbeat + cfg.new_member_join_timeout())
        } else if self.sync_waiter.is_some() {
            None
        } else {
            Some(self.last_heartbeat + self.session_timeout)
        }
    }

    fn answer_join(&mut self, outcome: JoinOutcome) {
        if let Some(tx) = self.join_waiter.take() {
            // The receiver is gone when the client disconnected; nothing to tell it then.
            let _ = tx.send(outcome);
        }
    }

    fn answer_sync(&mut self, outcome: SyncOutcome) {
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(outcome);
        }
    }
}

/// The join-phase timer of a group in PreparingRebalance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// First rebalance of an empty group: never completes early; when it fires and members
    /// arrived meanwhile, it is extended by the initial delay until `remaining` is used up.
    Initial { at: Instant, remaining: Duration },
    /// Any other rebalance: completes as soon as all members rejoined, or at `at`.
    Regular { at: Instant },
}

impl JoinTimer {
    pub(crate) fn at(self) -> Instant {
        match self {
            JoinTimer::Initial { at, .. } | JoinTimer::Regular { at } => at,
        }
    }
}

/// One classic group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Members in join order (the order leaders see them in).
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin by.
    pub pending_members: HashMap<String, Instant>,
    /// `group.instance.id` → member id of static members.
    pub static_members: HashMap<String, String>,
    pub join_timer: Option<JoinTimer>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: HashSet<String>,
    pub sync_deadline: Option<Instant>,
    /// A member joined during the initial delay (extends it once more).
    pub new_member_added: bool,
}

impl Group {
    pub(crate) fn new(id: String) -> Self {
        Self {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            join_timer: None,
            pending_sync: HashSet::new(),
            sync_deadline: None,
            new_member_added: false,
        }
    }

    pub(crate) fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub(crate) fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub(crate) fn has_member(&self, id: &str) -> bool {
        self.member(id).is_some()
    }

    pub(crate) fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    /// Nothing left worth keeping in memory (offsets live in metadata).
    pub(crate) fn is_evictable(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
    }

    /// The largest rebalance timeout of the members (Kafka's group rebalance timeout).
    pub(crate) fn rebalance_timeout(&self) -> Duration {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(Member::awaiting_join)
    }

    /// Checks `member_id` (and `instance_id` for static members) against the group, as Kafka's
    /// `validateMember`.
    pub(crate) fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(existing) if existing != member_id => {
                    return Err(GroupError::FencedInstanceId)
                }
                Some(_) => {}
                None => return Err(GroupError::UnknownMemberId),
            }
        }
        if self.has_member(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    /// Whether a member with these protocols may join, as Kafka's `supportsProtocols`.
    pub(crate) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// The protocol all members support that most members prefer; ties go to the protocol the
    /// earliest-joined member prefers (Kafka leaves ties unspecified).
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&str> = self
            .members
            .first()?
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect();
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in &self.members {
            let vote = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()));
            if let Some((name, _)) = vote {
                if let Some(v) = votes.iter_mut().find(|(c, _)| *c == name) {
                    v.1 += 1;
                }
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    /// The member list the leader receives.
    pub(crate) fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(protocol),
            })
            .collect()
    }

    /// The current generation as a JoinGroup answer for `member_id`.
    pub(crate) fn current_generation_for(
        &self,
        member_id: &str,
        with_members: bool,
    ) -> JoinSuccess {
        JoinSuccess {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.joined_members()
            } else {
                Vec::new()
            },
        }
    }

    /// Adds a member (parked in JoinGroup when `waiter` is set).
    pub(crate) fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        self.members.push(member);
    }

    /// Removes a member, answering its parked requests with `reason`.
    pub(crate) fn remove_member(&mut self, id: &str, reason: &GroupError) -> Option<Member> {
        let idx = self.members.iter().position(|m| m.id == id)?;
        let mut member = self.members.remove(idx);
        member.answer_join(Err((reason.clone(), String::new())));
        member.answer_sync(Err(reason.clone()));
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.is_leader(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = None;
        }
        Some(member)
    }

    /// Removes a member and moves the group on, as Kafka's `removeMemberAndUpdateGroup`.
    pub(crate) fn remove_member_and_update(
        &mut self,
        id: &str,
        reason: &GroupError,
        now: Instant,
        cfg: &GroupConfig,
    ) {
        if self.remove_member(id, reason).is_none() {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, cfg, "member removed")
            }
            GroupState::PreparingRebalance if self.has_all_members_joined() => {
                self.complete_join(now)
            }
            _ => {}
        }
    }

    /// Starts a rebalance if the state allows it, else completes the join phase when possible.
    pub(crate) fn maybe_prepare_rebalance(
        &mut self,
        now: Instant,
        cfg: &GroupConfig,
        reason: &str,
    ) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(now, cfg, reason)
            }
            GroupState::PreparingRebalance => {
                if matches!(self.join_timer, Some(JoinTimer::Regular { .. }))
                    && self.has_all_members_joined()
                {
                    self.complete_join(now);
                }
            }
            GroupState::Dead => {}
        }
    }

    /// Moves to PreparingRebalance, as Kafka's `prepareRebalance`.
    pub(crate) fn prepare_rebalance(&mut self, now: Instant, cfg: &GroupConfig, reason: &str) {
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for the leader's assignment must rejoin instead.
            for m in &mut self.members {
                m.assignment = Bytes::new();
                m.answer_sync(Err(GroupError::RebalanceInProgress));
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let initial = self.state == GroupState::Empty;
        info!(group = %self.id, generation = self.generation, from = self.state.as_str(), reason, "preparing rebalance");
        self.state = GroupState::PreparingRebalance;
        if initial {
            let delay = cfg.initial_delay();
            self.new_member_added = false;
            self.join_timer = Some(JoinTimer::Initial {
                at: later(now, delay),
                remaining: self.rebalance_timeout().saturating_sub(delay),
            });
        } else if self.has_all_members_joined() {
            self.complete_join(now);
        } else {
            self.join_timer = Some(JoinTimer::Regular {
                at: later(now, self.rebalance_timeout()),
            });
        }
    }

    /// Ends the join phase, as Kafka's `completeClassicGroupJoin`: drops dynamic members that did
    /// not rejoin, starts the next generation and answers every parked JoinGroup.
    pub(crate) fn complete_join(&mut self, now: Instant) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.awaiting_join() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove_member(id, &GroupError::UnknownMemberId);
        }
        if !gone.is_empty() {
            info!(group = %self.id, removed = ?gone, "removed members that did not rejoin");
        }
        if self.state == GroupState::Dead {
            return;
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait for them (or for their
            // sessions to expire) one more rebalance timeout.
            self.join_timer = Some(JoinTimer::Regular {
                at: later(now, self.rebalance_timeout()),
            });
            return;
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = GroupState::Empty;
            info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        self.protocol_name = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        info!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = ?self.protocol_name, "join phase complete");
        let leader = self.leader.clone().unwrap_or_default();
        let leader_view = self.joined_members();
        let (generation, ptype, pname) = (
            self.generation,
            self.protocol_type.clone(),
            self.protocol_name.clone(),
        );
        for m in &mut self.members {
            let members = if m.id == leader {
                leader_view.clone()
            } else {
                Vec::new()
            };
            m.answer_join(Ok(JoinSuccess {
                generation,
                protocol_type: ptype.clone(),
                protocol_name: pname.clone(),
                leader: leader.clone(),
                member_id: m.id.clone(),
                members,
            }));
            m.last_heartbeat = now;
            m.is_new = false;
            self.pending_sync.insert(m.id.clone());
        }
        self.sync_deadline = Some(later(now, self.rebalance_timeout()));
    }

    /// Makes sure the leader is a member that rejoined; false when no member rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        if let Some(leader) = self.leader.as_deref().and_then(|l| self.member(l)) {
            if leader.awaiting_join() {
                return true;
            }
        }
        match self.members.iter().find(|m| m.awaiting_join()) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }
}
