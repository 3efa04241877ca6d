//! Which requests of one connection may run at the same time.
//!
//! A Kafka connection answers in request order, and a broker applies a connection's requests in
//! order. Apache Kafka gets both by reading nothing more until a request is answered; that costs
//! nothing when a request takes microseconds, but here a produce is answered only after the
//! fsync that covers it. librdkafka sends one partition per produce request and keeps up to five
//! in flight, so a connection that served one request at a time would pay a whole round trip
//! to the node and an fsync per partition, one after another: a producer writing to eight
//! partitions got at most ~600 requests/s and latencies of seconds at 2 MB/s.
//!
//! So produce requests are pipelined: the connection keeps reading while earlier ones wait for
//! their fsync, and concurrent ones share it through the WAL's group commit. Order is kept
//! where Kafka promises it: responses go out in request order, and a produce that names a
//! partition some earlier produce of the same connection is still writing starts only once that
//! one is answered (per-partition order is what idempotent producers' sequence numbers check),
//! while produces to other partitions go ahead. Every other
//! request is a barrier: it runs alone after all earlier ones are answered, so requests that
//! change the connection (SASL) or read what an earlier request wrote (Fetch, ListOffsets,
//! OffsetCommit after a produce) see the connection's earlier requests done.

use std::collections::HashMap;

use crate::frame::Prefix;
use bytes::Bytes;
use futures::future::{FutureExt, Shared};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use tokio::sync::oneshot;

/// Requests of one connection in progress at once, at most. librdkafka keeps at most five
/// produce requests in flight per broker (with idempotence; more without), so this never holds
/// a well-behaved client back while bounding what one connection can queue on the gateway.
pub const MAX_IN_FLIGHT: usize = 32;

/// Bytes of produce requests of one connection in progress at once, at most: a connection
/// stops reading once its requests in flight hold this much (a single larger request still
/// runs, alone).
pub const MAX_IN_FLIGHT_BYTES: usize = 32 << 20;

/// A partition as a produce request names it: topic name bytes and partition index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionRef {
    /// The topic's name as sent (a slice of the frame, not a copy).
    pub topic: Bytes,
    /// The partition index.
    pub partition: i32,
}

/// The partitions a produce frame writes to, or `None` when the frame is not a produce or does
/// not parse (then it runs as a barrier and its handler gives the error). Walks the frame with
/// the quota's [`crate::quota::wire::produce_partitions`] rather than decoding it.
pub fn produce_partitions(frame: &Bytes) -> Option<Vec<PartitionRef>> {
    let prefix = Prefix::parse(frame).ok()?;
    let api = ApiKey::try_from(prefix.api_key).ok()?;
    if api != ApiKey::Produce || !crate::versions::is_supported(api, prefix.api_version) {
        return None;
    }
    let version = prefix.api_version;
    let mut body = frame.clone();
    RequestHeader::decode(&mut body, api.request_header_version(version)).ok()?;
    let mut parts = Vec::new();
    crate::quota::wire::produce_partitions(&body, version, |topic, partition, _| {
        parts.push(PartitionRef {
            topic: body.slice_ref(topic),
            partition,
        });
    })?;
    Some(parts)
}

/// Resolves once an earlier produce of the connection has been answered (or dropped).
pub type Done = Shared<oneshot::Receiver<()>>;

/// The last produce in flight on each partition of one connection, so that a produce to the
/// same partition starts only after it.
#[derive(Debug, Default)]
pub struct Writing {
    next_id: u64,
    last: HashMap<PartitionRef, (u64, Done)>,
}

/// A produce's place in [`Writing`]: what it waits for and what it signals.
#[derive(Debug)]
pub struct Turn {
    /// Identifies the produce for [`Writing::finish`].
    pub id: u64,
    /// The earlier produces on the same partitions; start after all of them.
    pub after: Vec<Done>,
    /// Dropped (or sent) when the produce is answered, which releases the next ones.
    pub done: oneshot::Sender<()>,
}

