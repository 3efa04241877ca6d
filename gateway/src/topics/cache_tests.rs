//! Tests of the cache's freshness rules: no metadata reads in steady state, re-reads on
//! evidence (coalesced and rate-limited), and the background refresher. Real SQLite metadata,
//! counted both by the service's own counters and by a `CountingStore` around the store.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fjord_metadata::counting::CountingStore;
use fjord_metadata::{MetadataStore, SqliteStore};
use tempfile::TempDir;
use uuid::Uuid;

use super::tests::{cfg, node, NOW};
use super::*;

/// A service under test reading through a `CountingStore`, and a second service ("another
/// gateway") changing the same SQLite store.
struct Counted {
    _dir: TempDir,
    sqlite: Arc<SqliteStore>,
    counting: Arc<CountingStore>,
    elsewhere: TopicService,
    svc: Arc<TopicService>,
    cluster: Uuid,
}

async fn counted(config: TopicServiceConfig) -> Counted {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    node(&sqlite, "node-1", NOW).await;
    node(&sqlite, "node-2", NOW - 3_600_000).await;
    let counting = Arc::new(CountingStore::new(sqlite.clone()));
    Counted {
        _dir: dir,
        elsewhere: TopicService::new(sqlite.clone()),
        svc: Arc::new(TopicService::with_config(counting.clone(), config)),
        sqlite,
        counting,
        cluster: Uuid::from_u128(7),
    }
}

impl Counted {
    async fn create(&self, name: &str, partitions: i32) -> Arc<TopicInfo> {
        self.elsewhere
            .create_topic(self.cluster, name, partitions, BTreeMap::new(), false, NOW)
            .await
            .unwrap()
    }

    /// Metadata reads the service under test made so far, as the store counted them.
    fn store_reads(&self) -> u64 {
        self.counting.totals().0
    }
}

