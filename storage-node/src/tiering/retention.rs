//! Retention (`retention.ms`, `retention.bytes`, -1 = unlimited) and DeleteRecords: raise the log
//! start offset in metadata first (fenced by epoch), then in memory, then delete objects no
//! manifest entry references any more.

use std::collections::BTreeSet;
use std::sync::Weak;

use fjord_metadata::{ManifestEntry, MetadataError};
use object_store::path::Path as ObjectPath;
use tracing::{info, warn};

use crate::api::*;
use crate::node::StorageNode;
use crate::partition::codes::{
    NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE, UNKNOWN_SERVER_ERROR, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::partition::Partition;

/// Default `retention.ms`: 7 days.
pub const DEFAULT_RETENTION_MS: i64 = 604_800_000;
/// Default `retention.bytes`: 250 GiB.
pub const DEFAULT_RETENTION_BYTES: i64 = 268_435_456_000;

/// The new log start that retention allows: the end of the last of the leading manifest entries
/// that are expired by time or fall outside the byte budget. `None` when nothing expires.
pub fn retention_cut(
    entries: &[ManifestEntry],
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
) -> Option<i64> {
    let mut cut = None;
    if retention_ms >= 0 {
        for e in entries {
            if e.max_timestamp_ms >= now_ms.saturating_sub(retention_ms) {
                break;
            }
            cut = Some(e.end_offset);
        }
    }
    if retention_bytes >= 0 {
        let mut total: u64 = entries.iter().map(|e| e.length).sum();
        for e in entries {
            if total <= retention_bytes as u64 {
                break;
            }
            total -= e.length;
            cut = Some(cut.map_or(e.end_offset, |c: i64| c.max(e.end_offset)));
        }
    }
    cut
}

/// The retention task.
pub(crate) async fn run(node: Weak<StorageNode>) {
    let (interval, mut stopped) = match node.upgrade() {
        Some(n) => (n.retention_interval, n.stopped.subscribe()),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let Some(n) = node.upgrade() else { return };
        n.run_retention().await;
    }
}

fn config_i64(
    configs: &std::collections::BTreeMap<String, String>,
    key: &str,
    default: i64,
) -> i64 {
    configs
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl StorageNode {
    /// One retention pass over every owned partition, then deletes the objects it released.
    pub async fn run_retention(&self) {
        let now = self.clock.now_ms();
        for p in self.loaded_partitions() {
            let topic = match self.store.get_topic_by_id(p.key.0).await {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    warn!("retention: reading topic {}: {e}", p.key.0);
                    continue;
                }
            };
            let ms = config_i64(&topic.configs, "retention.ms", DEFAULT_RETENTION_MS);
            let bytes = config_i64(&topic.configs, "retention.bytes", DEFAULT_RETENTION_BYTES);
            let cut = {
                let st = p.state.lock();
                if st.fenced {
                    continue;
                }
                retention_cut(&st.manifest, now, ms, bytes).filter(|c| *c > st.log_start)
            };
            if let Some(cut) = cut {
                match self.advance_log_start(&p, cut).await {
                    Ok(_) => {
                        info!(topic_id = %p.key.0, partition = p.key.1, log_start = cut, "retention advanced log start")
                    }
                    // The topic was deleted since it was read above: nothing is wrong.
                    Err((UNKNOWN_TOPIC_OR_PARTITION, msg)) => info!("retention: {msg}"),
                    Err((_, msg)) => warn!("retention: {msg}"),
                }
            }
        }
        self.delete_released_objects().await;
    }

    /// Raises a partition's log start in metadata, then in memory; queues removed objects for
    /// garbage collection. Fails with NOT_LEADER_OR_FOLLOWER if the partition moved to another
    /// node and UNKNOWN_TOPIC_OR_PARTITION if its topic was deleted (fencing it either way).
    pub(crate) async fn advance_log_start(
        &self,
        p: &Partition,
        offset: i64,
    ) -> Result<i64, (i16, String)> {
        let epoch = p.state.lock().epoch;
        let removed = match self
            .store
            .advance_log_start(p.key.0, p.key.1, epoch, offset)
            .await
        {
            Ok(r) => r,
            Err(MetadataError::Conflict(m)) => {
                self.fence(p);
                // Told apart by the owner row, which only a topic deletion removes.
                let deleted = matches!(
                    self.store.get_partition_owner(p.key.0, p.key.1).await,
                    Ok(None)
                );
                return Err(if deleted {
                    (UNKNOWN_TOPIC_OR_PARTITION, m)
                } else {
                    (
                        NOT_LEADER_OR_FOLLOWER,
                        format!("partition moved to another node: {m}"),
                    )
                });
            }
            Err(e) => return Err((UNKNOWN_SERVER_ERROR, format!("advancing log start: {e}"))),
        };
        let start = {
            let mut st = p.state.lock();
            st.log_start = st.log_start.max(offset);
            let start = st.log_start;
            st.manifest.retain(|e| e.end_offset > start);
            start
        };
        self.gc_candidates
            .lock()
            .extend(removed.into_iter().map(|e| e.object_key));
        Ok(start)
    }

    /// Deletes queued objects (released by retention or DeleteRecords) that no manifest entry
    /// references any more. Objects whose delete fails here are queued again, and the prefix
    /// sweep of [`super::gc`] finds them after a restart.
    pub(crate) async fn delete_released_objects(&self) {
        let keys: BTreeSet<String> = std::mem::take(&mut *self.gc_candidates.lock())
            .into_iter()
            .collect();
        for key in keys {
            match self.store.manifest_references(&key).await {
                Ok(0) => match self.objects.delete(&ObjectPath::from(key.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        info!(%key, "object deleted")
                    }
                    Err(e) => {
                        warn!(%key, "deleting object: {e}");
                        self.gc_candidates.lock().push(key);
                    }
                },
                Ok(_) => {}
                Err(e) => {
                    warn!(%key, "counting references: {e}");
                    self.gc_candidates.lock().push(key);
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(partitions = req.partitions.len()))]
    pub(crate) async fn handle_delete_records(
        &self,
        req: DeleteRecordsRequest,
    ) -> Result<DeleteRecordsResponse, NodeError> {
        let mut out = Vec::with_capacity(req.partitions.len());
        for dp in &req.partitions {
            let r = match self.partition((dp.topic_id, dp.partition)).await {
                Err((code, _)) => DeleteRecordsPartitionResult {
                    error_code: code,
                    low_watermark: -1,
                },
                Ok(p) => {
                    let (hw, start, fenced) = {
                        let st = p.state.lock();
                        (st.high_watermark, st.log_start, st.fenced)
                    };
                    let target = if dp.offset == -1 { hw } else { dp.offset };
                    if fenced {
                        DeleteRecordsPartitionResult {
                            error_code: NOT_LEADER_OR_FOLLOWER,
                            low_watermark: -1,
                        }
                    } else if target < 0 || target > hw {
                        DeleteRecordsPartitionResult {
                            error_code: OFFSET_OUT_OF_RANGE,
                            low_watermark: start,
                        }
                    } else if target <= start {
                        DeleteRecordsPartitionResult {
                            error_code: NO_ERROR,
                            low_watermark: start,
                        }
                    } else {
                        match self.advance_log_start(&p, target).await {
                            Ok(s) => DeleteRecordsPartitionResult {
                                error_code: NO_ERROR,
                                low_watermark: s,
                            },
                            Err((code, msg)) => {
                                if code == UNKNOWN_TOPIC_OR_PARTITION {
                                    info!("DeleteRecords: {msg}");
                                } else {
                                    warn!("DeleteRecords: {msg}");
                                }
                                DeleteRecordsPartitionResult {
                                    error_code: code,
                                    low_watermark: -1,
                                }
                            }
                        }
                    }
                }
            };
            out.push(r);
        }
        self.delete_released_objects().await;
        Ok(DeleteRecordsResponse { partitions: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn e(base: i64, end: i64, ts: i64, len: u64) -> ManifestEntry {
        ManifestEntry {
            topic_id: Uuid::nil(),
            partition: 0,
            base_offset: base,
            end_offset: end,
            max_timestamp_ms: ts,
            object_key: String::new(),
            position: 0,
            length: len,
        }
    }

    #[test]
    fn cut_by_time_and_bytes() {
        let es = [e(0, 10, 100, 50), e(10, 20, 200, 50), e(20, 30, 300, 50)];
        assert_eq!(retention_cut(&es, 1000, 850, -1), Some(10));
        assert_eq!(retention_cut(&es, 1000, 750, -1), Some(20));
        assert_eq!(retention_cut(&es, 1000, -1, 100), Some(10));
        assert_eq!(retention_cut(&es, 1000, -1, -1), None);
        assert_eq!(retention_cut(&es, 1000, 5000, 1000), None);
    }
}