impl Writing {
    /// Registers a produce to `parts` as the last one on each of them.
    pub fn start(&mut self, parts: &[PartitionRef]) -> Turn {
        let id = self.next_id;
        self.next_id += 1;
        let (done, rx) = oneshot::channel();
        let rx = rx.shared();
        let mut after: Vec<Done> = Vec::new();
        for p in parts {
            if let Some((prev, d)) = self.last.insert(p.clone(), (id, rx.clone())) {
                // A produce naming the partition twice must not wait for itself.
                if prev != id && !after.iter().any(|a| a.ptr_eq(&d)) {
                    after.push(d);
                }
            }
        }
        Turn { id, after, done }
    }

    /// Forgets produce `id` on the partitions where no later produce followed it.
    pub fn finish(&mut self, id: u64, parts: &[PartitionRef]) {
        for p in parts {
            if self.last.get(p).is_some_and(|(last, _)| *last == id) {
                self.last.remove(p);
            }
        }
    }

    /// Partitions with a produce in flight.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether no produce is in flight.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::MetadataRequest;
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use uuid::Uuid;

    use super::*;

    fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn produce(version: i16, topics: &[(&str, Uuid, &[i32])]) -> Bytes {
        let topic_data = topics
            .iter()
            .map(|(name, id, parts)| {
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string((*name).to_owned())))
                    .with_topic_id(*id)
                    .with_partition_data(
                        parts
                            .iter()
                            .map(|i| {
                                PartitionProduceData::default()
                                    .with_index(*i)
                                    .with_records(Some(Bytes::from_static(b"batch")))
                            })
                            .collect(),
                    )
            })
            .collect();
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(1000)
            .with_topic_data(topic_data);
        frame(ApiKey::Produce, version, &req)
    }

    fn named(t: &str, p: i32) -> PartitionRef {
        PartitionRef {
            topic: Bytes::copy_from_slice(t.as_bytes()),
            partition: p,
        }
    }

    #[test]
    fn names_the_partitions_of_a_produce() {
        let f = produce(9, &[("a", Uuid::nil(), &[0, 3]), ("b", Uuid::nil(), &[1])]);
        assert_eq!(
            produce_partitions(&f).unwrap(),
            [named("a", 0), named("a", 3), named("b", 1)]
        );
    }

    #[test]
    fn produce_v13_is_not_pipelined() {
        // Not advertised (topics by id): the frame runs as a barrier and its handler refuses it.
        assert!(!crate::versions::is_supported(ApiKey::Produce, 13));
        let id = Uuid::from_u128(42);
        assert_eq!(produce_partitions(&produce(13, &[("", id, &[2])])), None);
    }

    #[test]
    fn other_requests_and_garbage_are_barriers() {
        let md = frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        assert_eq!(produce_partitions(&md), None);
        let mut cut = BytesMut::from(&produce(9, &[("a", Uuid::nil(), &[0])])[..]);
        cut.truncate(cut.len() - 3);
        assert_eq!(produce_partitions(&cut.freeze()), None);
        let mut junk = BytesMut::new();
        junk.put_i16(0);
        junk.put_i16(9);
        assert_eq!(produce_partitions(&junk.freeze()), None);
    }

    #[tokio::test]
    async fn a_produce_waits_only_for_earlier_ones_on_its_partitions() {
        let mut w = Writing::default();
        let first = w.start(&[named("a", 0), named("a", 1)]);
        assert!(first.after.is_empty());
        let other = w.start(&[named("b", 0)]);
        assert!(other.after.is_empty(), "another partition goes ahead");
        let second = w.start(&[named("a", 1), named("a", 1), named("b", 0)]);
        assert_eq!(
            second.after.len(),
            2,
            "after `first` (a-1) and `other` (b-0), once each"
        );
        let waits = futures::future::join_all(second.after);
        tokio::pin!(waits);
        assert!(futures::poll!(&mut waits).is_pending());
        w.finish(first.id, &[named("a", 0), named("a", 1)]);
        drop(first.done);
        assert!(
            futures::poll!(&mut waits).is_pending(),
            "b-0 still in flight"
        );
        w.finish(other.id, &[named("b", 0)]);
        drop(other.done);
        assert!(futures::poll!(&mut waits).is_ready());
        // a-0 was only `first`'s: forgotten. a-1 and b-0 are now `second`'s.
        assert_eq!(w.len(), 2);
        w.finish(second.id, &[named("a", 1), named("b", 0)]);
        assert!(w.is_empty());
    }
}
