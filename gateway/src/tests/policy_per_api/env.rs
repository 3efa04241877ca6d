//! The gateway of the per-API policy tests: real SQLite metadata with the dev tenant and topic
//! [`TOPIC`], one storage node whose data side is a [`MemNode`] and whose group coordinator
//! accepts whatever it is sent, and principals with one policy each.

use std::sync::Arc;

use fjord_metadata::{AccessKey, KeyStatus, Principal};
use fjord_tenancy::policy::ClusterRef;
use fjord_tenancy::secrets::SecretString;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use super::super::*;
use super::{GROUP, OTHER_GROUP, TOPIC};
use crate::handlers::groups::encode_body;

const SECRET: &str = "policy-per-api-secret-000000000000000000";
/// The gateway's broker id.
pub(super) const BROKER: i32 = 7;

pub(super) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub(super) fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

pub(super) fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

/// A storage node that keeps data in a [`MemNode`] and answers group requests like a
/// coordinator that accepts everything it is sent (echoing the groups, topics and partitions
/// it was asked about), so that what the gateway narrowed away shows in the answer.
#[derive(Default)]
pub(super) struct Coordinator {
    pub data: MemNode,
    /// (api key, body) of every group request received.
    pub groups: Mutex<Vec<(i16, Bytes)>>,
}

impl Coordinator {
    /// The bodies of the group requests of `api` received after the first `since` requests.
    pub(super) fn received(&self, api: ApiKey, since: usize) -> Vec<Bytes> {
        self.groups
            .lock()
            .iter()
            .skip(since)
            .filter(|(k, _)| *k == api as i16)
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub(super) fn data_calls(&self, kind: &str) -> usize {
        self.data
            .seen
            .lock()
            .iter()
            .filter(|(k, _)| *k == kind)
            .count()
    }
}

fn answer(req: &GroupRequest) -> Bytes {
    let v = req.api_version;
    let mut b = req.body.clone();
    let b = &mut b;
    let api = ApiKey::try_from(req.api_key).unwrap();
    let ok = match api {
        ApiKey::JoinGroup => {
            JoinGroupRequest::decode(b, v).unwrap();
            encode_body(
                &JoinGroupResponse::default()
                    .with_generation_id(1)
                    .with_protocol_type(Some(s("consumer")))
                    .with_protocol_name(Some(s("range")))
                    .with_leader(s("m-1"))
                    .with_member_id(s("m-1")),
                v,
            )
        }
        ApiKey::SyncGroup => {
            SyncGroupRequest::decode(b, v).unwrap();
            encode_body(
                &SyncGroupResponse::default()
                    .with_protocol_type(Some(s("consumer")))
                    .with_protocol_name(Some(s("range"))),
                v,
            )
        }
        ApiKey::Heartbeat => {
            HeartbeatRequest::decode(b, v).unwrap();
            encode_body(&HeartbeatResponse::default(), v)
        }
        ApiKey::LeaveGroup => {
            let r = LeaveGroupRequest::decode(b, v).unwrap();
            let members = r
                .members
                .iter()
                .map(|m| MemberResponse::default().with_member_id(m.member_id.clone()))
                .collect();
            encode_body(&LeaveGroupResponse::default().with_members(members), v)
        }
        ApiKey::OffsetCommit => {
            let r = OffsetCommitRequest::decode(b, v).unwrap();
            let topics = r
                .topics
                .iter()
                .map(|t| {
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                })
                                .collect(),
                        )
                })
                .collect();
            encode_body(&OffsetCommitResponse::default().with_topics(topics), v)
        }
        ApiKey::OffsetFetch if v < 8 => {
            let r = OffsetFetchRequest::decode(b, v).unwrap();
            let topics = match &r.topics {
                Some(ts) => ts
                    .iter()
                    .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                    .collect(),
                None => vec![(topic_name(TOPIC), vec![0])],
            };
            let topics = topics
                .into_iter()
                .map(|(name, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(5)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(s("")))
                                })
                                .collect(),
                        )
                })
                .collect();
            encode_body(&OffsetFetchResponse::default().with_topics(topics), v)
        }
        ApiKey::OffsetFetch => {
            let r = OffsetFetchRequest::decode(b, v).unwrap();
            let committed = |name: &TopicName, parts: &[i32]| {
                OffsetFetchResponseTopics::default()
                    .with_name(name.clone())
                    .with_partitions(
                        parts
                            .iter()
                            .map(|p| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(*p)
                                    .with_committed_offset(5)
                                    .with_committed_leader_epoch(-1)
                                    .with_metadata(Some(s("")))
                            })
                            .collect(),
                    )
            };
            let groups = r
                .groups
                .iter()
                .map(|g| {
                    let topics = match &g.topics {
                        Some(ts) => ts
                            .iter()
                            .map(|t| committed(&t.name, &t.partition_indexes))
                            .collect(),
                        // "All topics": the group has committed offsets for TOPIC only.
                        None => vec![committed(&topic_name(TOPIC), &[0])],
                    };
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_topics(topics)
                })
                .collect();
            encode_body(&OffsetFetchResponse::default().with_groups(groups), v)
        }
        ApiKey::DescribeGroups => {
            let r = DescribeGroupsRequest::decode(b, v).unwrap();
            let groups = r
                .groups
                .iter()
                .map(|g| {
                    DescribedGroup::default()
                        .with_group_id(g.clone())
                        .with_group_state(s("Stable"))
                        .with_protocol_type(s("consumer"))
                        .with_protocol_data(s("range"))
                })
                .collect();
            encode_body(&DescribeGroupsResponse::default().with_groups(groups), v)
        }
        ApiKey::ListGroups => {
            ListGroupsRequest::decode(b, v).unwrap();
            let groups = [GROUP, OTHER_GROUP]
                .iter()
                .map(|g| {
                    ListedGroup::default()
                        .with_group_id(gid(g))
                        .with_protocol_type(s("consumer"))
                        .with_group_state(s("Stable"))
                        .with_group_type(s("classic"))
                })
                .collect();
            encode_body(&ListGroupsResponse::default().with_groups(groups), v)
        }
        ApiKey::DeleteGroups => {
            let r = DeleteGroupsRequest::decode(b, v).unwrap();
            let results = r
                .groups_names
                .iter()
                .map(|g| DeletableGroupResult::default().with_group_id(g.clone()))
                .collect();
            encode_body(&DeleteGroupsResponse::default().with_results(results), v)
        }
        other => panic!("{other:?} is not a group API"),
    };
    ok.unwrap()
}

