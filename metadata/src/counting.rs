//! [`CountingStore`]: a [`MetadataStore`] that counts the calls it passes on.
//!
//! Fjord's cost goals are stated in metadata operations per gigabyte ingested, and its produce
//! hot path must make no metadata reads in steady state. Wrapping the real store in this
//! counter makes both observable on a running process at the price of one relaxed atomic
//! increment per call.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::Result;
use crate::store::{MetadataStore, PartitionCommit};
use crate::types::*;

/// Whether a method reads shared state or changes it (a conditional write that fails still
/// costs a write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// Reads only.
    Read,
    /// Writes (possibly after reading, as conditional writes do).
    Write,
}

/// Generates the method table, the per-method counter index and the delegating trait impl from
/// one list, so that a method can never be delegated without being counted.
macro_rules! counted {
    ($( $kind:ident $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ;)*) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Method { $($name),* }

        /// Every trait method with its kind, in declaration order (indexed by `Method`).
        const METHODS: &[(&str, CallKind)] = &[$((stringify!($name), CallKind::$kind)),*];

        #[async_trait]
        impl MetadataStore for CountingStore {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                    self.hit(Method::$name);
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

counted! {
    Write create_account(account: &Account) -> ();
    Read get_account(id: &str) -> Option<Account>;
    Write create_cluster(cluster: &Cluster) -> ();
    Read get_cluster(id: Uuid) -> Option<Cluster>;
    Read get_cluster_by_name(account_id: &str, name: &str) -> Option<Cluster>;
    Read list_clusters(account_id: &str) -> Vec<Cluster>;
    Write create_access_key(key: &AccessKey) -> ();
    Read get_access_key(id: &str) -> Option<AccessKey>;
    Read list_access_keys(account_id: &str) -> Vec<AccessKey>;
    Write set_access_key_status(id: &str, status: KeyStatus) -> ();
    Write delete_access_key(id: &str) -> ();
    Write create_topic(topic: &Topic, owners: &[PartitionOwner]) -> ();
    Read get_topic(cluster_id: Uuid, name: &str) -> Option<Topic>;
    Read get_topic_by_id(topic_id: Uuid) -> Option<Topic>;
    Read list_topics(cluster_id: Uuid) -> Vec<Topic>;
    Write update_topic(topic: &Topic, new_owners: &[PartitionOwner]) -> Topic;
    Write delete_topic(topic_id: Uuid) -> Vec<ManifestEntry>;
    Read list_partition_owners(topic_id: Uuid) -> Vec<PartitionOwner>;
    Read get_partition_owner(topic_id: Uuid, partition: i32) -> Option<PartitionOwner>;
    Read list_partitions_of_node(node_id: &str) -> Vec<PartitionOwner>;
    Write claim_partition(topic_id: Uuid, partition: i32, node_id: &str, expected_epoch: i32)
        -> PartitionOwner;
    Write advance_log_start(topic_id: Uuid, partition: i32, epoch: i32, log_start_offset: i64)
        -> Vec<ManifestEntry>;
    Write register_node(node: &NodeInfo) -> ();
    Write heartbeat_node(node_id: &str, now_ms: Millis) -> ();
    Read get_node(node_id: &str) -> Option<NodeInfo>;
    Read list_nodes() -> Vec<NodeInfo>;
    Write heartbeat_gateway(gateway_id: &str, now_ms: Millis) -> ();
    Read list_gateways() -> Vec<GatewayInfo>;
    Write remove_gateway(gateway_id: &str) -> ();
    Write commit_manifest(node_id: &str, commits: &[PartitionCommit]) -> ();
    Read list_manifest(topic_id: Uuid, partition: i32) -> Vec<ManifestEntry>;
    Read manifest_references(object_key: &str) -> usize;
    Read producer_snapshots(topic_id: Uuid, partition: i32) -> Vec<ProducerSnapshot>;
    Write commit_offsets(cluster_id: Uuid, group: &str, offsets: &[CommittedOffset]) -> ();
    Read fetch_offsets(cluster_id: Uuid, group: &str) -> Vec<CommittedOffset>;
    Write delete_group_offsets(cluster_id: Uuid, group: &str) -> ();
    Read list_offset_groups(cluster_id: Uuid) -> Vec<String>;
    Write allocate_producer_ids(count: i64) -> i64;
    Write delete_cluster(id: Uuid) -> ();
    Write create_principal(principal: &Principal) -> ();
    Read get_principal(account_id: &str, name: &str) -> Option<Principal>;
    Read list_principals(account_id: &str) -> Vec<Principal>;
    Write update_principal(principal: &Principal) -> Principal;
    Write delete_principal(account_id: &str, name: &str) -> ();
    Read auth_epoch() -> i64;
    Read get_cluster_settings(cluster_id: Uuid) -> Option<ClusterSettings>;
    Write put_cluster_settings(settings: &ClusterSettings) -> ClusterSettings;
    Write create_acls(cluster_id: Uuid, bindings: &[String]) -> usize;
    Read list_acls(cluster_id: Uuid) -> Vec<String>;
    Write delete_acls(cluster_id: Uuid, bindings: &[String]) -> Vec<String>;
    Write record_usage(record: &UsageRecord) -> ();
    Read list_usage(cluster_id: Uuid, from_ms: Millis, to_ms: Millis) -> Vec<UsageRecord>;
}

/// Delegates every call to an inner store and counts calls per method.
///
/// Counts are of trait calls, not of backend requests: a call that pages through a long
/// DynamoDB query or retries after throttling is still one call.
pub struct CountingStore {
    inner: Arc<dyn MetadataStore>,
    counts: Box<[AtomicU64]>,
}

impl CountingStore {
    /// Wraps `inner`; all counters start at zero.
    pub fn new(inner: Arc<dyn MetadataStore>) -> Self {
        Self {
            inner,
            counts: METHODS.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn hit(&self, method: Method) {
        // `Method` indexes `METHODS`, which `counts` mirrors one to one (both built from the
        // same macro list), so the index is always in bounds.
        if let Some(c) = self.counts.get(method as usize) {
            // Relaxed: the counters order nothing; readers want totals, not happens-before.
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls so far per method name; methods never called are left out.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        METHODS
            .iter()
            .zip(self.counts.iter())
            .map(|((name, _), c)| (*name, c.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Total reads and writes so far, as `(reads, writes)`.
    pub fn totals(&self) -> (u64, u64) {
        METHODS
            .iter()
            .zip(self.counts.iter())
            .fold((0, 0), |(r, w), ((_, kind), c)| {
                let n = c.load(Ordering::Relaxed);
                match kind {
                    CallKind::Read => (r + n, w),
                    CallKind::Write => (r, w + n),
                }
            })
    }

    /// Whether `method` (a trait method name) reads or writes; `None` for an unknown name.
    pub fn kind_of(method: &str) -> Option<CallKind> {
        METHODS
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, kind)| *kind)
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStore")
            .field("counts", &self.snapshot())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[tokio::test]
    async fn counts_each_call_and_classifies_it(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let sqlite = SqliteStore::open(&dir.path().join("m.sqlite"))?;
        let store = CountingStore::new(Arc::new(sqlite));
        assert!(store.snapshot().is_empty());

        assert_eq!(store.get_node("n1").await?, None);
        assert_eq!(store.get_node("n2").await?, None);
        let first = store.allocate_producer_ids(10).await?;
        assert_eq!(store.allocate_producer_ids(10).await?, first + 10);
        store.list_nodes().await?;

        let snap = store.snapshot();
        assert_eq!(snap.get("get_node"), Some(&2));
        assert_eq!(snap.get("allocate_producer_ids"), Some(&2));
        assert_eq!(snap.get("list_nodes"), Some(&1));
        assert_eq!(snap.len(), 3);
        assert_eq!(store.totals(), (3, 2));
        Ok(())
    }

    #[test]
    fn every_method_is_classified_once() {
        let mut names: Vec<_> = METHODS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
        assert_eq!(
            CountingStore::kind_of("commit_manifest"),
            Some(CallKind::Write)
        );
        assert_eq!(
            CountingStore::kind_of("get_partition_owner"),
            Some(CallKind::Read)
        );
        assert_eq!(CountingStore::kind_of("nope"), None);
    }
}