#[tokio::test]
async fn steady_state_lookups_read_the_store_once() {
    let f = counted(TopicServiceConfig::default()).await;
    let id = f.create("t", 3).await.topic.id;
    assert_eq!(f.store_reads(), 0);

    let first = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(first.owners.len(), 3);
    // One topic load: the topic and its owners.
    assert_eq!(f.store_reads(), 2);
    let counts = f.svc.read_counts();
    assert_eq!(counts.request_path_reads, 2);

    // Steady state: every data-path lookup form, many times, reads nothing.
    for i in 0..1000 {
        let p = i % 3;
        let a = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
        let b = f.svc.lookup_by_id(f.cluster, id).await.unwrap().unwrap();
        let c = f
            .svc
            .lookup_for_partition(f.cluster, "t", p)
            .await
            .unwrap()
            .unwrap();
        let d = f
            .svc
            .lookup_by_id_for_partition(f.cluster, id, p)
            .await
            .unwrap()
            .unwrap();
        assert!([&a, &b, &c, &d].iter().all(|v| Arc::ptr_eq(v, &first)));
    }
    assert_eq!(f.store_reads(), 2);
    assert_eq!(f.svc.read_counts(), counts);
    let snap = f.counting.snapshot();
    assert_eq!(snap.get("get_topic"), Some(&1));
    assert_eq!(snap.get("list_partition_owners"), Some(&1));
    assert_eq!(snap.get("get_topic_by_id"), None);

    // The counts serialize for the process's exit report.
    let json = serde_json::to_value(f.svc.read_counts()).unwrap();
    assert_eq!(json["request_path_reads"], 2);
    assert_eq!(json["background_reads"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_view_is_reread_once_by_many_concurrent_requests() {
    let f = counted(TopicServiceConfig::default()).await;
    let created = f.create("t", 2).await;
    let seen = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(seen.owners[0].node_id, "node-1");
    // The partition moves; the old owner answers NOT_LEADER_OR_FOLLOWER to every request
    // routed with `seen`.
    let moved = f
        .sqlite
        .claim_partition(created.topic.id, 0, "node-2", seen.owners[0].epoch)
        .await
        .unwrap();
    let reads_before = f.store_reads();
    let counts_before = f.svc.read_counts();

    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let svc = f.svc.clone();
            let seen = seen.clone();
            let cluster = f.cluster;
            tokio::spawn(async move {
                let outcome = svc.report_stale(&seen).await;
                let retry = svc.lookup(cluster, "t").await.unwrap().unwrap();
                (outcome, retry)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    let dropped = results
        .iter()
        .filter(|(o, _)| *o == StaleOutcome::Dropped)
        .count();
    assert_eq!(dropped, 1);
    let fresh = &results[0].1;
    assert_eq!(fresh.owners[0], moved);
    assert!(results.iter().all(|(_, v)| Arc::ptr_eq(v, fresh)));
    // One topic load for all 32 requests.
    assert_eq!(f.store_reads() - reads_before, 2);
    let counts = f.svc.read_counts();
    assert_eq!(
        counts.request_path_reads - counts_before.request_path_reads,
        2
    );
    assert_eq!(counts.invalidations - counts_before.invalidations, 1);

    // A late report about the old view changes nothing.
    assert_eq!(
        f.svc.report_stale(&seen).await,
        StaleOutcome::AlreadyReplaced
    );
    f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(f.store_reads() - reads_before, 2);
}

#[tokio::test(start_paused = true)]
async fn weak_evidence_rereads_at_most_once_per_interval() {
    let f = counted(TopicServiceConfig::default()).await;
    f.create("t", 1).await;
    let seen = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    // Just read: an unreachable owner is not worth another read yet.
    assert_eq!(f.svc.report_suspect(&seen).await, StaleOutcome::TooRecent);
    assert!(Arc::ptr_eq(
        &f.svc.lookup(f.cluster, "t").await.unwrap().unwrap(),
        &seen
    ));
    assert_eq!(f.store_reads(), 2);
    assert_eq!(f.svc.read_counts().rate_limited_rereads, 1);

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(f.svc.report_suspect(&seen).await, StaleOutcome::Dropped);
    let again = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert!(!Arc::ptr_eq(&again, &seen));
    assert_eq!(f.store_reads(), 4);
    assert_eq!(f.svc.read_counts().invalidations, 1);
}

#[tokio::test(start_paused = true)]
async fn a_partition_beyond_the_cached_count_rereads_once_per_interval() {
    let f = counted(TopicServiceConfig::default()).await;
    let id = f.create("t", 1).await.topic.id;
    let one = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(one.topic.partitions, 1);
    // Another gateway adds partitions.
    f.elsewhere
        .create_partitions(f.cluster, "t", 3, false, NOW)
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(f.store_reads(), 2);

    // A producer that learned of partition 2 elsewhere: one re-read, and it is routable.
    let grown = f
        .svc
        .lookup_for_partition(f.cluster, "t", 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((grown.topic.partitions, grown.owners.len()), (3, 3));
    assert_eq!(f.store_reads(), 4);
    // Partitions within the new count, and a client hammering a partition that does not
    // exist, read nothing within the interval.
    for _ in 0..100 {
        let v = f
            .svc
            .lookup_for_partition(f.cluster, "t", 7)
            .await
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&v, &grown));
        f.svc
            .lookup_by_id_for_partition(f.cluster, id, 9)
            .await
            .unwrap()
            .unwrap();
        f.svc
            .lookup_for_partition(f.cluster, "t", 2)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(f.store_reads(), 4);
    assert_eq!(f.svc.read_counts().rate_limited_rereads, 200);

    // One interval later the bad partition is worth one more read, then none again.
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..10 {
        let v = f
            .svc
            .lookup_by_id_for_partition(f.cluster, id, 9)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.topic.partitions, 3);
    }
    assert_eq!(f.store_reads(), 6);
    assert_eq!(f.svc.read_counts().request_path_reads, 6);
}

#[tokio::test]
async fn the_refresh_round_picks_up_changes_that_leave_no_evidence() {
    let f = counted(TopicServiceConfig::default()).await;
    let created = f.create("t", 1).await;
    f.create("idle", 1).await;
    f.create("doomed", 1).await;
    let old = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(old.limits.max_message_bytes, 1_048_588);
    f.svc.lookup(f.cluster, "idle").await.unwrap().unwrap();
    f.svc.lookup(f.cluster, "doomed").await.unwrap().unwrap();
    let request_reads = f.svc.read_counts().request_path_reads;
    assert_eq!(request_reads, 6);

    // Changed and deleted directly in the store: no request would notice.
    f.sqlite
        .update_topic(
            &Topic {
                configs: cfg(&[("max.message.bytes", "777")]),
                ..created.topic.clone()
            },
            &[],
        )
        .await
        .unwrap();
    f.elsewhere.delete_topic(f.cluster, "doomed").await.unwrap();
    let still = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&still, &old));

    let summary = f.svc.refresh_used().await;
    assert_eq!(
        summary,
        RefreshSummary {
            read: 3,
            changed: 1,
            dropped: 1,
            failed: 0
        }
    );
    let new = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert_eq!(new.limits.max_message_bytes, 777);
    let counts = f.svc.read_counts();
    // t and idle: topic + owners each; doomed: the topic only.
    assert_eq!(counts.background_reads, 5);
    assert_eq!(counts.request_path_reads, request_reads);

    // Only topics used since the previous round are re-read, and an unchanged view is kept.
    let summary = f.svc.refresh_used().await;
    assert_eq!((summary.read, summary.changed), (1, 0));
    assert!(Arc::ptr_eq(
        &f.svc.lookup(f.cluster, "t").await.unwrap().unwrap(),
        &new
    ));
    f.svc.refresh_used().await;
    assert_eq!(f.svc.refresh_used().await.read, 0);
    assert_eq!(f.svc.read_counts().background_reads, 9);
    assert_eq!(f.svc.read_counts().request_path_reads, request_reads);
    // The deleted topic is gone from the cache: the next lookup reads and finds nothing.
    assert!(f.svc.lookup(f.cluster, "doomed").await.unwrap().is_none());
    assert_eq!(f.svc.read_counts().request_path_reads, request_reads + 1);
}

#[tokio::test]
async fn a_refresh_does_not_overwrite_a_newer_view() {
    let f = counted(TopicServiceConfig::default()).await;
    f.create("t", 1).await;
    f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    let key = (f.cluster, "t".to_owned());
    let old = f.svc.by_name.get(&key).await.flatten().unwrap();
    // A refresh round read the topic ...
    let refreshed = refresh::read_by_id_for_tests(&f.svc, old.info.topic.id)
        .await
        .unwrap()
        .unwrap();
    // ... but before it swaps its view in, this gateway changes the topic.
    let changed = f
        .svc
        .alter_configs(f.cluster, "t", cfg(&[("retention.ms", "5")]), false)
        .await
        .unwrap();
    f.svc.replace_view(&old, Some(refreshed)).await;
    let now = f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&now, &changed));
    let by_id = f
        .svc
        .lookup_by_id(f.cluster, changed.topic.id)
        .await
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&by_id, &changed));
}