#[async_trait]
impl NodeApi for Coordinator {
    async fn produce(&self, req: node::ProduceRequest) -> Result<node::ProduceResponse, NodeError> {
        self.data.produce(req).await
    }

    async fn produce_ordered(
        &self,
        req: node::ProduceRequest,
        sequenced: tokio::sync::oneshot::Sender<()>,
    ) -> Result<node::ProduceResponse, NodeError> {
        self.data.produce_ordered(req, sequenced).await
    }

    async fn fetch(&self, req: node::FetchRequest) -> Result<node::FetchResponse, NodeError> {
        self.data.fetch(req).await
    }

    async fn list_offsets(
        &self,
        req: node::ListOffsetsRequest,
    ) -> Result<node::ListOffsetsResponse, NodeError> {
        self.data.list_offsets(req).await
    }

    async fn delete_records(
        &self,
        req: node::DeleteRecordsRequest,
    ) -> Result<node::DeleteRecordsResponse, NodeError> {
        self.data.delete_records(req).await
    }

    async fn group(&self, req: GroupRequest) -> Result<GroupResponse, NodeError> {
        self.groups.lock().push((req.api_key, req.body.clone()));
        Ok(GroupResponse { body: answer(&req) })
    }
}

struct OneNode(Arc<Coordinator>);

#[async_trait]
impl NodeDirectory for OneNode {
    async fn node(&self, node_id: &str) -> Result<Arc<dyn NodeApi>, NodeError> {
        if node_id == "n1" {
            Ok(self.0.clone())
        } else {
            Err(NodeError::Unreachable(format!("no node {node_id}")))
        }
    }
}

