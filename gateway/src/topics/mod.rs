//! Topic lookups (cached) and topic management.
//!
//! [`TopicService`] is the one code path for topics: the Kafka data path looks topics up through
//! it, and the Kafka admin APIs (and later the control-plane HTTP API) change topics through it,
//! with the same checks.
//!
//! # Caching and freshness
//!
//! Lookups are cached in `moka` caches keyed by (cluster, name) and by topic id. A cached topic
//! is used as long as nothing says it is wrong, so in steady state the produce and fetch paths
//! make **no** metadata reads (see [`TopicService::read_counts`]). Entries are replaced or
//! dropped on evidence, never on a short timer:
//!
//! - **Changes made through this service** (create, delete, partitions, configs) replace or drop
//!   the entries at once.
//! - **A storage node says the view is stale**: NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
//!   UNKNOWN_TOPIC_OR_PARTITION or UNKNOWN_TOPIC_ID for a partition routed with a cached view
//!   (the owner moved, or the topic went). The handler calls [`TopicService::report_stale`] with
//!   the view it used; the entry is dropped if the cache still holds that very view, so the
//!   many requests that fail on one stale view cause one re-read, which concurrent lookups share.
//! - **Weaker evidence**: the owning node is unreachable or unavailable, the client knows a
//!   newer leader epoch than the cached one, or the view lacks an owner
//!   ([`TopicService::report_suspect`]); or a request names a partition at or beyond the cached
//!   partition count, e.g. one added through another gateway
//!   ([`TopicService::lookup_for_partition`]). These re-read the topic at most once per
//!   [`TopicServiceConfig::reread_min_interval`] (1 s) per topic, so a client hammering a bad
//!   partition or a dead node does not become a stream of metadata reads.
//! - **Changes that leave no evidence** (a config such as `max.message.bytes` altered through
//!   another gateway): the background refresher ([`TopicService::spawn_refresher`], started by
//!   [`crate::Gateway::serve`]) re-reads, every [`TopicServiceConfig::refresh_interval`] (30 s),
//!   the topics used since its previous round, with bounded concurrency, off the request path;
//!   requests keep using the old view until the new one is swapped in.
//! - **Safety net**: an entry not refreshed for [`TopicServiceConfig::max_age`] (10 min, i.e.
//!   unused for that long) expires.
//! - **"No such topic"** is cached for [`TopicServiceConfig::negative_cache_ttl`] (1 s) only:
//!   clients expect a topic created through another gateway to appear quickly, and a miss is not
//!   steady-state produce.
//!
//! Metadata responses that list all topics ([`TopicService::list`]) read the topic list from the
//! store and replace cached topics whose version changed.
//!
//! Layout: [`config`] (config definitions, validation, describe), [`names`] (naming rules),
//! `error` ([`TopicError`]), `placement` (which node owns a new partition), `manage` (create,
//! delete, partitions, configs), `cache` (cache entries, read counters, evidence), `refresh`
//! (the background refresher).

mod cache;
pub mod config;
mod error;
mod manage;
pub mod names;
mod placement;
mod refresh;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use fjord_metadata::{MetadataStore, PartitionOwner, Topic};
use fjord_storage_node::TopicLimits;
use moka::future::Cache;
use uuid::Uuid;

use cache::{Cached, Counters, Entry, EntryExpiry};
pub use cache::{StaleOutcome, TopicReadCounts};
pub use config::{AlterOp, ConfigAlteration, ConfigEntry, ConfigSource, ConfigType};
pub use error::TopicError;
pub use refresh::{RefreshSummary, RefresherHandle};

/// The replication factor Fjord reports for every topic (CreateTopics v5+ responses). Each
/// partition has exactly one owner node; durability comes from the fsynced WAL and object
/// storage, not from replicas, so one replica is the honest answer and matches the single
/// replica Metadata lists.
pub const REPORTED_REPLICATION_FACTOR: i16 = 1;

/// A topic as the data path needs it: the record, its partition owners and produce limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// The stored topic.
    pub topic: Topic,
    /// Owner of each partition, indexed by partition.
    pub owners: Vec<PartitionOwner>,
    /// Limits sent with every produce.
    pub limits: TopicLimits,
}

