#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;
use crate::frame::{encode_response, response_header_version};

const MARK: i32 = 0x0102_0304;

/// Encodes a response of `api` at `version` with throttle_time_ms = MARK, or `None` for APIs
/// whose response has no such field.
fn marked(api: ApiKey, v: i16) -> Option<Bytes> {
    macro_rules! enc {
        ($ty:ty) => {
            encode_response(api, v, 7, &<$ty>::default().with_throttle_time_ms(MARK)).unwrap()
        };
    }
    Some(match api {
        ApiKey::Produce => {
            let part = PartitionProduceResponse::default().with_index(3);
            let topic = TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_responses(vec![part]);
            let resp = ProduceResponse::default()
                .with_responses(vec![topic])
                .with_throttle_time_ms(MARK);
            encode_response(api, v, 7, &resp).unwrap()
        }
        ApiKey::Fetch => enc!(FetchResponse),
        ApiKey::ListOffsets => enc!(ListOffsetsResponse),
        ApiKey::Metadata => enc!(MetadataResponse),
        ApiKey::OffsetCommit => enc!(OffsetCommitResponse),
        ApiKey::OffsetFetch => enc!(OffsetFetchResponse),
        ApiKey::FindCoordinator => enc!(FindCoordinatorResponse),
        ApiKey::JoinGroup => {
            let resp = JoinGroupResponse::default()
                .with_protocol_name(Some(StrBytes::default()))
                .with_throttle_time_ms(MARK);
            encode_response(api, v, 7, &resp).unwrap()
        }
        ApiKey::Heartbeat => enc!(HeartbeatResponse),
        ApiKey::LeaveGroup => enc!(LeaveGroupResponse),
        ApiKey::SyncGroup => enc!(SyncGroupResponse),
        ApiKey::DescribeGroups => enc!(DescribeGroupsResponse),
        ApiKey::ListGroups => enc!(ListGroupsResponse),
        ApiKey::CreateTopics => enc!(CreateTopicsResponse),
        ApiKey::DeleteTopics => enc!(DeleteTopicsResponse),
        ApiKey::DeleteRecords => enc!(DeleteRecordsResponse),
        ApiKey::InitProducerId => enc!(InitProducerIdResponse),
        ApiKey::OffsetForLeaderEpoch => enc!(OffsetForLeaderEpochResponse),
        ApiKey::DescribeConfigs => enc!(DescribeConfigsResponse),
        ApiKey::AlterConfigs => enc!(AlterConfigsResponse),
        ApiKey::CreatePartitions => enc!(CreatePartitionsResponse),
        ApiKey::DeleteGroups => enc!(DeleteGroupsResponse),
        ApiKey::IncrementalAlterConfigs => enc!(IncrementalAlterConfigsResponse),
        ApiKey::DescribeCluster => enc!(DescribeClusterResponse),
        ApiKey::CreateAcls => enc!(CreateAclsResponse),
        ApiKey::DescribeAcls => enc!(DescribeAclsResponse),
        ApiKey::DeleteAcls => enc!(DeleteAclsResponse),
        _ => return None,
    })
}

#[test]
fn throttle_slot_is_found_in_every_answered_response() {
    let mut apis: Vec<(ApiKey, i16, i16)> = crate::versions::all()
        .into_iter()
        .map(|(api, r)| (api, r.min, r.max))
        .collect();
    // The ACL APIs, whichever versions end up answered.
    for api in [ApiKey::CreateAcls, ApiKey::DescribeAcls, ApiKey::DeleteAcls] {
        let r = api.valid_versions();
        apis.push((api, r.min, r.max));
    }
    let mut checked = 0;
    for (api, min, max) in apis {
        for v in min..=max {
            let hv = response_header_version(api, v);
            let Some(frame) = marked(api, v) else {
                assert!(
                    matches!(
                        api,
                        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
                    ),
                    "{api:?} has no test response"
                );
                continue;
            };
            let field_exists = frame.windows(4).any(|w| w == MARK.to_be_bytes());
            match throttle_offset(api, v, hv, &frame) {
                Some(at) => {
                    assert_eq!(&frame[at..at + 4], MARK.to_be_bytes(), "{api:?} v{v}");
                    let mut f = frame.to_vec();
                    raise_throttle(&mut f, at, 5);
                    assert_eq!(&f[at..at + 4], MARK.to_be_bytes(), "never lowered");
                    raise_throttle(&mut f, at, MARK + 1);
                    assert_eq!(&f[at..at + 4], (MARK + 1).to_be_bytes());
                    checked += 1;
                }
                None => assert!(!field_exists, "{api:?} v{v} has the field but no slot"),
            }
        }
    }
    assert!(checked > 100, "only {checked} versions checked");
}

