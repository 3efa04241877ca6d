//! Topic lookups (cached) and topic management.
//!
//! [`TopicService`] is the one code path for topics: the Kafka data path looks topics up through
//! it, and the Kafka admin APIs (and later the control-plane HTTP API) change topics through it,
//! with the same checks.
//!
//! Caching: lookups are cached in `moka` caches keyed by (cluster, name) and by topic id. Every
//! change made through this service replaces or drops the cached entries at once. Changes made
//! by *other* gateways (or the controller moving partitions) are picked up when an entry
//! expires: positive entries live [`TopicServiceConfig::cache_ttl`] (5 s by default), "no such
//! topic" entries [`TopicServiceConfig::negative_cache_ttl`] (1 s), so a topic created through
//! another gateway is usable here within a second. Callers that learn an owner moved (a node
//! answers NOT_LEADER_OR_FOLLOWER) call [`TopicService::invalidate`] to re-read at once.
//!
//! Layout: [`config`] (config definitions, validation, describe), [`names`] (naming rules),
//! `error` ([`TopicError`]), `placement` (which node owns a new partition), `manage` (create,
//! delete, partitions, configs).

pub mod config;
mod error;
mod manage;
pub mod names;
mod placement;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_metadata::{MetadataStore, PartitionOwner, Topic};
use fjord_storage_node::TopicLimits;
use moka::future::Cache;
use moka::Expiry;
use uuid::Uuid;

pub use config::{AlterOp, ConfigAlteration, ConfigEntry, ConfigSource, ConfigType};
pub use error::TopicError;

/// The replication factor Fjord reports for every topic (CreateTopics v5+ responses). Each
/// partition has exactly one owner node; durability comes from the fsynced WAL and object
/// storage, not from replicas, so one replica is the honest answer and matches the single
/// replica Metadata lists.
pub const REPORTED_REPLICATION_FACTOR: i16 = 1;

/// A topic as the data path needs it: the record, its partition owners and produce limits.
#[derive(Clone, Debug)]
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
    /// How long a found topic stays cached (default 5 s). Longer means fewer metadata reads but
    /// a later view of changes made by other gateways (new configs, added partitions).
    pub cache_ttl: Duration,
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
        Ok(())
    }
}

impl Default for TopicServiceConfig {
    fn default() -> Self {
        TopicServiceConfig {
            cache_ttl: Duration::from_secs(5),
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

/// Cache entries: `Some` for a topic, `None` for "does not exist".
type Entry = Option<Arc<TopicInfo>>;

/// Gives found topics and misses their own lifetimes.
struct EntryExpiry {
    hit: Duration,
    miss: Duration,
}

impl EntryExpiry {
    fn ttl(&self, value: &Entry) -> Duration {
        if value.is_some() {
            self.hit
        } else {
            self.miss
        }
    }
}

impl<K> Expiry<K, Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &K, value: &Entry, _: Instant) -> Option<Duration> {
        Some(self.ttl(value))
    }

    fn expire_after_update(
        &self,
        _: &K,
        value: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(value))
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
            hit: config.cache_ttl,
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

    /// Finds a topic of a cluster by name.
    pub async fn lookup(
        &self,
        cluster_id: Uuid,
        name: &str,
    ) -> Result<Option<Arc<TopicInfo>>, TopicError> {
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
        let by_id = self.by_id.clone();
        let owned = name.to_owned();
        // Concurrent misses for one key share a single load.
        self.by_name
            .try_get_with(key, async move {
                let topic = store.get_topic(cluster_id, &owned).await?;
                let entry = Self::load(store.as_ref(), topic).await?;
                if let Some(info) = &entry {
                    by_id.insert(info.topic.id, entry.clone()).await;
                }
                Ok(entry)
            })
            .await
            .map_err(TopicError::from_shared)
    }

    /// Finds a topic of a cluster by id (None if it belongs to another cluster).
    pub async fn lookup_by_id(
        &self,
        cluster_id: Uuid,
        topic_id: Uuid,
    ) -> Result<Option<Arc<TopicInfo>>, TopicError> {
        let store = Arc::clone(&self.store);
        let by_name = self.by_name.clone();
        let found = self
            .by_id
            .try_get_with(topic_id, async move {
                let topic = store.get_topic_by_id(topic_id).await?;
                let entry = Self::load(store.as_ref(), topic).await?;
                if let Some(info) = &entry {
                    let key = (info.topic.cluster_id, info.topic.name.clone());
                    by_name.insert(key, entry.clone()).await;
                }
                Ok(entry)
            })
            .await
            .map_err(TopicError::from_shared)?;
        // Never reveal another tenant's topic: same answer as for an id that does not exist.
        Ok(found.filter(|info| info.topic.cluster_id == cluster_id))
    }

    /// All topics of a cluster, ordered by name. The topic list is always read from the store;
    /// partition owners come from the cache when the cached topic has the same version.
    pub async fn list(&self, cluster_id: Uuid) -> Result<Vec<Arc<TopicInfo>>, TopicError> {
        let topics = self.store.list_topics(cluster_id).await?;
        let mut out = Vec::with_capacity(topics.len());
        for topic in topics {
            let key = (cluster_id, topic.name.clone());
            match self.by_name.get(&key).await {
                Some(Some(info)) if info.topic.version == topic.version => out.push(info),
                _ => {
                    let owners = self.store.list_partition_owners(topic.id).await?;
                    let info = Arc::new(TopicInfo::new(topic, owners));
                    self.remember(&info).await;
                    out.push(info);
                }
            }
        }
        Ok(out)
    }

    /// Drops the cached entries of a topic so the next lookup reads the store (e.g. after a
    /// node reported that it no longer owns one of its partitions).
    pub async fn invalidate(&self, cluster_id: Uuid, name: &str) {
        let key = (cluster_id, name.to_owned());
        if let Some(Some(info)) = self.by_name.get(&key).await {
            self.by_id.invalidate(&info.topic.id).await;
        }
        self.by_name.invalidate(&key).await;
    }

    /// Like [`TopicService::invalidate`], by topic id.
    pub async fn invalidate_id(&self, topic_id: Uuid) {
        if let Some(Some(info)) = self.by_id.get(&topic_id).await {
            self.by_name
                .invalidate(&(info.topic.cluster_id, info.topic.name.clone()))
                .await;
        }
        self.by_id.invalidate(&topic_id).await;
    }

    async fn load(store: &dyn MetadataStore, topic: Option<Topic>) -> Result<Entry, TopicError> {
        let Some(topic) = topic else {
            return Ok(None);
        };
        let owners = store.list_partition_owners(topic.id).await?;
        Ok(Some(Arc::new(TopicInfo::new(topic, owners))))
    }

    /// Caches the current state of a topic after this service changed it.
    async fn remember(&self, info: &Arc<TopicInfo>) {
        let entry = Some(Arc::clone(info));
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
mod manage_tests;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
pub(crate) mod tests;
