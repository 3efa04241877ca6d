//! Metadata and DescribeCluster: the gateway presents itself as the only broker, leader of every
//! partition (it forwards to the owning node), and controller.

use std::sync::Arc;

use base64::Engine;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::warn;
use uuid::Uuid;

use fjord_tenancy::policy::{Action, Resource};

use super::{owner, Ctx};
use crate::error::RequestError;
use crate::topics::TopicInfo;

/// The cluster id as Kafka clients show it: the UUID in URL-safe base64 without padding, as
/// Kafka itself formats ids.
pub(crate) fn kafka_cluster_id(cluster: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cluster.as_bytes())
}

pub(crate) async fn metadata(ctx: Ctx<'_>, req: MetadataRequest) -> MetadataResponse {
    let v = ctx.version;
    let cfg = &ctx.gw.config;
    let (host, port) = ctx.gw.advertised_endpoint(ctx.cluster, ctx.peer);
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(cfg.broker_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port);
    // v0: an empty list means all topics; v1+: null means all (and empty means none).
    let all = match &req.topics {
        None => true,
        Some(t) => v == 0 && t.is_empty(),
    };
    let mut topics = Vec::new();
    if all {
        match ctx.gw.topics.list(ctx.cluster).await {
            // Topics the principal may not describe are left out, as Kafka does.
            Ok(list) => topics.extend(
                list.iter()
                    .filter(|info| {
                        ctx.access
                            .may(Action::DescribeTopic, Resource::Topic(&info.topic.name))
                    })
                    .map(|info| topic_entry(ctx, info)),
            ),
            Err(e) => warn!(error = %e, "listing topics failed; answering with none"),
        }
    } else {
        for wanted in req.topics.iter().flatten() {
            // v10+ may name a topic by id only (a null, or by some clients an empty, name).
            let by_id = v >= 10
                && !wanted.topic_id.is_nil()
                && wanted.name.as_ref().is_none_or(|n| n.is_empty());
            // Never auto-created: a missing topic is UNKNOWN_TOPIC_OR_PARTITION.
            let found = match &wanted.name {
                _ if by_id => match ctx.topic_by_id(wanted.topic_id).await {
                    Ok(info) => ctx
                        .access
                        .allow(Action::DescribeTopic, Resource::Topic(&info.topic.name))
                        .map(|()| info)
                        .map_err(RequestError::from),
                    Err(e) => Err(e),
                },
                Some(name) => match ctx
                    .access
                    .allow(Action::DescribeTopic, Resource::Topic(name))
                {
                    Ok(()) => ctx.topic(name).await,
                    Err(refused) => Err(refused.into()),
                },
                None => Err(RequestError::Invalid("topic without name or id".into())),
            };
            topics.push(match found {
                Ok(info) => topic_entry(ctx, &info),
                Err(e) => {
                    let code = match e {
                        // A metadata outage is reported as a retriable leader problem, which every
                        // client handles by refreshing again.
                        RequestError::Topic(_) | RequestError::Metadata(_) => {
                            warn!(error = %e, "topic lookup failed");
                            ResponseError::LeaderNotAvailable.code()
                        }
                        other => other.code(),
                    };
                    let mut t = MetadataResponseTopic::default()
                        .with_error_code(code)
                        .with_name(wanted.name.clone());
                    if v >= 10 {
                        t = t.with_topic_id(wanted.topic_id);
                    }
                    t
                }
            });
        }
    }
    let mut resp = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if v >= 1 {
        resp = resp.with_controller_id(BrokerId(cfg.broker_id));
    }
    if v >= 2 {
        resp = resp.with_cluster_id(Some(StrBytes::from_string(kafka_cluster_id(ctx.cluster))));
    }
    resp
}

fn topic_entry(ctx: Ctx<'_>, info: &Arc<TopicInfo>) -> MetadataResponseTopic {
    let me = BrokerId(ctx.gw.config.broker_id);
    let partitions = (0..info.topic.partitions)
        .map(|p| {
            let base = MetadataResponsePartition::default().with_partition_index(p);
            match owner(info, p) {
                Ok(o) => {
                    let mut part = base
                        .with_leader_id(me)
                        .with_replica_nodes(vec![me])
                        .with_isr_nodes(vec![me]);
                    if ctx.version >= 7 {
                        part = part.with_leader_epoch(o.epoch);
                    }
                    part
                }
                Err(e) => base.with_error_code(e.code()).with_leader_id(BrokerId(-1)),
            }
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            info.topic.name.clone(),
        ))))
        .with_partitions(partitions);
    if ctx.version >= 10 {
        t = t.with_topic_id(info.topic.id);
    }
    t
}

pub(crate) fn describe_cluster(
    ctx: Ctx<'_>,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    if let Err(refused) = ctx.access.allow(Action::DescribeCluster, Resource::Cluster) {
        return DescribeClusterResponse::default()
            .with_error_code(refused.code)
            .with_error_message(Some(StrBytes::from_string(refused.message)));
    }
    let cfg = &ctx.gw.config;
    let (host, port) = ctx.gw.advertised_endpoint(ctx.cluster, ctx.peer);
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(cfg.broker_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(kafka_cluster_id(ctx.cluster)))
        .with_controller_id(BrokerId(cfg.broker_id))
        .with_brokers(vec![broker])
}