impl TopicInfo {
    fn new(topic: Topic, owners: Vec<PartitionOwner>) -> Self {
        if owners.len() != usize::try_from(topic.partitions).unwrap_or(0) {
            tracing::warn!(
                topic = %topic.name,
                partitions = topic.partitions,
                owners = owners.len(),
                "topic has a different number of partition owners than partitions"
            );
        }
        let limits = config::limits(&topic.configs);
        TopicInfo {
            topic,
            owners,
            limits,
        }
    }
}

/// Settings of a [`TopicService`]. [`Default`] gives the documented defaults.
#[derive(Clone, Debug)]
pub struct TopicServiceConfig {
    /// Safety net: a cached topic not refreshed for this long expires (default 10 min). Topics
    /// in use are refreshed every `refresh_interval`, so only unused ones reach it; it must be
    /// longer than `refresh_interval`.
    pub max_age: Duration,
    /// How often the background refresher re-reads the topics used since its previous round
    /// (default 30 s): the longest a change made elsewhere that no request notices (a config
    /// such as `max.message.bytes`) stays unseen here. Shorter means fresher configs at one
    /// topic read (two metadata reads) per used topic per round.
    pub refresh_interval: Duration,
    /// Topics the refresher re-reads at once (default 8): bounds its load on the metadata
    /// store after a long pause or with many topics.
    pub refresh_concurrency: usize,
    /// Weak evidence (an unreachable owner, a partition beyond the cached count, a client with
    /// a newer leader epoch) re-reads a topic at most once per this interval (default 1 s).
    pub reread_min_interval: Duration,
    /// How long "no such topic" stays cached (default 1 s): protects the metadata store from
    /// clients polling a missing topic while keeping topics created elsewhere visible quickly.
    pub negative_cache_ttl: Duration,
    /// Maximum cached entries per cache (default 100,000).
    pub cache_capacity: u64,
    /// A storage node is live if it heartbeated within this many ms (default 30,000); only
    /// live nodes get new partitions.
    pub node_liveness_ms: i64,
    /// Partitions a cluster may have in total (default 2,400, MSK Serverless's limit).
    pub max_partitions_per_cluster: i64,
    /// Partitions of a topic created with `num_partitions = -1` (default 1, Kafka's
    /// `num.partitions` default and MSK's).
    pub default_partitions: i32,
    /// Ceiling for `max.message.bytes` (default 32 MiB). MSK Serverless stops at 8 MiB; Fjord
    /// goes further but stays below the 50 MiB `fetch.max.bytes` default of the Kafka clients
    /// and MSK's 55 MB per-fetch limit, so a consumer can always fetch the largest batch, and
    /// far below the gateway's frame limit.
    pub max_message_bytes_limit: i32,
    /// Attempts of a read-modify-write (partitions, configs) before giving up when other
    /// writers keep changing the topic (default 5).
    pub conflict_attempts: u32,
}