#[tokio::test(start_paused = true)]
async fn the_refresher_runs_every_interval_until_its_handle_is_dropped() {
    let f = counted(TopicServiceConfig {
        refresh_interval: Duration::from_secs(30),
        ..TopicServiceConfig::default()
    })
    .await;
    let created = f.create("t", 1).await;
    f.svc.lookup(f.cluster, "t").await.unwrap().unwrap();
    let set = |v: &str| Topic {
        configs: cfg(&[("max.message.bytes", v)]),
        ..created.topic.clone()
    };
    let stored = f.sqlite.update_topic(&set("777"), &[]).await.unwrap();

    let handle = f.svc.spawn_refresher();
    assert!(handle.is_active());
    assert!(
        !f.svc.spawn_refresher().is_active(),
        "one refresher per service"
    );
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(f.svc.read_counts().background_reads, 0);
    let limit = |f: &Counted| {
        let svc = f.svc.clone();
        let cluster = f.cluster;
        async move {
            svc.lookup(cluster, "t")
                .await
                .unwrap()
                .unwrap()
                .limits
                .max_message_bytes
        }
    };
    assert_eq!(limit(&f).await, 1_048_588);

    // The round at 30 s swaps the new config in (bounded wait in virtual time: well before the
    // next round).
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..1000 {
        if f.svc.read_counts().background_reads >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.svc.read_counts().background_reads, 2);
    assert_eq!(limit(&f).await, 777);
    assert_eq!(f.svc.read_counts().request_path_reads, 2);

    // Stopped: later changes stay unseen.
    drop(handle);
    f.sqlite
        .update_topic(
            &Topic {
                configs: cfg(&[("max.message.bytes", "555")]),
                ..stored
            },
            &[],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(limit(&f).await, 777);
    assert_eq!(f.svc.read_counts().background_reads, 2);
    // And a new refresher may start.
    assert!(f.svc.spawn_refresher().is_active());
}

#[test]
fn refresh_settings_are_validated() {
    let bad = TopicServiceConfig {
        max_age: Duration::from_secs(30),
        ..TopicServiceConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("max_age"));
    let bad = TopicServiceConfig {
        refresh_concurrency: 0,
        ..TopicServiceConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("refresh_concurrency"));
    let bad = TopicServiceConfig {
        refresh_interval: Duration::ZERO,
        ..TopicServiceConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("refresh_interval"));
}
