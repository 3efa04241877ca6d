//! A partition lost to a deleted topic is routine (INFO, UNKNOWN_TOPIC_OR_PARTITION); one taken
//! over by another node is not (WARN, NOT_LEADER_OR_FOLLOWER).
//!
//! Logs are captured by one process-wide subscriber that records only on threads with an open
//! capture (tokio tests run on the test's own thread). Per-test `set_default` subscribers are
//! not enough: while one is the only live dispatcher, tracing-core computes a callsite's interest
//! from whichever thread registers it first, so another test hitting the same `info!` first
//! disables it for everyone.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata, Subscriber};

use crate::partition::codes::{NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION};
use crate::tests::{batch, Harness, LIMITS};

/// (level, target, message with its fields).
type Line = (Level, String, String);

thread_local! {
    static CAPTURED: RefCell<Option<Vec<Line>>> = const { RefCell::new(None) };
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

struct Recorder;

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        CAPTURED.with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                if let Some(lines) = c.as_mut() {
                    let mut text = Text(String::new());
                    event.record(&mut text);
                    let m = event.metadata();
                    lines.push((*m.level(), m.target().to_string(), text.0));
                }
            }
        });
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Runs `f` to completion on this thread and returns what it logged.
async fn captured<F: std::future::Future>(f: F) -> (F::Output, Logs) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Recorder)
            .expect("no other test in this crate installs a global subscriber");
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f.await;
    let lines = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, Logs(lines))
}

struct Logs(Vec<Line>);

impl Logs {
    fn has(&self, level: Level, target: &str, text: &str) -> bool {
        self.0
            .iter()
            .any(|(l, t, m)| *l == level && t == target && m.contains(text))
    }

    fn warnings(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(l, ..)| *l <= Level::WARN)
            .map(|(_, t, m)| format!("{t}: {m}"))
            .collect()
    }
}

const TIERING: &str = "fjord_storage_node::tiering";
const NODE: &str = "fjord_storage_node::node";

#[tokio::test]
async fn commit_for_a_deleted_topic_fences_at_info() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    h.produce(&node, 0, batch(&["a"], 1, None), LIMITS).await;
    h.store.delete_topic(h.topic).await.unwrap();

    let (round, logs) = captured(node.tier_round(&mut None)).await;
    round.unwrap();

    assert!(
        logs.has(Level::INFO, TIERING, "no longer exists (topic deleted)"),
        "{:?}",
        logs.0
    );
    assert!(logs.has(Level::INFO, NODE, "partition fenced"));
    assert_eq!(logs.warnings(), Vec::<String>::new());
    assert!(node.loaded_partitions().is_empty());
    node.shutdown().await;
}

#[tokio::test]
async fn commit_for_a_partition_taken_over_warns() {
    let h = Harness::new(1, &[]).await;
    let node = h.open(h.config()).await;
    h.produce(&node, 0, batch(&["a"], 1, None), LIMITS).await;
    h.store.claim_partition(h.topic, 0, "n2", 3).await.unwrap();

    let (round, logs) = captured(node.tier_round(&mut None)).await;
    round.unwrap();

    assert!(
        logs.has(Level::WARN, TIERING, "manifest commit conflict"),
        "{:?}",
        logs.0
    );
    assert!(logs.has(Level::INFO, NODE, "partition fenced"));
    assert!(node.loaded_partitions().is_empty());
    node.shutdown().await;
}

/// Retention and DeleteRecords raise the log start under the same fencing; the error code tells
/// their callers (and the client) which of the two happened.
#[tokio::test]
async fn advance_log_start_tells_deletion_from_takeover() {
    for deleted in [true, false] {
        let h = Harness::new(1, &[]).await;
        let node = h.open(h.config()).await;
        h.produce(&node, 0, batch(&["a", "b"], 1, None), LIMITS)
            .await;
        node.tier_round(&mut None).await.unwrap();
        let p = node.loaded_partitions().pop().unwrap();
        if deleted {
            h.store.delete_topic(h.topic).await.unwrap();
        } else {
            h.store.claim_partition(h.topic, 0, "n2", 3).await.unwrap();
        }
        let (code, msg) = node.advance_log_start(&p, 1).await.unwrap_err();
        let want = if deleted {
            UNKNOWN_TOPIC_OR_PARTITION
        } else {
            NOT_LEADER_OR_FOLLOWER
        };
        assert_eq!(code, want, "deleted={deleted}: {msg}");
        assert!(p.state.lock().fenced);
        node.shutdown().await;
    }
}
