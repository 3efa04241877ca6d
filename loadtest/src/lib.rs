//! fjord-loadtest: an OpenMessaging-Benchmark-style load generator for any Kafka endpoint.
//!
//! Layout:
//! - [`workload`]: the workload file format (OMB's YAML shape plus a few extensions).
//! - [`connection`]: bootstrap / security protocol / SASL flags, credentials (environment or an
//!   AWS shared-credentials file), and librdkafka client contexts that mint MSK IAM tokens.
//! - [`admin`]: topic creation over a raw Kafka connection, and idle connections.
//! - [`clients`]: librdkafka contexts (tokens, acknowledgements, assignment).
//! - [`payload`]: message payloads carrying their send timestamp.
//! - [`procstat`]: the server process's memory and CPU, read from `/proc` when it is local.
//! - [`stats`]: counters and HdrHistograms shared by producers and consumers.
//! - [`catchup`]: the catch-up figure of a backlog workload (time and rate to read it).
//! - [`findmax`]: `--find-max`, a bisection over producer rates.
//! - [`runner`]: producer and consumer threads, warm-up, the measured window.
//! - [`report`]: the progress line, the final table, the JSON and HTML result files.

pub mod admin;
pub mod catchup;
pub mod clients;
pub mod connection;
pub mod error;
pub mod findmax;
pub mod payload;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod stats;
pub mod workload;

pub use error::LoadtestError;
