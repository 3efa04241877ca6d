//! Kafka framing without sockets: the fixed request prefix, and response frames
//! (size + header + body).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::error::ConnectionError;

/// The fields every request header starts with, whatever its version: read without the
/// header decoder, which slices without checking lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// Raw API key.
    pub api_key: i16,
    /// API version.
    pub api_version: i16,
    /// Correlation id echoed in the response.
    pub correlation_id: i32,
}

impl Prefix {
    /// Reads the prefix of a frame body (the bytes after the size).
    pub fn parse(frame: &[u8]) -> Result<Self, ConnectionError> {
        match frame {
            [k0, k1, v0, v1, c0, c1, c2, c3, ..] => Ok(Self {
                api_key: i16::from_be_bytes([*k0, *k1]),
                api_version: i16::from_be_bytes([*v0, *v1]),
                correlation_id: i32::from_be_bytes([*c0, *c1, *c2, *c3]),
            }),
            _ => Err(ConnectionError::Truncated(frame.len())),
        }
    }
}

/// The response header version of `api` at `version` (ApiVersions always uses v0 so that a
/// client that sent a version we do not know can still read the answer).
pub fn response_header_version(api: ApiKey, version: i16) -> i16 {
    if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    }
}

/// Encodes a complete response frame: size, header, body at `version`.
pub fn encode_response<M: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &M,
) -> Result<Bytes, ConnectionError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = response_header_version(api, version);
    let enc = |e: anyhow::Error| ConnectionError::Encode(format!("{api:?} v{version}: {e}"));
    let size = header.compute_size(header_version).map_err(enc)?
        + body.compute_size(version).map_err(enc)?;
    let size_i32 = i32::try_from(size)
        .map_err(|_| ConnectionError::Encode(format!("{api:?} response of {size} bytes")))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size_i32);
    header.encode(&mut buf, header_version).map_err(enc)?;
    body.encode(&mut buf, version).map_err(enc)?;
    Ok(buf.freeze())
}

/// Frames a response body that is already encoded (group responses from the coordinator).
pub fn encode_raw_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &[u8],
) -> Result<Bytes, ConnectionError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = response_header_version(api, version);
    let enc = |e: anyhow::Error| ConnectionError::Encode(format!("{api:?} v{version}: {e}"));
    let size = header.compute_size(header_version).map_err(enc)? + body.len();
    let size_i32 = i32::try_from(size)
        .map_err(|_| ConnectionError::Encode(format!("{api:?} response of {size} bytes")))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size_i32);
    header.encode(&mut buf, header_version).map_err(enc)?;
    buf.put_slice(body);
    Ok(buf.freeze())
}

/// The answer to a request at a version (or of an API) we do not serve, other than
/// ApiVersions: there is no common response layout to put an error in, so this is the
/// correlation id and the UNSUPPORTED_VERSION code (the first field of ApiVersions v0), after
/// which the connection is closed, as a Kafka broker does.
pub fn unsupported_frame(correlation_id: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(10);
    buf.put_i32(6);
    buf.put_i32(correlation_id);
    buf.put_i16(kafka_protocol::ResponseError::UnsupportedVersion.code());
    buf.freeze()
}