/// A gateway over real SQLite metadata with the dev tenant, topic [`TOPIC`] and one node.
pub(super) struct PolicyEnv {
    _dir: tempfile::TempDir,
    pub gw: Arc<Gateway>,
    pub store: Arc<dyn MetadataStore>,
    pub tenant: DevTenant,
    pub node: Arc<Coordinator>,
    /// The dev cluster, as its ARNs name it.
    pub cluster: ClusterRef,
}

impl PolicyEnv {
    pub async fn new() -> Self {
        let (dir, store, tenant, auth) = tenant_env().await;
        store
            .register_node(&NodeInfo {
                id: "n1".into(),
                rpc_addr: "127.0.0.1:1".into(),
                cert_der: vec![],
                heartbeat_ms: NOW,
            })
            .await
            .unwrap();
        let node = Arc::new(Coordinator {
            data: MemNode {
                id: "n1".into(),
                ..Default::default()
            },
            ..Default::default()
        });
        let topics = Arc::new(TopicService::new(store.clone()));
        let mut config = GatewayConfig::new("gw.us-east-1.fjord.test", 9092);
        config.broker_id = BROKER;
        config.auth_failure_delay = std::time::Duration::from_millis(1);
        let gw = Gateway::new(
            config,
            store.clone(),
            auth,
            topics.clone(),
            Arc::new(OneNode(node.clone())),
        )
        .unwrap();
        topics
            .create_topic(tenant.cluster.id, TOPIC, 1, BTreeMap::new(), false, NOW)
            .await
            .unwrap();
        let cluster = ClusterRef {
            region: tenant.cluster.region.clone(),
            account_id: tenant.account_id.clone(),
            name: tenant.cluster.name.clone(),
            id: tenant.cluster.id,
        };
        Self {
            _dir: dir,
            gw: Arc::new(gw),
            store,
            tenant,
            node,
            cluster,
        }
    }

    /// Stores principal `user/p<n>` of the dev account with `policy` and an access key for
    /// it; returns the key id.
    pub async fn principal(&self, n: usize, policy: &str) -> String {
        let key_id = format!("AKIAPOLICY{n:010}");
        let name = format!("user/p{n}");
        self.store
            .create_principal(&Principal {
                account_id: self.tenant.account_id.clone(),
                name: name.clone(),
                policies: [("p0".to_owned(), policy.to_owned())].into(),
                scram: None,
                version: 0,
                created_ms: NOW,
            })
            .await
            .unwrap();
        self.store
            .create_access_key(&AccessKey {
                id: key_id.clone(),
                sealed_secret: SecretSealer::from_key([7; 32])
                    .seal(&key_id, &SecretString::new(SECRET))
                    .unwrap(),
                account_id: self.tenant.account_id.clone(),
                principal: name,
                status: KeyStatus::Active,
                expires_ms: None,
                created_ms: NOW,
            })
            .await
            .unwrap();
        key_id
    }

    /// A connection that has not authenticated.
    pub fn client(&self) -> Client {
        Client {
            gw: self.gw.clone(),
            session: Session::new(Uuid::from_u128(1)),
            corr: 0,
            now_ms: NOW,
        }
    }

    /// A PLAIN login as `key_id`; the connection and the SaslAuthenticate answer.
    pub async fn login(&self, key_id: &str) -> (Client, SaslAuthenticateResponse) {
        let mut c = self.client();
        let hs: SaslHandshakeResponse = c
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
            )
            .await;
        assert_eq!(hs.error_code, 0);
        let req = SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(format!("\0{key_id}\0{SECRET}")));
        match c.send(ApiKey::SaslAuthenticate, 2, &req).await {
            Outcome::Respond(f) | Outcome::Close { frame: Some(f), .. } => {
                let (_, mut b) = parse_response(ApiKey::SaslAuthenticate, 2, &f);
                (c, SaslAuthenticateResponse::decode(&mut b, 2).unwrap())
            }
            other => panic!("no SaslAuthenticate answer: {other:?}"),
        }
    }

    pub(super) async fn topic(&self, name: &str) -> Option<fjord_metadata::Topic> {
        self.store
            .get_topic(self.tenant.cluster.id, name)
            .await
            .unwrap()
    }
}
