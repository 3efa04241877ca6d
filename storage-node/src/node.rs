//! [`StorageNode`]: ties the WAL, owned partitions, the tail cache, tiering, retention and the
//! group coordinator together, and serves [`NodeApi`].
//!
//! Produce path (module `produce`): validate → short partition lock (offsets, producer state,
//! WAL enqueue) → fsync → publish in WAL order. Reads (module `fetch`) come from the tail cache
//! or object storage. Background tasks ([`crate::tiering`]) upload, commit the manifest, trim the
//! WAL and apply retention.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fjord_metadata::{MetadataError, MetadataStore};
use object_store::ObjectStore;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify, OnceCell};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::api::*;
use crate::config::{Clock, ConfigError, NodeConfig, SystemClock};
use crate::groups::{ClientInfo, GroupCoordinator};
use crate::partition::cache::TailCache;
use crate::partition::codes::{NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION};
use crate::partition::{Partition, PartitionKey};
use crate::produce::{Completion, Pending, Sequencer};
use crate::wal::{Wal, WalError, WalPosition, WalRecord};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The WAL failed to open or recover.
    #[error("write-ahead log: {0}")]
    Wal(#[from] WalError),
    /// Metadata could not be read during recovery.
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why a partition cannot be served here: a Kafka error code and a message.
pub(crate) type Refusal = (i16, String);

/// A storage node. Create with [`StorageNode::open`]; stop with [`StorageNode::shutdown`].
pub struct StorageNode {
    pub(crate) node_id: String,
    pub(crate) upload_bytes: u64,
    pub(crate) upload_interval: Duration,
    pub(crate) retention_interval: Duration,
    pub(crate) metering_period: Duration,
    pub(crate) max_pending_bytes: u64,
    pub(crate) multipart: crate::tiering::put::MultipartSettings,
    pub(crate) gc: crate::tiering::gc::GcSettings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) wal: Wal,
    groups: GroupCoordinator,
    partitions: Mutex<HashMap<PartitionKey, Arc<OnceCell<Arc<Partition>>>>>,
    /// WAL-order sequencing of appends, so publication follows the log.
    pub(crate) sequencer: Mutex<Sequencer>,
    /// Serialises publication (held across pop + publish so seqs publish in order).
    pub(crate) publish_lock: Mutex<()>,
    /// Durable data waiting for upload.
    pub(crate) pending: Mutex<Pending>,
    pub(crate) cache: Mutex<TailCache>,
    /// Signalled when pending bytes drop (produces waiting on backpressure).
    pub(crate) pending_drained: Notify,
    /// Signalled when pending bytes reach the upload threshold.
    pub(crate) tier_wake: Notify,
    /// Set once a fatal WAL error happened or the node shut down: accept nothing more.
    pub(crate) stopped: watch::Sender<bool>,
    /// Objects whose manifest entries were removed, to delete once unreferenced.
    pub(crate) gc_candidates: Mutex<Vec<String>>,
    /// Which object keys the uploader and garbage collection are working on.
    pub(crate) object_keys: Mutex<crate::tiering::gc::KeyState>,
    /// Manifest ranges read from object storage, by (object key, position).
    pub(crate) read_cache: moka::future::Cache<(String, u64), bytes::Bytes>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl StorageNode {
    /// Opens the node with the system clock: see [`StorageNode::open_with_clock`].
    pub async fn open(
        config: NodeConfig,
        store: Arc<dyn MetadataStore>,
        objects: Arc<dyn ObjectStore>,
    ) -> Result<Arc<StorageNode>, StorageError> {
        Self::open_with_clock(config, store, objects, Arc::new(SystemClock)).await
    }

    /// Checks the config, opens the WAL, replays what it recovered into partition state
    /// (offsets, tail cache, producer state, pending uploads) and starts the tiering, retention,
    /// garbage-collection and storage-metering tasks.
    #[tracing::instrument(skip_all, fields(node_id = %config.node_id))]
    pub async fn open_with_clock(
        config: NodeConfig,
        store: Arc<dyn MetadataStore>,
        objects: Arc<dyn ObjectStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<StorageNode>, StorageError> {
        Self::open_with_wal_hook(config, store, objects, clock, None).await
    }

    /// [`StorageNode::open_with_clock`], with a hook called before every WAL file-system
    /// step when given (tests hold an `fdatasync` open with it).
    pub(crate) async fn open_with_wal_hook(
        config: NodeConfig,
        store: Arc<dyn MetadataStore>,
        objects: Arc<dyn ObjectStore>,
        clock: Arc<dyn Clock>,
        wal_hook: Option<Arc<dyn crate::wal::IoHook>>,
    ) -> Result<Arc<StorageNode>, StorageError> {
        config.validate()?;
        let max_pending_bytes = config.max_pending_bytes();
        let multipart = crate::tiering::put::MultipartSettings::from_config(&config);
        let gc = crate::tiering::gc::GcSettings::from_config(&config);
        let (wal, recovered) = match wal_hook {
            None => Wal::open(&config.wal_dir, config.wal).await?,
            Some(hook) => Wal::open_with_hook(&config.wal_dir, config.wal, hook).await?,
        };
        let node = Arc::new(StorageNode {
            multipart,
            gc,
            node_id: config.node_id,
            upload_bytes: config.upload_bytes,
            upload_interval: config.upload_interval,
            retention_interval: config.retention_interval,
            metering_period: config.metering_period,
            max_pending_bytes,
            clock,
            groups: GroupCoordinator::new(store.clone()),
            store,
            objects,
            wal,
            partitions: Mutex::new(HashMap::new()),
            sequencer: Mutex::new(Sequencer::default()),
            publish_lock: Mutex::new(()),
            pending: Mutex::new(Pending::default()),
            cache: Mutex::new(TailCache::new(config.tail_cache_bytes)),
            pending_drained: Notify::new(),
            tier_wake: Notify::new(),
            stopped: watch::channel(false).0,
            gc_candidates: Mutex::new(Vec::new()),
            object_keys: Mutex::new(Default::default()),
            read_cache: moka::future::Cache::builder()
                .weigher(|_, v: &bytes::Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .max_capacity(config.read_cache_bytes)
                .build(),
            tasks: Mutex::new(Vec::new()),
        });
        node.recover(recovered).await?;
        let tier = tokio::spawn(crate::tiering::run_uploader(Arc::downgrade(&node)));
        let ret = tokio::spawn(crate::tiering::retention::run(Arc::downgrade(&node)));
        let gc = tokio::spawn(crate::tiering::gc::run(Arc::downgrade(&node)));
        let meter = tokio::spawn(crate::metering::run(Arc::downgrade(&node)));
        node.tasks.lock().extend([tier, ret, gc, meter]);
        info!("storage node open");
        Ok(node)
    }

    /// Replays recovered WAL records (in log order) into the partitions they belong to.
    async fn recover(&self, recovered: Vec<(WalPosition, WalRecord)>) -> Result<(), StorageError> {
        let mut by_key: BTreeMap<PartitionKey, ()> = BTreeMap::new();
        for (_, r) in &recovered {
            by_key.insert((r.topic_id, r.partition), ());
        }
        let mut loaded = HashMap::new();
        for key in by_key.keys() {
            match self.partition(*key).await {
                Ok(p) => {
                    loaded.insert(*key, p);
                }
                Err((code, msg))
                    if code == NOT_LEADER_OR_FOLLOWER || code == UNKNOWN_TOPIC_OR_PARTITION =>
                {
                    // Another node owns it now (it replays this WAL itself) or it was deleted.
                    warn!(topic_id = %key.0, partition = key.1, "skipping WAL records: {msg}");
                }
                Err((_, msg)) => return Err(StorageError::Metadata(MetadataError::Backend(msg))),
            }
        }
        let count = recovered.len();
        let _g = self.publish_lock.lock();
        let mut last_pos = None;
        for (pos, r) in recovered {
            last_pos = Some(pos);
            let Some(p) = loaded.get(&(r.topic_id, r.partition)) else {
                continue;
            };
            let Some(c) = Completion::replay(p.clone(), r) else {
                continue;
            };
            self.publish_one(c, pos);
        }
        if let Some(pos) = last_pos {
            self.pending.lock().published_pos = Some(pos);
        }
        info!(records = count, partitions = loaded.len(), "WAL replayed");
        Ok(())
    }

    /// Stops the background tasks (pending data stays in the WAL for the next start) and
    /// closes the WAL after its queued writes are flushed.
    pub async fn shutdown(&self) {
        self.stopped.send_replace(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        if let Err(e) = self.wal.close().await {
            warn!("closing WAL: {e}");
        }
        info!(node_id = %self.node_id, "storage node stopped");
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether the node stopped accepting (shutdown or fatal WAL error).
    pub fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    /// The partition, loading it from metadata on first touch (ownership check, log start,
    /// manifest, producer snapshots). Later calls read no metadata.
    pub(crate) async fn partition(&self, key: PartitionKey) -> Result<Arc<Partition>, Refusal> {
        let cell = self.partitions.lock().entry(key).or_default().clone();
        let res = cell
            .get_or_try_init(|| self.load_partition(key))
            .await
            .cloned();
        if res.is_err() {
            let mut m = self.partitions.lock();
            if m.get(&key)
                .is_some_and(|c| Arc::ptr_eq(c, &cell) && c.get().is_none())
            {
                m.remove(&key);
            }
        }
        res
    }

    async fn load_partition(&self, key: PartitionKey) -> Result<Arc<Partition>, Refusal> {
        let (topic_id, partition) = key;
        let unavailable =
            |e: MetadataError| (NOT_LEADER_OR_FOLLOWER, format!("metadata unavailable: {e}"));
        let owner = self
            .store
            .get_partition_owner(topic_id, partition)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                (
                    UNKNOWN_TOPIC_OR_PARTITION,
                    format!("partition {topic_id}/{partition} does not exist"),
                )
            })?;
        if owner.node_id != self.node_id {
            return Err((
                NOT_LEADER_OR_FOLLOWER,
                format!(
                    "partition {topic_id}/{partition} is owned by node {}",
                    owner.node_id
                ),
            ));
        }
        let manifest = self
            .store
            .list_manifest(topic_id, partition)
            .await
            .map_err(unavailable)?;
        let snaps = self
            .store
            .producer_snapshots(topic_id, partition)
            .await
            .map_err(unavailable)?;
        info!(%topic_id, partition, epoch = owner.epoch, "serving partition");
        Ok(Arc::new(Partition::new(
            key,
            owner.epoch,
            owner.log_start_offset,
            manifest,
            &snaps,
        )))
    }

    /// Every loaded partition.
    pub(crate) fn loaded_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .lock()
            .values()
            .filter_map(|c| c.get().cloned())
            .collect()
    }

    /// Stops serving a partition another node took over.
    pub(crate) fn fence(&self, p: &Partition) {
        p.state.lock().fenced = true;
        let mut m = self.partitions.lock();
        if m.get(&p.key)
            .and_then(|c| c.get())
            .is_some_and(|q| std::ptr::eq(q.as_ref(), p))
        {
            m.remove(&p.key);
        }
        drop(m);
        self.cache.lock().remove_partition(&p.key);
        info!(topic_id = %p.key.0, partition = p.key.1, "ownership lost; partition fenced");
    }
}

#[async_trait]
impl NodeApi for StorageNode {
    async fn produce(&self, req: ProduceRequest) -> Result<ProduceResponse, NodeError> {
        self.handle_produce(req, None).await
    }

    async fn produce_ordered(
        &self,
        req: ProduceRequest,
        sequenced: tokio::sync::oneshot::Sender<()>,
    ) -> Result<ProduceResponse, NodeError> {
        self.handle_produce(req, Some(sequenced)).await
    }

    async fn fetch(&self, req: FetchRequest) -> Result<FetchResponse, NodeError> {
        self.handle_fetch(req).await
    }

    async fn list_offsets(
        &self,
        req: ListOffsetsRequest,
    ) -> Result<ListOffsetsResponse, NodeError> {
        self.handle_list_offsets(req).await
    }

    async fn delete_records(
        &self,
        req: DeleteRecordsRequest,
    ) -> Result<DeleteRecordsResponse, NodeError> {
        self.handle_delete_records(req).await
    }

    async fn group(&self, mut req: GroupRequest) -> Result<GroupResponse, NodeError> {
        let client = ClientInfo {
            client_id: std::mem::take(&mut req.client_id),
            client_host: std::mem::take(&mut req.client_host),
        };
        self.groups
            .handle_from(req, &client, self.clock.now_ms())
            .await
    }
}
