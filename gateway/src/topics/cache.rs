//! Cache entries, the read counters, and the evidence that drops a cached view (see the
//! freshness rules in the [module documentation](super)).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::ops::compute::Op;
use moka::Expiry;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;
use tracing::debug;
use uuid::Uuid;

use super::{TopicError, TopicInfo, TopicService};

/// Cache entries: `Some` for a topic, `None` for "does not exist".
pub(super) type Entry = Option<Arc<Cached>>;

/// One cached view of a topic. The same `Arc<Cached>` sits in both caches (by name and by id),
/// so marks made through one are seen through the other.
pub(super) struct Cached {
    /// The view handed to requests. Its identity (the `Arc`) is what evidence refers to.
    pub(super) info: Arc<TopicInfo>,
    /// When the store last confirmed this view: its load, or a refresh that found no change.
    /// Touched only off the hot path (evidence, refresh).
    read_at: Mutex<Instant>,
    /// Whether a request used the view since the refresher's previous round.
    used: AtomicBool,
}

impl Cached {
    /// A view just read from the store (or just written by this service), not yet used.
    pub(super) fn new(info: Arc<TopicInfo>) -> Arc<Self> {
        Arc::new(Cached {
            info,
            read_at: Mutex::new(Instant::now()),
            used: AtomicBool::new(false),
        })
    }

    /// Hands the view to a request, marking it as used for the refresher.
    pub(super) fn hit(&self) -> Arc<TopicInfo> {
        // Load before store: in steady state the flag is already set and the cache line stays
        // shared between the cores serving requests.
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
        Arc::clone(&self.info)
    }

    /// Whether the view was used since the previous call (and clears the mark).
    pub(super) fn take_used(&self) -> bool {
        self.used.swap(false, Ordering::Relaxed)
    }

    /// Marks the view as used again (a refresh that failed is retried next round).
    pub(super) fn mark_used(&self) {
        self.used.store(true, Ordering::Relaxed);
    }

    /// Records that the store still says what this view says, as of `at`.
    pub(super) fn confirm(&self, at: Instant) {
        let mut read_at = self.read_at.lock();
        *read_at = (*read_at).max(at);
    }

    /// Time since the store last confirmed this view.
    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(*self.read_at.lock())
    }
}

/// Gives found topics and misses their own lifetimes.
pub(super) struct EntryExpiry {
    /// Lifetime of a found topic without a refresh (the safety net).
    pub(super) hit: Duration,
    /// Lifetime of "no such topic".
    pub(super) miss: Duration,
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
    fn expire_after_create(&self, _: &K, value: &Entry, _: std::time::Instant) -> Option<Duration> {
        Some(self.ttl(value))
    }

    fn expire_after_update(
        &self,
        _: &K,
        value: &Entry,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }
}

/// Metadata reads made by a [`TopicService`], by cause, and the evidence it acted on. Each
/// count of reads is of metadata store calls: loading one topic costs two (the topic and its
/// partition owners), one if the topic does not exist. Management operations (create, delete,
/// partitions, configs) are admin requests and not counted here; a `CountingStore` around the
/// metadata store counts everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TopicReadCounts {
    /// Reads made while serving data-path lookups (produce, fetch, offsets, Metadata for named
    /// topics): cache misses and re-reads after evidence. Zero growth in steady state.
    pub request_path_reads: u64,
    /// Reads made listing all topics of a cluster (Metadata requests for all topics).
    pub listing_reads: u64,
    /// Reads made by the background refresher, off the request path.
    pub background_reads: u64,
    /// Cached views dropped on evidence (or by an explicit invalidation).
    pub invalidations: u64,
    /// Re-reads skipped because the topic was read less than `reread_min_interval` ago.
    pub rate_limited_rereads: u64,
}

/// The counters behind [`TopicReadCounts`]. Relaxed atomics: they order nothing; readers want
/// totals.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) request_path_reads: AtomicU64,
    pub(super) listing_reads: AtomicU64,
    pub(super) background_reads: AtomicU64,
    pub(super) invalidations: AtomicU64,
    pub(super) rate_limited: AtomicU64,
}

impl Counters {
    /// Adds `n` to one counter.
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> TopicReadCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TopicReadCounts {
            request_path_reads: get(&self.request_path_reads),
            listing_reads: get(&self.listing_reads),
            background_reads: get(&self.background_reads),
            invalidations: get(&self.invalidations),
            rate_limited_rereads: get(&self.rate_limited),
        }
    }
}

/// What a report of a stale view did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleOutcome {
    /// The view was still cached and is dropped: the next lookup re-reads the topic.
    Dropped,
    /// The cache no longer holds that view (another request's report or a change already
    /// replaced or dropped it): nothing to do, the next lookup uses whatever is there.
    AlreadyReplaced,
    /// Weak evidence about a view read less than `reread_min_interval` ago: kept.
    TooRecent,
}

