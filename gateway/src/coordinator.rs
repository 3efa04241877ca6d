//! Which storage node coordinates a consumer group.
//!
//! Every gateway must pick the same node for a group without talking to the others, so the
//! choice is a pure function of (cluster, group, node ids): rendezvous hashing (the node with
//! the highest FNV-1a hash of cluster + group + node id wins), which moves only the groups of a
//! node that joins or leaves. The node list comes from metadata, cached for a few seconds.

use std::sync::Arc;

use fjord_metadata::MetadataStore;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::error::RequestError;

/// The coordinator node for `group` of `cluster` among `node_ids` (any order), or `None` if
/// there are no nodes.
pub fn coordinator_for<'a>(cluster: Uuid, group: &str, node_ids: &'a [String]) -> Option<&'a str> {
    node_ids
        .iter()
        .max_by_key(|node| {
            let mut h = Fnv1a::new();
            h.write(cluster.as_bytes());
            h.write(group.as_bytes());
            // A separator, so that ("ab", "c") and ("a", "bc") differ.
            h.write(&[0xff]);
            h.write(node.as_bytes());
            // Ties (practically impossible) are broken by the node id, deterministically.
            (h.finish(), node.as_str())
        })
        .map(String::as_str)
}

/// 64-bit FNV-1a: tiny, stable across Rust versions and processes (unlike `DefaultHasher`).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Cached view of the storage nodes that may coordinate groups.
pub struct CoordinatorPicker {
    store: Arc<dyn MetadataStore>,
    ttl_ms: i64,
    liveness_ms: i64,
    cache: Mutex<Option<(i64, Arc<Vec<String>>)>>,
}

impl CoordinatorPicker {
    /// A picker that re-reads the node list after `ttl_ms` and prefers nodes that heartbeated
    /// within `liveness_ms`.
    pub fn new(store: Arc<dyn MetadataStore>, ttl_ms: i64, liveness_ms: i64) -> Self {
        Self {
            store,
            ttl_ms,
            liveness_ms,
            cache: Mutex::new(None),
        }
    }

    /// The candidate node ids, sorted.
    pub async fn nodes(&self, now_ms: i64) -> Result<Arc<Vec<String>>, RequestError> {
        if let Some((at, nodes)) = self.cache.lock().as_ref() {
            if now_ms - at < self.ttl_ms && now_ms >= *at {
                return Ok(nodes.clone());
            }
        }
        let all = self.store.list_nodes().await?;
        let live: Vec<String> = all
            .iter()
            .filter(|n| now_ms - n.heartbeat_ms <= self.liveness_ms)
            .map(|n| n.id.clone())
            .collect();
        // If no node looks alive (clock skew, or all restarting), every registered node stays a
        // candidate rather than failing every group request.
        let mut ids = if live.is_empty() {
            all.into_iter().map(|n| n.id).collect()
        } else {
            live
        };
        ids.sort();
        let ids = Arc::new(ids);
        *self.cache.lock() = Some((now_ms, ids.clone()));
        Ok(ids)
    }

    /// The coordinator node of `group`.
    pub async fn pick(
        &self,
        cluster: Uuid,
        group: &str,
        now_ms: i64,
    ) -> Result<String, RequestError> {
        let nodes = self.nodes(now_ms).await?;
        coordinator_for(cluster, group, &nodes)
            .map(str::to_owned)
            .ok_or(RequestError::NoCoordinator)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn choice_is_stable_and_spreads_and_moves_little() {
        let cluster = Uuid::from_u128(7);
        let three: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        let two: Vec<String> = ["n1", "n2"].iter().map(|s| s.to_string()).collect();
        let mut counts = std::collections::HashMap::new();
        let mut moved = 0;
        for i in 0..300 {
            let group = format!("group-{i}");
            let a = coordinator_for(cluster, &group, &three).unwrap();
            let reversed: Vec<String> = three.iter().rev().cloned().collect();
            assert_eq!(Some(a), coordinator_for(cluster, &group, &reversed));
            *counts.entry(a.to_string()).or_insert(0) += 1;
            let b = coordinator_for(cluster, &group, &two).unwrap();
            if a != "n3" {
                // Removing n3 must not move groups that were not on n3.
                assert_eq!(a, b);
            } else {
                moved += 1;
            }
        }
        assert_eq!(counts.len(), 3);
        assert!(counts.values().all(|c| *c > 50), "{counts:?}");
        assert!(moved > 0);
        assert_eq!(coordinator_for(cluster, "g", &[]), None);
    }

    #[test]
    fn fnv_matches_reference_vector() {
        let mut h = Fnv1a::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
