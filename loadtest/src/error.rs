//! The harness's one error type.

use std::path::PathBuf;

/// Why a load test could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadtestError {
    /// A workload file could not be read.
    #[error("cannot read workload {path}: {source}")]
    ReadWorkload {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A workload file is not valid YAML of the expected shape.
    #[error("workload {path} is malformed: {source}")]
    ParseWorkload {
        /// The file.
        path: PathBuf,
        /// The YAML error.
        source: serde_yaml::Error,
    },
    /// A workload parsed but its values make no sense.
    #[error("invalid workload: {0}")]
    InvalidWorkload(String),
    /// Connection flags are inconsistent or credentials are missing.
    #[error("connection settings: {0}")]
    Config(String),
    /// The credentials file could not be read.
    #[error("cannot read credentials file {path}: {source}")]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// librdkafka refused a configuration or an operation.
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The admin connection (topic creation, idle connections) failed.
    #[error("admin connection to {addr}: {message}")]
    Admin {
        /// The broker address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The broker refused to create a topic.
    #[error("creating topic {topic}: error code {code}: {message}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The Kafka error code.
        code: i16,
        /// The broker's message.
        message: String,
    },
    /// Writing a result file failed.
    #[error("cannot write {path}: {source}")]
    WriteResult {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The run did not become ready (consumers not assigned, topics missing) in time.
    #[error("{0}")]
    NotReady(String),
}