impl TopicService {
    /// A storage node answered a partition routed with `seen` (a view this service handed
    /// out) with an error meaning the view is out of date (NOT_LEADER_OR_FOLLOWER,
    /// FENCED_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID). Drops the view if it
    /// is still cached, so that the requests that failed on it together cause one re-read.
    pub async fn report_stale(&self, seen: &Arc<TopicInfo>) -> StaleOutcome {
        self.drop_view(seen, None).await
    }

    /// Weaker evidence against `seen`: its owner node was unreachable or unavailable, a client
    /// knew a newer leader epoch, or the view lacks an owner. Drops the view only if the store
    /// was last read for it at least `reread_min_interval` ago, so a dead node or a confused
    /// client costs at most one topic read per interval.
    pub async fn report_suspect(&self, seen: &Arc<TopicInfo>) -> StaleOutcome {
        self.drop_view(seen, Some(self.config.reread_min_interval))
            .await
    }

    /// [`TopicService::lookup`] for a request naming `partition`: if the cached view has fewer
    /// partitions (some may have been added through another gateway), re-reads the topic, at
    /// most once per `reread_min_interval`.
    pub async fn lookup_for_partition(
        &self,
        cluster_id: Uuid,
        name: &str,
        partition: i32,
    ) -> Result<Option<Arc<TopicInfo>>, TopicError> {
        let entry = self.entry_by_name(cluster_id, name).await?;
        match entry {
            Some(c) if partition >= c.info.topic.partitions => {
                match self.report_suspect(&c.info).await {
                    StaleOutcome::TooRecent => Ok(Some(c.hit())),
                    _ => self.lookup(cluster_id, name).await,
                }
            }
            other => Ok(other.map(|c| c.hit())),
        }
    }

    /// [`TopicService::lookup_by_id`] with the partition check of
    /// [`TopicService::lookup_for_partition`].
    pub async fn lookup_by_id_for_partition(
        &self,
        cluster_id: Uuid,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<Option<Arc<TopicInfo>>, TopicError> {
        let entry = self.entry_by_id(cluster_id, topic_id).await?;
        match entry {
            Some(c) if partition >= c.info.topic.partitions => {
                match self.report_suspect(&c.info).await {
                    StaleOutcome::TooRecent => Ok(Some(c.hit())),
                    _ => self.lookup_by_id(cluster_id, topic_id).await,
                }
            }
            other => Ok(other.map(|c| c.hit())),
        }
    }

    /// Drops `seen` from both caches if it is still the cached view (and, with `min_age`, was
    /// confirmed at least that long ago). The check and the removal are one atomic step per
    /// key, serialised with loads of that key, so concurrent reports of one view drop it once.
    async fn drop_view(&self, seen: &Arc<TopicInfo>, min_age: Option<Duration>) -> StaleOutcome {
        let now = Instant::now();
        let decide = |current: Entry| match current {
            Some(c) if Arc::ptr_eq(&c.info, seen) => {
                if min_age.is_some_and(|m| c.age(now) < m) {
                    (Op::Nop, StaleOutcome::TooRecent)
                } else {
                    (Op::Remove, StaleOutcome::Dropped)
                }
            }
            _ => (Op::Nop, StaleOutcome::AlreadyReplaced),
        };
        let mut by_name = StaleOutcome::AlreadyReplaced;
        self.by_name
            .entry((seen.topic.cluster_id, seen.topic.name.clone()))
            .and_compute_with(|cur| {
                let (op, outcome) = decide(cur.and_then(|e| e.into_value()));
                by_name = outcome;
                std::future::ready(op)
            })
            .await;
        let mut by_id = StaleOutcome::AlreadyReplaced;
        self.by_id
            .entry(seen.topic.id)
            .and_compute_with(|cur| {
                let (op, outcome) = decide(cur.and_then(|e| e.into_value()));
                by_id = outcome;
                std::future::ready(op)
            })
            .await;
        let outcome = match (by_name, by_id) {
            (StaleOutcome::Dropped, _) | (_, StaleOutcome::Dropped) => {
                Counters::add(&self.counters.invalidations, 1);
                StaleOutcome::Dropped
            }
            (StaleOutcome::TooRecent, _) | (_, StaleOutcome::TooRecent) => {
                Counters::add(&self.counters.rate_limited, 1);
                StaleOutcome::TooRecent
            }
            _ => StaleOutcome::AlreadyReplaced,
        };
        debug!(topic = %seen.topic.name, ?outcome, weak = min_age.is_some(), "cached topic view reported stale");
        outcome
    }
}