fn produce(v: i16, topics: &[(&str, &[(i32, usize)])]) -> Vec<u8> {
    let topic_data = topics
        .iter()
        .map(|(name, parts)| {
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partition_data(
                    parts
                        .iter()
                        .map(|(i, n)| {
                            PartitionProduceData::default()
                                .with_index(*i)
                                .with_records(Some(Bytes::from(vec![7u8; *n])))
                        })
                        .collect(),
                )
        })
        .collect();
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(topic_data);
    let mut buf = bytes::BytesMut::new();
    req.encode(&mut buf, v).unwrap();
    buf.to_vec()
}

#[test]
fn produce_partitions_are_read_at_every_version() {
    let topics: &[(&str, &[(i32, usize)])] = &[("alpha", &[(0, 10), (5, 300)]), ("b", &[(2, 0)])];
    for v in 3..=12 {
        let body = produce(v, topics);
        let mut seen = Vec::new();
        let ok = produce_partitions(&body, v, |t, p, n| {
            seen.push((String::from_utf8(t.to_vec()).unwrap(), p, n))
        });
        assert_eq!(ok, Some(()), "v{v}");
        assert_eq!(
            seen,
            [
                ("alpha".into(), 0, 10),
                ("alpha".into(), 5, 300),
                ("b".into(), 2, 0)
            ],
            "v{v}"
        );
        // Truncated bodies are refused without panicking.
        for n in 0..body.len() {
            let _ = produce_partitions(&body[..n], v, |_, _, _| {});
        }
        assert_eq!(
            produce_partitions(&body[..body.len() - 1], v, |_, _, _| {}),
            None
        );
    }
    assert_eq!(
        produce_partitions(&produce(12, topics), 13, |_, _, _| {}),
        None
    );
}

fn fetch_frame(v: i16) -> Bytes {
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
    };
    let part = |i: i32, n: usize| {
        let mut p = PartitionData::default()
            .with_partition_index(i)
            .with_high_watermark(99)
            .with_aborted_transactions(Some(vec![
                AbortedTransaction::default().with_producer_id(ProducerId(4)),
                AbortedTransaction::default(),
            ]))
            .with_records(Some(Bytes::from(vec![1u8; n])));
        if v >= 12 {
            // A tagged field, so that tagged sections are really skipped.
            p = p.with_diverging_epoch(EpochEndOffset::default().with_epoch(3).with_end_offset(7));
        }
        p
    };
    let topic = |name: &str, id: u128, parts: Vec<PartitionData>| {
        let t = FetchableTopicResponse::default().with_partitions(parts);
        if v >= 13 {
            t.with_topic_id(uuid::Uuid::from_u128(id))
        } else {
            t.with_topic(TopicName(StrBytes::from_string(name.into())))
        }
    };
    let resp = FetchResponse::default().with_responses(vec![
        topic("alpha", 1, vec![part(0, 10), part(3, 0)]),
        topic("b", 2, vec![part(1, 500)]),
    ]);
    encode_response(ApiKey::Fetch, v, 9, &resp).unwrap()
}

#[test]
fn fetch_partitions_are_read_at_every_answered_version() {
    let range = crate::versions::supported(ApiKey::Fetch).unwrap();
    for v in range.min..=range.max {
        let frame = fetch_frame(v);
        let hv = response_header_version(ApiKey::Fetch, v);
        let mut seen = Vec::new();
        let ok = fetch_partitions(&frame, v, hv, |t, p, n| seen.push((t.to_vec(), p, n)));
        assert_eq!(ok, Some(()), "v{v}");
        let key = |name: &str, id: u128| {
            if v >= 13 {
                uuid::Uuid::from_u128(id).as_bytes().to_vec()
            } else {
                name.as_bytes().to_vec()
            }
        };
        assert_eq!(
            seen,
            [
                (key("alpha", 1), 0, 10),
                (key("alpha", 1), 3, 0),
                (key("b", 2), 1, 500)
            ],
            "v{v}"
        );
        for n in 0..frame.len() {
            let _ = fetch_partitions(&frame[..n], v, hv, |_, _, _| {});
        }
        assert_eq!(
            fetch_partitions(&frame[..frame.len() - 1], v, hv, |_, _, _| {}),
            None
        );
    }
}
