//! The background refresher: picks up changes that no request notices (configs altered through
//! another gateway) by re-reading, off the request path, the topics used since its previous
//! round.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use fjord_metadata::MetadataStore;
use futures::stream::{self, StreamExt};
use moka::ops::compute::Op;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info_span, warn, Instrument};
use uuid::Uuid;

use super::cache::{Cached, Counters, Entry};
use super::{TopicError, TopicService};

/// What one refresh round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefreshSummary {
    /// Topics re-read (those used since the previous round).
    pub read: usize,
    /// Topics whose view changed and was replaced.
    pub changed: usize,
    /// Topics that no longer exist, dropped from the cache.
    pub dropped: usize,
    /// Topics whose re-read failed; they are retried next round.
    pub failed: usize,
}

/// Stops the refresher task of [`TopicService::spawn_refresher`] when dropped.
pub struct RefresherHandle {
    task: Option<JoinHandle<()>>,
    running: Option<Arc<AtomicBool>>,
}

impl RefresherHandle {
    /// Whether this handle owns a running task (false if another handle already had one).
    pub fn is_active(&self) -> bool {
        self.task.is_some()
    }
}

impl Drop for RefresherHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(running) = self.running.take() {
            running.store(false, Ordering::Release);
        }
    }
}

impl TopicService {
    /// Starts the background refresher: every `refresh_interval` it runs
    /// [`TopicService::refresh_used`]. One refresher per service: while one runs, further calls
    /// return an inactive handle. The task holds no strong reference between rounds, so it also
    /// ends when the service is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) -> RefresherHandle {
        if self.refresher_running.swap(true, Ordering::AcqRel) {
            debug!("topic refresher already running");
            return RefresherHandle {
                task: None,
                running: None,
            };
        }
        let weak = Arc::downgrade(self);
        let period = self.config.refresh_interval;
        let task = tokio::spawn(
            async move {
                let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
                // After a stall, one round catches up; no burst of back-to-back rounds.
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let Some(svc) = weak.upgrade() else { break };
                    let summary = svc.refresh_used().await;
                    if summary.read > 0 {
                        debug!(?summary, "topic cache refreshed");
                    }
                }
            }
            .instrument(info_span!("topic_refresher")),
        );
        RefresherHandle {
            task: Some(task),
            running: Some(Arc::clone(&self.refresher_running)),
        }
    }

    /// One refresh round: re-reads every cached topic used since the previous round (at most
    /// `refresh_concurrency` at once) and swaps in views that changed. Requests keep using the
    /// old view until then. A view that a request or a change replaced meanwhile is left alone:
    /// whatever replaced it is at least as fresh.
    pub async fn refresh_used(&self) -> RefreshSummary {
        let mut used: Vec<Arc<Cached>> = Vec::new();
        // The same `Cached` sits in both caches; `take_used` clears its mark on the first
        // visit, so each view is collected once.
        for (_, entry) in self.by_id.iter() {
            if let Some(c) = entry.filter(|c| c.take_used()) {
                used.push(c);
            }
        }
        for (_, entry) in self.by_name.iter() {
            if let Some(c) = entry.filter(|c| c.take_used()) {
                used.push(c);
            }
        }
        let mut summary = RefreshSummary {
            read: used.len(),
            ..RefreshSummary::default()
        };
        let store = self.store.as_ref();
        let reads = &self.counters.background_reads;
        let mut reread = stream::iter(used)
            .map(|old| async move {
                let started = Instant::now();
                let fresh = read_by_id(store, old.info.topic.id, reads).await;
                (old, started, fresh)
            })
            .buffer_unordered(self.config.refresh_concurrency.max(1));
        while let Some((old, started, fresh)) = reread.next().await {
            match fresh {
                Ok(Some(new)) if new.info == old.info => old.confirm(started),
                Ok(Some(new)) => {
                    summary.changed += 1;
                    self.replace_view(&old, Some(new)).await;
                }
                Ok(None) => {
                    summary.dropped += 1;
                    self.replace_view(&old, None).await;
                }
                Err(e) => {
                    summary.failed += 1;
                    old.mark_used();
                    warn!(topic = %old.info.topic.name, error = %e, "topic refresh failed; retrying next round");
                }
            }
        }
        summary
    }

    /// Replaces `old` by `new` (or drops it) in both caches, where `old` is still the cached
    /// view.
    pub(super) async fn replace_view(&self, old: &Arc<Cached>, new: Entry) {
        let decide = |current: Option<Entry>| match current.flatten() {
            Some(cur) if Arc::ptr_eq(&cur, old) => match &new {
                Some(n) => Op::Put(Some(Arc::clone(n))),
                None => Op::Remove,
            },
            _ => Op::Nop,
        };
        let topic = &old.info.topic;
        self.by_name
            .entry((topic.cluster_id, topic.name.clone()))
            .and_compute_with(|cur| std::future::ready(decide(cur.map(|e| e.into_value()))))
            .await;
        self.by_id
            .entry(topic.id)
            .and_compute_with(|cur| std::future::ready(decide(cur.map(|e| e.into_value()))))
            .await;
    }
}

/// Reads a topic and its owners by id, counting each store call in `reads`.
async fn read_by_id(
    store: &dyn MetadataStore,
    topic_id: Uuid,
    reads: &AtomicU64,
) -> Result<Entry, TopicError> {
    Counters::add(reads, 1);
    let topic = store.get_topic_by_id(topic_id).await?;
    TopicService::load(store, topic, reads).await
}

/// [`read_by_id`] as a refresh round does it, for tests that interleave a round by hand.
#[cfg(test)]
pub(super) async fn read_by_id_for_tests(
    svc: &TopicService,
    topic_id: Uuid,
) -> Result<Entry, TopicError> {
    read_by_id(svc.store.as_ref(), topic_id, &svc.counters.background_reads).await
}
