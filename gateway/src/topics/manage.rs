//! Topic management: create, delete, add partitions, change configs. Used by the Kafka admin
//! handlers and, later, by the control plane, so both get the same checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use fjord_metadata::{MetadataError, PartitionOwner, Topic};
use tracing::{debug, info, instrument};
use uuid::Uuid;

use super::config::{self, ConfigAlteration, ConfigEntry};
use super::names::{collides, validate_topic_name};
use super::placement::place;
use super::{TopicError, TopicInfo, TopicService};

impl TopicService {
    /// Creates a topic with `partitions` partitions (-1: the default) and the given config
    /// overrides, placing its partitions on live storage nodes. With `validate_only`, runs every
    /// check and returns what would be created without storing anything.
    #[instrument(skip(self, configs), fields(%cluster_id, topic = name, partitions))]
    pub async fn create_topic(
        &self,
        cluster_id: Uuid,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Arc<TopicInfo>, TopicError> {
        validate_topic_name(name)?;
        let partitions = match partitions {
            -1 => self.config.default_partitions,
            p if p >= 1 => p,
            p => {
                return Err(TopicError::InvalidPartitions(format!(
                    "number of partitions must be at least 1, or -1 for the default ({}); got {p}",
                    self.config.default_partitions
                )))
            }
        };
        let configs = config::validate_configs(&configs, self.config.max_message_bytes_limit)?;

        let existing = self.store.list_topics(cluster_id).await?;
        if existing.iter().any(|t| t.name == name) {
            return Err(TopicError::AlreadyExists(name.to_owned()));
        }
        if let Some(other) = existing.iter().find(|t| collides(&t.name, name)) {
            return Err(TopicError::InvalidName(format!(
                "topic '{name}' collides with existing topic '{}' ('.' and '_' are the same in \
                 metric names)",
                other.name
            )));
        }
        self.check_partition_limit(cluster_id, &existing, i64::from(partitions))
            .await?;

        let id = (self.new_id)();
        let owners = place(
            self.store.as_ref(),
            id,
            0,
            partitions,
            now_ms,
            self.config.node_liveness_ms,
        )
        .await?;
        let topic = Topic {
            id,
            cluster_id,
            name: name.to_owned(),
            partitions,
            configs,
            version: 0,
            created_ms: now_ms,
        };
        if validate_only {
            return Ok(Arc::new(TopicInfo::new(topic, owners)));
        }
        match self.store.create_topic(&topic, &owners).await {
            Ok(()) => {}
            Err(MetadataError::AlreadyExists { .. }) => {
                return Err(TopicError::AlreadyExists(name.to_owned()))
            }
            Err(e) => return Err(e.into()),
        }
        info!(topic_id = %id, partitions, "topic created");
        let info = Arc::new(TopicInfo::new(topic, owners));
        self.remember(&info).await;
        Ok(info)
    }

    /// Refuses growth that would take the cluster over its partition limit: the cluster's
    /// stored `max-partitions` override, else `max_partitions_per_cluster`. Two gateways
    /// creating at the same moment can both pass this check (the store has no per-cluster
    /// counter to condition on), overshooting by at most one request's partitions.
    async fn check_partition_limit(
        &self,
        cluster_id: Uuid,
        existing: &[Topic],
        adding: i64,
    ) -> Result<(), TopicError> {
        let used: i64 = existing.iter().map(|t| i64::from(t.partitions)).sum();
        let limit = self.partition_limit(cluster_id).await?;
        if used.saturating_add(adding) > limit {
            return Err(TopicError::InvalidRequest(format!(
                "adding {adding} partitions would bring the cluster to {} partitions, over its \
                 limit of {limit} (it has {used})",
                used.saturating_add(adding)
            )));
        }
        Ok(())
    }

    /// The cluster's partition limit. Read at every topic creation or growth (rare
    /// operations), so a changed override applies at once.
    async fn partition_limit(&self, cluster_id: Uuid) -> Result<i64, TopicError> {
        let stored = self.store.get_cluster_settings(cluster_id).await?;
        Ok(stored
            .and_then(|s| s.limits.get("max-partitions").copied())
            .filter(|v| *v >= 1)
            .unwrap_or(self.config.max_partitions_per_cluster))
    }

    /// Deletes a topic by name and returns what was deleted.
    #[instrument(skip(self), fields(%cluster_id, topic = name))]
    pub async fn delete_topic(&self, cluster_id: Uuid, name: &str) -> Result<Topic, TopicError> {
        let topic = self
            .store
            .get_topic(cluster_id, name)
            .await?
            .ok_or_else(|| TopicError::UnknownTopic(name.to_owned()))?;
        self.delete(topic).await
    }

    /// Deletes a topic by id and returns what was deleted.
    #[instrument(skip(self), fields(%cluster_id, %topic_id))]
    pub async fn delete_topic_by_id(
        &self,
        cluster_id: Uuid,
        topic_id: Uuid,
    ) -> Result<Topic, TopicError> {
        let topic = self
            .store
            .get_topic_by_id(topic_id)
            .await?
            .filter(|t| t.cluster_id == cluster_id)
            .ok_or(TopicError::UnknownTopicId(topic_id))?;
        self.delete(topic).await
    }

    async fn delete(&self, topic: Topic) -> Result<Topic, TopicError> {
        let removed = match self.store.delete_topic(topic.id).await {
            Ok(removed) => removed,
            Err(MetadataError::NotFound { .. }) => {
                self.forget(&topic).await;
                return Err(TopicError::UnknownTopic(topic.name));
            }
            Err(e) => return Err(e.into()),
        };
        self.forget(&topic).await;
        // The objects these entries pointed into may now hold no live data; object garbage
        // collection (manifest_references) reclaims them.
        info!(
            topic_id = %topic.id,
            manifest_entries = removed.len(),
            "topic deleted"
        );
        Ok(topic)
    }

    /// Grows a topic to `new_total` partitions, placing the new ones on live nodes. Partitions
    /// can only be added.
    #[instrument(skip(self), fields(%cluster_id, topic = name, new_total))]
    pub async fn create_partitions(
        &self,
        cluster_id: Uuid,
        name: &str,
        new_total: i32,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Arc<TopicInfo>, TopicError> {
        for attempt in 1..=self.config.conflict_attempts {
            let topic = self.get(cluster_id, name).await?;
            if new_total <= topic.partitions {
                return Err(TopicError::InvalidPartitions(
                    if new_total == topic.partitions {
                        format!("topic '{name}' already has {new_total} partitions")
                    } else {
                        format!(
                        "topic '{name}' has {} partitions, more than the requested {new_total}; \
                         partitions can only be added",
                        topic.partitions
                    )
                    },
                ));
            }
            let added = new_total - topic.partitions;
            let existing = self.store.list_topics(cluster_id).await?;
            self.check_partition_limit(cluster_id, &existing, i64::from(added))
                .await?;
            let new_owners = place(
                self.store.as_ref(),
                topic.id,
                topic.partitions,
                added,
                now_ms,
                self.config.node_liveness_ms,
            )
            .await?;
            let grown = Topic {
                partitions: new_total,
                ..topic
            };
            if validate_only {
                let mut owners = self.store.list_partition_owners(grown.id).await?;
                owners.extend(new_owners);
                return Ok(Arc::new(TopicInfo::new(grown, owners)));
            }
            if let Some(stored) = self.try_update(name, attempt, &grown, &new_owners).await? {
                info!(added, "partitions created");
                return self.refresh(stored).await;
            }
        }
        Err(self.contended(name))
    }

    /// Every known config of a topic with its effective value (read from the store, not the
    /// cache, so it shows changes made through other gateways).
    pub async fn describe_configs(
        &self,
        cluster_id: Uuid,
        name: &str,
    ) -> Result<Vec<ConfigEntry>, TopicError> {
        let topic = self.get(cluster_id, name).await?;
        Ok(config::describe(&topic.configs))
    }

    /// Replaces all config overrides of a topic with `set` (Kafka's AlterConfigs semantics:
    /// anything not in `set` returns to its default).
    #[instrument(skip(self, set), fields(%cluster_id, topic = name))]
    pub async fn alter_configs(
        &self,
        cluster_id: Uuid,
        name: &str,
        set: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<TopicInfo>, TopicError> {
        let validated = config::validate_configs(&set, self.config.max_message_bytes_limit)?;
        self.update_configs(cluster_id, name, validate_only, |_| Ok(validated.clone()))
            .await
    }

    /// Applies SET / DELETE / APPEND / SUBTRACT changes to a topic's config overrides.
    #[instrument(skip(self, ops), fields(%cluster_id, topic = name, ops = ops.len()))]
    pub async fn incremental_alter_configs(
        &self,
        cluster_id: Uuid,
        name: &str,
        ops: &[ConfigAlteration],
        validate_only: bool,
    ) -> Result<Arc<TopicInfo>, TopicError> {
        let limit = self.config.max_message_bytes_limit;
        self.update_configs(cluster_id, name, validate_only, |current| {
            config::apply_incremental(current, ops, limit)
        })
        .await
    }

    /// Read-modify-write of a topic's configs, retried when another writer wins the race.
    async fn update_configs(
        &self,
        cluster_id: Uuid,
        name: &str,
        validate_only: bool,
        change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, TopicError>,
    ) -> Result<Arc<TopicInfo>, TopicError> {
        for attempt in 1..=self.config.conflict_attempts {
            let topic = self.get(cluster_id, name).await?;
            let configs = change(&topic.configs)?;
            let changed = Topic { configs, ..topic };
            if validate_only {
                let owners = self.store.list_partition_owners(changed.id).await?;
                return Ok(Arc::new(TopicInfo::new(changed, owners)));
            }
            if let Some(stored) = self.try_update(name, attempt, &changed, &[]).await? {
                info!(configs = ?stored.configs, "topic configs changed");
                return self.refresh(stored).await;
            }
        }
        Err(self.contended(name))
    }

    /// Stores a changed topic (and the owners of new partitions) if nobody changed it since it
    /// was read: `Ok(None)` when another writer won, so the caller re-reads and tries again.
    async fn try_update(
        &self,
        name: &str,
        attempt: u32,
        topic: &Topic,
        new_owners: &[PartitionOwner],
    ) -> Result<Option<Topic>, TopicError> {
        match self.store.update_topic(topic, new_owners).await {
            Ok(stored) => Ok(Some(stored)),
            Err(MetadataError::Conflict(why)) => {
                debug!(attempt, %why, "topic changed concurrently; re-reading");
                Ok(None)
            }
            Err(MetadataError::NotFound { .. }) => Err(TopicError::UnknownTopic(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// The error of a read-modify-write that lost every race it ran.
    fn contended(&self, name: &str) -> TopicError {
        TopicError::Contended {
            name: name.to_owned(),
            attempts: self.config.conflict_attempts,
        }
    }

    /// Reads a topic from the store, bypassing the cache (for management decisions and for
    /// describing a topic right after a change made elsewhere).
    pub async fn get(&self, cluster_id: Uuid, name: &str) -> Result<Topic, TopicError> {
        self.store
            .get_topic(cluster_id, name)
            .await?
            .ok_or_else(|| TopicError::UnknownTopic(name.to_owned()))
    }

    /// Re-reads the owners of a topic this service just changed and caches the result.
    async fn refresh(&self, topic: Topic) -> Result<Arc<TopicInfo>, TopicError> {
        let owners = self.store.list_partition_owners(topic.id).await?;
        let info = Arc::new(TopicInfo::new(topic, owners));
        self.remember(&info).await;
        Ok(info)
    }
}
