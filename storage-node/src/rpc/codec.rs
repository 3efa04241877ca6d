//! Byte layout of node RPC messages.
//!
//! A request stream carries one [`Request`] encoded with `postcard`, then the sender finishes
//! the stream. The response stream carries one byte of status (0 = the call returned a value,
//! 1 = it failed with a [`NodeError`]) followed by the postcard encoding of that value.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::api::*;

/// A call to a node.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// [`NodeApi::produce`].
    Produce(ProduceRequest),
    /// [`NodeApi::fetch`].
    Fetch(FetchRequest),
    /// [`NodeApi::list_offsets`].
    ListOffsets(ListOffsetsRequest),
    /// [`NodeApi::delete_records`].
    DeleteRecords(DeleteRecordsRequest),
    /// [`NodeApi::group`].
    Group(GroupRequest),
}

const OK: u8 = 0;
const ERR: u8 = 1;

/// Encodes a request.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, NodeError> {
    postcard::to_allocvec(req).map_err(|e| NodeError::InvalidRequest(format!("encode: {e}")))
}

/// Decodes a request.
pub fn decode_request(bytes: &[u8]) -> Result<Request, NodeError> {
    postcard::from_bytes(bytes).map_err(|e| NodeError::InvalidRequest(format!("decode: {e}")))
}

/// Encodes the outcome of a call.
pub fn encode_response<T: Serialize>(outcome: &Result<T, NodeError>) -> Vec<u8> {
    let (status, body) = match outcome {
        Ok(v) => (OK, postcard::to_allocvec(v)),
        Err(e) => (ERR, postcard::to_allocvec(e)),
    };
    match body {
        Ok(mut body) => {
            body.insert(0, status);
            body
        }
        // Encoding our own plain-data types cannot fail short of a serde bug; report it as an
        // internal error instead of panicking.
        Err(e) => {
            let err = NodeError::Internal(format!("encode response: {e}"));
            let mut body = postcard::to_allocvec(&err).unwrap_or_default();
            body.insert(0, ERR);
            body
        }
    }
}

/// Decodes the outcome of a call.
pub fn decode_response<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, NodeError> {
    let Some((&status, body)) = bytes.split_first() else {
        return Err(NodeError::Unreachable("empty response from node".into()));
    };
    let bad =
        |e: postcard::Error| NodeError::Unreachable(format!("undecodable node response: {e}"));
    match status {
        OK => postcard::from_bytes(body).map_err(bad),
        ERR => Err(postcard::from_bytes::<NodeError>(body).map_err(bad)?),
        other => Err(NodeError::Unreachable(format!(
            "unknown response status {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn round_trips_requests_and_outcomes() {
        let req = Request::Group(GroupRequest {
            cluster_id: uuid::Uuid::nil(),
            api_key: 11,
            api_version: 7,
            body: Bytes::from_static(b"abc"),
            client_id: "app-1".into(),
            client_host: "/10.0.0.7".into(),
        });
        let back = decode_request(&encode_request(&req).unwrap()).unwrap();
        assert!(matches!(
            back,
            Request::Group(g) if g.body == Bytes::from_static(b"abc")
                && g.client_id == "app-1"
                && g.client_host == "/10.0.0.7"
        ));

        let ok: Result<GroupResponse, NodeError> = Ok(GroupResponse {
            body: Bytes::from_static(b"x"),
        });
        let got: GroupResponse = decode_response(&encode_response(&ok)).unwrap();
        assert_eq!(got.body, Bytes::from_static(b"x"));

        let err: Result<GroupResponse, NodeError> = Err(NodeError::Unavailable("down".into()));
        let got = decode_response::<GroupResponse>(&encode_response(&err)).unwrap_err();
        assert_eq!(got, NodeError::Unavailable("down".into()));
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..64u8 {
            let junk: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(len))
                .collect();
            let _ = decode_request(&junk);
            let _ = decode_response::<FetchResponse>(&junk);
        }
    }
}
