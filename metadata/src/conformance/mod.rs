//! The behaviour every [`MetadataStore`] backend must show, as a test suite any backend runs
//! (enabled by the `conformance` cargo feature).
//!
//! ```no_run
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! use fjord_metadata::{conformance, MetadataStore, SqliteStore};
//!
//! # async fn example(dir: &std::path::Path) {
//! // In a `#[tokio::test(flavor = "multi_thread")]`:
//! let n = AtomicUsize::new(0);
//! conformance::run_all(|| {
//!     let path = dir.join(format!("{}.sqlite", n.fetch_add(1, Ordering::Relaxed)));
//!     async move { Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn MetadataStore> }
//! })
//! .await;
//! # }
//! ```
//!
//! [`run_all`] gives every case a fresh, empty store from the factory; [`run_shared`] takes two
//! handles on the *same* backend (two processes' views of one SQLite file, two DynamoDB clients)
//! and checks that conditional writes stay atomic between them. [`CASES`] and [`SHARED_CASES`]
//! list the cases, for a backend that prefers one `#[test]` per case. A failing case panics with
//! the case's name and what it expected.
//!
//! [`moto`] starts a local moto server, for tests against real DynamoDB and S3 endpoints.
//!
//! Error contract checked here, beyond the trait docs: conditional failures are
//! [`MetadataError::Conflict`] whose message names the stored and the offered epoch or version;
//! a node's fenced write (`commit_manifest`, `advance_log_start`) to a partition with no owner
//! row (topic deleted) is a `Conflict` too, while `claim_partition` of one is `NotFound`; records the store refuses (a manifest
//! entry for another partition, an empty range, a non-positive id count) are
//! [`MetadataError::InvalidArgument`].

mod access;
mod fixtures;
mod groups;
pub mod moto;
mod ownership;
mod shared;
mod tenants;
mod tiered;
mod topics;

use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::sync::Arc;

use crate::{MetadataError, MetadataStore};

/// A store under test.
pub type Store = Arc<dyn MetadataStore>;

/// The future a case returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One conformance case on a fresh store.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Name, for reports.
    pub name: &'static str,
    /// Runs the case; panics on a violation.
    pub run: fn(Store) -> CaseFuture,
}

/// One conformance case on two handles of one backend.
#[derive(Clone, Copy, Debug)]
pub struct SharedCase {
    /// Name, for reports.
    pub name: &'static str,
    /// Runs the case with handles `a` and `b`; panics on a violation.
    pub run: fn(Store, Store) -> CaseFuture,
}

macro_rules! case {
    ($module:ident :: $name:ident) => {
        Case {
            name: concat!(stringify!($module), "::", stringify!($name)),
            run: |s| Box::pin($module::$name(s)),
        }
    };
}

macro_rules! shared_case {
    ($name:ident) => {
        SharedCase {
            name: concat!("shared::", stringify!($name)),
            run: |a, b| Box::pin(shared::$name(a, b)),
        }
    };
}

/// Every single-store case, run by [`run_all`].
pub const CASES: &[Case] = &[
    case!(tenants::accounts),
    case!(tenants::clusters),
    case!(tenants::access_keys),
    case!(access::principals),
    case!(access::auth_epoch_follows_key_changes),
    case!(access::cluster_delete_and_settings),
    case!(access::acls),
    case!(access::usage),
    case!(topics::create_get_list),
    case!(topics::create_validates_owners),
    case!(topics::update_versions),
    case!(topics::delete_removes_everything),
    case!(ownership::claim_fencing),
    case!(ownership::concurrent_claims),
    case!(ownership::nodes),
    case!(ownership::gateways),
    case!(tiered::commit_fenced),
    case!(tiered::commit_all_or_nothing),
    case!(tiered::manifest_ordering_and_references),
    case!(tiered::manifest_validation),
    case!(tiered::snapshots_replaced),
    case!(tiered::advance_log_start),
    case!(tiered::long_history),
    case!(groups::offsets),
    case!(groups::producer_ids_sequential),
    case!(groups::producer_ids_concurrent),
];

/// Every two-handle case, run by [`run_shared`].
pub const SHARED_CASES: &[SharedCase] = &[
    shared_case!(writes_visible),
    shared_case!(racing_claims),
    shared_case!(racing_producer_ids),
    shared_case!(fenced_commit),
    shared_case!(gateways_visible),
];

/// Runs every case of [`CASES`], each on a fresh store from `make_store`. Needs a tokio runtime
/// (multi-threaded, so the concurrency cases really overlap).
pub async fn run_all<F, Fut>(mut make_store: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Store>,
{
    for case in CASES {
        let store = make_store().await;
        run_case(case.name, (case.run)(store)).await;
    }
}

/// Runs every case of [`SHARED_CASES`]; `make_pair` returns two handles on one fresh, empty
/// backend (e.g. two `SqliteStore`s opened on one new file).
pub async fn run_shared<F, Fut>(mut make_pair: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (Store, Store)>,
{
    for case in SHARED_CASES {
        let (a, b) = make_pair().await;
        run_case(case.name, (case.run)(a, b)).await;
    }
}

/// Runs one case on its own task so a panic is caught, reported with the case's name, and
/// re-raised for the test harness.
pub async fn run_case(name: &str, fut: CaseFuture) {
    tracing::info!(case = name, "metadata conformance case");
    if let Err(e) = tokio::spawn(fut).await {
        eprintln!("metadata conformance case `{name}` failed");
        match e.try_into_panic() {
            Ok(panic) => resume_unwind(panic),
            Err(e) => panic!("metadata conformance case `{name}` did not finish: {e}"),
        }
    }
}

/// Asserts a [`MetadataError::Conflict`] whose message contains every one of `needles`.
#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, MetadataError>, needles: &[&str]) {
    match r {
        Err(MetadataError::Conflict(msg)) => {
            for n in needles {
                assert!(
                    msg.contains(n),
                    "conflict message {msg:?} should mention {n:?}"
                );
            }
        }
        other => panic!("expected Conflict mentioning {needles:?}, got {other:?}"),
    }
}

/// Asserts `AlreadyExists` of the given kind.
#[track_caller]
fn assert_already_exists<T: std::fmt::Debug>(r: Result<T, MetadataError>, want: &str) {
    match r {
        Err(MetadataError::AlreadyExists { kind, .. }) if kind.starts_with(want) => {}
        other => panic!("expected AlreadyExists({want}), got {other:?}"),
    }
}

/// Asserts `NotFound` of the given kind.
#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, MetadataError>, want: &str) {
    match r {
        Err(MetadataError::NotFound { kind, .. }) if kind == want => {}
        other => panic!("expected NotFound({want}), got {other:?}"),
    }
}

/// Asserts `InvalidArgument`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, MetadataError>) {
    match r {
        Err(MetadataError::InvalidArgument(_)) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}
