//! Where new partitions go: spread over the live storage nodes, least-loaded first.
//!
//! Placement only picks a first owner; moving partitions later (load, failover) is the
//! controller's job on the storage nodes, with epoch-fenced claims.

use fjord_metadata::{MetadataStore, NodeInfo, PartitionOwner};
use uuid::Uuid;

use super::TopicError;

/// Nodes whose last heartbeat is within `liveness_ms` of `now_ms`.
pub(crate) fn live_nodes(nodes: Vec<NodeInfo>, now_ms: i64, liveness_ms: i64) -> Vec<NodeInfo> {
    nodes
        .into_iter()
        .filter(|n| n.heartbeat_ms >= now_ms.saturating_sub(liveness_ms))
        .collect()
}

/// Gives partitions `first..first + count` of a topic to the nodes in `loads` (node id and the
/// number of partitions it owns now), each to the currently least-loaded node (ties broken by
/// id, so placement is deterministic). Epoch 0 and log start 0: the partitions are new.
pub(crate) fn assign(
    topic_id: Uuid,
    first: i32,
    count: i32,
    mut loads: Vec<(String, usize)>,
) -> Vec<PartitionOwner> {
    loads.sort();
    let mut owners = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    if loads.is_empty() {
        return owners;
    }
    for partition in first..first.saturating_add(count) {
        // `loads` is not empty (checked above), so a minimum always exists.
        let idx = loads
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
            .map_or(0, |(i, _)| i);
        loads[idx].1 += 1;
        owners.push(PartitionOwner {
            topic_id,
            partition,
            node_id: loads[idx].0.clone(),
            epoch: 0,
            log_start_offset: 0,
        });
    }
    owners
}

/// Reads the live nodes and their loads from the store and places the partitions.
pub(crate) async fn place(
    store: &dyn MetadataStore,
    topic_id: Uuid,
    first: i32,
    count: i32,
    now_ms: i64,
    liveness_ms: i64,
) -> Result<Vec<PartitionOwner>, TopicError> {
    let live = live_nodes(store.list_nodes().await?, now_ms, liveness_ms);
    if live.is_empty() {
        return Err(TopicError::NoLiveNodes { liveness_ms });
    }
    let mut loads = Vec::with_capacity(live.len());
    for node in live {
        let owned = store.list_partitions_of_node(&node.id).await?.len();
        loads.push((node.id, owned));
    }
    Ok(assign(topic_id, first, count, loads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, heartbeat_ms: i64) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            rpc_addr: "127.0.0.1:1".into(),
            cert_der: Vec::new(),
            heartbeat_ms,
        }
    }

    #[test]
    fn only_recent_heartbeats_are_live() {
        let nodes = vec![node("a", 1_000), node("b", 69_999), node("c", 70_000)];
        let live: Vec<_> = live_nodes(nodes, 100_000, 30_000)
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(live, vec!["c".to_string()]);
    }

    #[test]
    fn spreads_least_loaded_first() {
        let t = Uuid::nil();
        let owners = assign(t, 2, 5, vec![("b".into(), 0), ("a".into(), 2)]);
        let nodes: Vec<_> = owners.iter().map(|o| o.node_id.as_str()).collect();
        // b catches up to a first, then they alternate (ties go to the smaller id).
        assert_eq!(nodes, vec!["b", "b", "a", "b", "a"]);
        let parts: Vec<_> = owners.iter().map(|o| o.partition).collect();
        assert_eq!(parts, vec![2, 3, 4, 5, 6]);
        assert!(owners
            .iter()
            .all(|o| o.epoch == 0 && o.log_start_offset == 0));
    }

    #[test]
    fn no_nodes_no_owners() {
        assert!(assign(Uuid::nil(), 0, 3, Vec::new()).is_empty());
    }
}
