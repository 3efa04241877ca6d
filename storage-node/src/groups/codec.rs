//! Decoding request bodies and encoding response bodies with the `kafka-protocol` crate.

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

use crate::api::NodeError;

/// Decodes a request body of type `T` at `version`, refusing versions outside the crate's
/// range. Trailing bytes are tolerated, as the Java broker does.
pub(crate) fn decode<T: Decodable + Message>(body: &Bytes, version: i16) -> Result<T, NodeError> {
    if version < T::VERSIONS.min || version > T::VERSIONS.max {
        return Err(NodeError::InvalidRequest(format!(
            "unsupported version {version} of {}",
            std::any::type_name::<T>()
        )));
    }
    let mut buf = body.clone();
    T::decode(&mut buf, version).map_err(|e| {
        NodeError::InvalidRequest(format!(
            "cannot decode {} v{version}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// Encodes a response body at `version`.
pub(crate) fn encode<T: Encodable>(msg: &T, version: i16) -> Result<Bytes, NodeError> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version).map_err(|e| {
        // Only a bug here can produce a response the version cannot carry.
        NodeError::Internal(format!(
            "cannot encode {} v{version}: {e}",
            std::any::type_name::<T>()
        ))
    })?;
    Ok(buf.freeze())
}

/// A wire string from an owned one.
pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// An owned string from a wire string.
pub(crate) fn st(s: &StrBytes) -> String {
    s.to_string()
}