impl TopicServiceConfig {
    /// Checks the settings once at startup; the message names the bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.default_partitions < 1 {
            return Err(format!(
                "default_partitions must be at least 1, not {}",
                self.default_partitions
            ));
        }
        if self.max_partitions_per_cluster < i64::from(self.default_partitions) {
            return Err(format!(
                "max_partitions_per_cluster ({}) is below default_partitions ({})",
                self.max_partitions_per_cluster, self.default_partitions
            ));
        }
        if self.max_message_bytes_limit < config::DEFAULT_MAX_MESSAGE_BYTES {
            return Err(format!(
                "max_message_bytes_limit ({}) is below the max.message.bytes default ({})",
                self.max_message_bytes_limit,
                config::DEFAULT_MAX_MESSAGE_BYTES
            ));
        }
        if self.node_liveness_ms <= 0 {
            return Err(format!(
                "node_liveness_ms must be positive, not {}",
                self.node_liveness_ms
            ));
        }
        if self.conflict_attempts == 0 {
            return Err("conflict_attempts must be at least 1".into());
        }
        if self.refresh_interval.is_zero() {
            return Err("refresh_interval must be positive".into());
        }
        // Otherwise topics in use would expire between refreshes and be re-read by requests.
        if self.max_age <= self.refresh_interval {
            return Err(format!(
                "max_age ({:?}) must be longer than refresh_interval ({:?})",
                self.max_age, self.refresh_interval
            ));
        }
        if self.refresh_concurrency == 0 {
            return Err("refresh_concurrency must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for TopicServiceConfig {
    fn default() -> Self {
        TopicServiceConfig {
            max_age: Duration::from_secs(600),
            refresh_interval: Duration::from_secs(30),
            refresh_concurrency: 8,
            reread_min_interval: Duration::from_secs(1),
            negative_cache_ttl: Duration::from_secs(1),
            cache_capacity: 100_000,
            node_liveness_ms: 30_000,
            max_partitions_per_cluster: 2400,
            default_partitions: 1,
            max_message_bytes_limit: 32 * 1024 * 1024,
            conflict_attempts: 5,
        }
    }
}

/// Where new topic ids come from.
type IdSource = Arc<dyn Fn() -> Uuid + Send + Sync>;

/// Topic lookups (cached) and management.
pub struct TopicService {
    store: Arc<dyn MetadataStore>,
    config: TopicServiceConfig,
    by_name: Cache<(Uuid, String), Entry>,
    by_id: Cache<Uuid, Entry>,
    counters: Arc<Counters>,
    /// Whether a refresher task runs (at most one per service).
    refresher_running: Arc<AtomicBool>,
    /// Topic ids are the one random input here. They are drawn at this edge (random v4 UUIDs
    /// by default) and replaceable through [`TopicService::with_id_source`] so tests can make
    /// them deterministic.
    new_id: IdSource,
}

impl TopicService {
    /// Creates the service with [`TopicServiceConfig::default`].
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self::with_config(store, TopicServiceConfig::default())
    }

    /// Creates the service with explicit settings.
    pub fn with_config(store: Arc<dyn MetadataStore>, config: TopicServiceConfig) -> Self {
        let expiry = || EntryExpiry {
            hit: config.max_age,
            miss: config.negative_cache_ttl,
        };
        TopicService {
            store,
            by_name: Cache::builder()
                .max_capacity(config.cache_capacity)
                .expire_after(expiry())
                .build(),
            by_id: Cache::builder()
                .max_capacity(config.cache_capacity)
                .expire_after(expiry())
                .build(),
            config,
            counters: Arc::default(),
            refresher_running: Arc::default(),
            new_id: Arc::new(Uuid::new_v4),
        }
    }

    /// Replaces the source of new topic ids (for deterministic tests).
    pub fn with_id_source(mut self, source: impl Fn() -> Uuid + Send + Sync + 'static) -> Self {
        self.new_id = Arc::new(source);
        self
    }

    /// The settings in effect.
    pub fn config(&self) -> &TopicServiceConfig {
        &self.config
    }

    /// The metadata reads this service made so far, by cause (see [`TopicReadCounts`]).
    pub fn read_counts(&self) -> TopicReadCounts {
        self.counters.snapshot()
    }

    /// Finds a topic of a cluster by name.
    pub async fn lookup(
        &self,
        cluster_id: Uuid,
        name: &str,
    ) -> Result<Option<Arc<TopicInfo>>, TopicError> {
        Ok(self.entry_by_name(cluster_id, name).await?.map(|c| c.hit()))
    }

    /// Finds a topic of a cluster by id (None if it belongs to another cluster).
    pub async fn lookup_by_id(
        &self,
        cluster_id: Uuid,
        topic_id: Uuid,
    ) -> Result<Option<Arc<TopicInfo>>, TopicError> {
        Ok(self
            .entry_by_id(cluster_id, topic_id)
            .await?
            .map(|c| c.hit()))
    }

    /// The cache entry of a topic by name, read from the store on a miss.
    async fn entry_by_name(&self, cluster_id: Uuid, name: &str) -> Result<Entry, TopicError> {
        // A name that cannot exist is not worth a store read or a cache slot.
        if name.is_empty() || name.len() > names::MAX_TOPIC_NAME_LEN {
            return Ok(None);
        }
        let key = (cluster_id, name.to_owned());
        // The hit path (every produce and fetch) does no more than this read.
        if let Some(hit) = self.by_name.get(&key).await {
            return Ok(hit);
        }
        let store = Arc::clone(&self.store);
        let counters = Arc::clone(&self.counters);
        let by_id = self.by_id.clone();
        let owned = name.to_owned();
        // Concurrent misses for one key share a single load.
        self.by_name
            .try_get_with(key, async move {
                let reads = &counters.request_path_reads;
                Counters::add(reads, 1);
                let topic = store.get_topic(cluster_id, &owned).await?;
                let entry = Self::load(store.as_ref(), topic, reads).await?;
                if let Some(c) = &entry {
                    by_id.insert(c.info.topic.id, entry.clone()).await;
                }
                Ok(entry)
            })
            .await
            .map_err(TopicError::from_shared)
    }

    /// The cache entry of a topic by id, read from the store on a miss; `None` also for a
    /// topic of another cluster.
    async fn entry_by_id(&self, cluster_id: Uuid, topic_id: Uuid) -> Result<Entry, TopicError> {
        let store = Arc::clone(&self.store);
        let counters = Arc::clone(&self.counters);
        let by_name = self.by_name.clone();
        let found = self
            .by_id
            .try_get_with(topic_id, async move {
                let reads = &counters.request_path_reads;
                Counters::add(reads, 1);
                let topic = store.get_topic_by_id(topic_id).await?;
                let entry = Self::load(store.as_ref(), topic, reads).await?;
                if let Some(c) = &entry {
                    let key = (c.info.topic.cluster_id, c.info.topic.name.clone());
                    by_name.insert(key, entry.clone()).await;
                }
                Ok(entry)
            })
            .await
            .map_err(TopicError::from_shared)?;
        // Never reveal another tenant's topic: same answer as for an id that does not exist.
        Ok(found.filter(|c| c.info.topic.cluster_id == cluster_id))
    }

    /// All topics of a cluster, ordered by name. The topic list is always read from the store;
    /// partition owners come from the cache when the cached topic has the same version.
    pub async fn list(&self, cluster_id: Uuid) -> Result<Vec<Arc<TopicInfo>>, TopicError> {
        let reads = &self.counters.listing_reads;
        Counters::add(reads, 1);
        let topics = self.store.list_topics(cluster_id).await?;
        let mut out = Vec::with_capacity(topics.len());
        for topic in topics {
            let key = (cluster_id, topic.name.clone());
            match self.by_name.get(&key).await {
                Some(Some(c)) if c.info.topic.version == topic.version => {
                    out.push(Arc::clone(&c.info))
                }
                _ => {
                    Counters::add(reads, 1);
                    let owners = self.store.list_partition_owners(topic.id).await?;
                    let info = Arc::new(TopicInfo::new(topic, owners));
                    self.remember(&info).await;
                    out.push(info);
                }
            }
        }
        Ok(out)
    }

    /// Drops the cached entries of a topic so the next lookup reads the store, whatever view
    /// is cached. Request handlers use [`TopicService::report_stale`] instead, which drops only
    /// the view they saw fail.
    pub async fn invalidate(&self, cluster_id: Uuid, name: &str) {
        let key = (cluster_id, name.to_owned());
        if let Some(Some(c)) = self.by_name.get(&key).await {
            self.by_id.invalidate(&c.info.topic.id).await;
        }
        self.by_name.invalidate(&key).await;
        Counters::add(&self.counters.invalidations, 1);
    }

    /// Like [`TopicService::invalidate`], by topic id.
    pub async fn invalidate_id(&self, topic_id: Uuid) {
        if let Some(Some(c)) = self.by_id.get(&topic_id).await {
            self.by_name
                .invalidate(&(c.info.topic.cluster_id, c.info.topic.name.clone()))
                .await;
        }
        self.by_id.invalidate(&topic_id).await;
        Counters::add(&self.counters.invalidations, 1);
    }

    /// Reads the owners of `topic` (if it exists) and makes a cache entry, counting each store
    /// call in `reads`.
    async fn load(
        store: &dyn MetadataStore,
        topic: Option<Topic>,
        reads: &std::sync::atomic::AtomicU64,
    ) -> Result<Entry, TopicError> {
        let Some(topic) = topic else {
            return Ok(None);
        };
        Counters::add(reads, 1);
        let owners = store.list_partition_owners(topic.id).await?;
        Ok(Some(Cached::new(Arc::new(TopicInfo::new(topic, owners)))))
    }

    /// Caches the current state of a topic after this service changed it.
    async fn remember(&self, info: &Arc<TopicInfo>) {
        let entry = Some(Cached::new(Arc::clone(info)));
        self.by_name
            .insert(
                (info.topic.cluster_id, info.topic.name.clone()),
                entry.clone(),
            )
            .await;
        self.by_id.insert(info.topic.id, entry).await;
    }

    /// Drops a deleted topic from the caches.
    async fn forget(&self, topic: &Topic) {
        self.by_name
            .invalidate(&(topic.cluster_id, topic.name.clone()))
            .await;
        self.by_id.invalidate(&topic.id).await;
    }
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod manage_tests;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
pub(crate) mod tests;
