//! The error type of the metadata layer.

/// Why a metadata operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The object to create exists already (topic name, access key id, cluster name, ...).
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// What kind of object (e.g. "topic").
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// The object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What kind of object (e.g. "topic").
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A conditional write lost: somebody else changed the object first (e.g. a newer epoch
    /// owns the partition). The caller must re-read and decide again; it must not retry blindly.
    #[error("conditional write failed: {0}")]
    Conflict(String),
    /// The backend failed (I/O, SQL, network). Possibly transient.
    #[error("metadata backend error: {0}")]
    Backend(String),
    /// A stored record could not be decoded (corruption or a version skew).
    #[error("stored metadata record is invalid: {0}")]
    Corrupt(String),
    /// The caller passed a record the store refuses to keep (e.g. a manifest entry for another
    /// partition than the one it is committed under, or an empty offset range). A caller bug,
    /// not a transient failure.
    #[error("invalid metadata request: {0}")]
    InvalidArgument(String),
}

impl From<rusqlite::Error> for MetadataError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            // A column that does not decode means the stored row is bad, not that SQLite failed.
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => MetadataError::Corrupt(e.to_string()),
            other => MetadataError::Backend(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for MetadataError {
    fn from(e: serde_json::Error) -> Self {
        MetadataError::Corrupt(e.to_string())
    }
}

/// Result alias of this layer.
pub type Result<T, E = MetadataError> = std::result::Result<T, E>;
