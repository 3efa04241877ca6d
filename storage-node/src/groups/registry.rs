//! The groups a coordinator hosts, keyed by (cluster, group id), and the async plumbing around
//! the synchronous state machine: locking, deadline-driven waits and eviction.
//!
//! Locking: the map lock and a group's lock are never held together, and no lock is held across
//! an `.await`. A group evicted from the map is marked Dead under its own lock first, so a request
//! that still holds the old slot notices and looks the group up again.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use super::config::GroupConfig;
use super::state::{Group, GroupState};

/// A group's identity: groups never cross clusters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub cluster: Uuid,
    pub group: String,
}

impl GroupKey {
    /// The key of the group named `group` on the wire.
    pub(crate) fn new(cluster: Uuid, group: &StrBytes) -> Self {
        Self {
            cluster,
            group: group.to_string(),
        }
    }
}

/// One hosted group.
#[derive(Debug)]
pub(crate) struct Slot {
    pub group: Mutex<Group>,
    /// Signalled after every change, so parked requests re-evaluate their deadline.
    pub changed: Notify,
}

/// Number of offset-write stripes; commits and deletes of one group serialise on its stripe.
const OFFSET_STRIPES: usize = 64;

/// All groups of this coordinator.
#[derive(Debug)]
pub(crate) struct Registry {
    groups: Mutex<HashMap<Uuid, HashMap<String, Arc<Slot>>>>,
    /// Serialise a group's offset writes with its deletion so that a commit validated before a
    /// DeleteGroups cannot land after it. Held across the store call: tokio's mutex is made
    /// for that, and striping bounds the memory whatever the number of groups.
    offset_stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            offset_stripes: (0..OFFSET_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The offset-write lock of a group.
    pub(crate) fn offset_lock(&self, key: &GroupKey) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        // The modulo keeps the index in range.
        &self.offset_stripes[(h.finish() as usize) % OFFSET_STRIPES]
    }

    /// The group if it is hosted.
    pub(crate) fn get(&self, key: &GroupKey) -> Option<Arc<Slot>> {
        self.groups
            .lock()
            .get(&key.cluster)
            .and_then(|g| g.get(&key.group))
            .cloned()
    }

    /// The group, created Empty if needed.
    pub(crate) fn get_or_create(&self, key: &GroupKey) -> Arc<Slot> {
        let mut groups = self.groups.lock();
        let cluster = groups.entry(key.cluster).or_default();
        cluster
            .entry(key.group.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    group: Mutex::new(Group::new(key.group.clone())),
                    changed: Notify::new(),
                })
            })
            .clone()
    }

    /// All hosted groups of a cluster.
    pub(crate) fn of_cluster(&self, cluster: Uuid) -> Vec<Arc<Slot>> {
        self.groups
            .lock()
            .get(&cluster)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops `slot` from the map if it is still the one hosted under `key`. The caller marked
    /// it Dead first.
    pub(crate) fn remove(&self, key: &GroupKey, slot: &Arc<Slot>) {
        let mut groups = self.groups.lock();
        if let Some(cluster) = groups.get_mut(&key.cluster) {
            if cluster
                .get(&key.group)
                .is_some_and(|s| Arc::ptr_eq(s, slot))
            {
                cluster.remove(&key.group);
            }
            if cluster.is_empty() {
                groups.remove(&key.cluster);
            }
        }
    }

    /// Runs `f` on the group after applying due deadlines, then wakes parked requests and
    /// evicts the group if nothing is left of it or `f` marked it Dead. `None` if the group is not hosted (and
    /// `create` is false).
    pub(crate) fn with_group<R>(
        &self,
        key: &GroupKey,
        create: bool,
        cfg: &GroupConfig,
        f: impl FnOnce(&mut Group) -> R,
    ) -> Option<R> {
        // A slot found Dead was evicted between the lookup and the lock; look again. The retry
        // is bounded because each round needs another eviction to happen in between.
        let mut f = Some(f);
        for _ in 0..8 {
            let slot = if create {
                self.get_or_create(key)
            } else {
                self.get(key)?
            };
            let (result, evict) = {
                let mut group = slot.group.lock();
                if group.state == GroupState::Dead {
                    drop(group);
                    self.remove(key, &slot);
                    continue;
                }
                group.tick(Instant::now(), cfg);
                let f = f.take()?;
                let result = f(&mut group);
                if group.is_evictable() {
                    group.state = GroupState::Dead;
                }
                // `f` may also have killed the group (DeleteGroups).
                (result, group.state == GroupState::Dead)
            };
            slot.changed.notify_waiters();
            if evict {
                self.remove(key, &slot);
            }
            return Some(result);
        }
        None
    }

    /// Waits for `rx`, driving the group's deadlines meanwhile: whenever the earliest deadline
    /// passes or the group changes, due expiries are applied (which may answer `rx`).
    pub(crate) async fn wait<T>(
        &self,
        key: &GroupKey,
        cfg: &GroupConfig,
        mut rx: oneshot::Receiver<T>,
    ) -> Option<T> {
        loop {
            match rx.try_recv() {
                Ok(v) => return Some(v),
                Err(oneshot::error::TryRecvError::Closed) => return None,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let Some(slot) = self.get(key) else {
                return rx.try_recv().ok();
            };
            let notified = slot.changed.notified();
            tokio::pin!(notified);
            let (deadline, evict) = {
                let mut group = slot.group.lock();
                // Register for wake-ups before releasing the lock so no change is missed.
                notified.as_mut().enable();
                let changed = group.tick(Instant::now(), cfg);
                let evict = group.is_evictable();
                if evict {
                    group.state = GroupState::Dead;
                }
                (
                    if changed || evict {
                        None
                    } else {
                        Some(group.next_deadline(cfg))
                    },
                    evict,
                )
            };
            if evict {
                self.remove(key, &slot);
            }
            let Some(deadline) = deadline else {
                // The tick changed something: tell the other parked requests, then look at our
                // channel again.
                slot.changed.notify_waiters();
                continue;
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        v = &mut rx => return v.ok(),
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => {
                    tokio::select! {
                        v = &mut rx => return v.ok(),
                        () = &mut notified => {}
                    }
                }
            }
        }
    }
}
