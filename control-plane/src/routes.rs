//! The route table: every operation the control plane serves, with its HTTP method and path,
//! the SigV4 service its requests are signed for, and its error protocol. The router is built
//! from this table, the middleware names its spans after it, and a test checks that
//! `openapi.json` documents exactly these routes.

use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};

use crate::server::AppState;
use crate::{keys, msk, openapi, principals, sts, topics, usage};

/// How errors are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// AWS REST-JSON (`x-amzn-ErrorType` + `{"message"}`): MSK's and Fjord's own operations.
    RestJson,
    /// AWS query protocol (XML `ErrorResponse`): STS.
    Query,
}

/// One served operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path template (`{name}` for parameters), as in the OpenAPI document.
    pub path: &'static str,
    /// Operation name (botocore's for MSK and STS operations).
    pub operation: &'static str,
    /// The SigV4 service name requests must be signed for; `None` for the one public route
    /// (the OpenAPI document).
    pub service: Option<&'static str>,
    /// The error protocol.
    pub protocol: Protocol,
}

/// A route: its spec and handler.
pub(crate) struct Route {
    pub spec: RouteSpec,
    pub handler: MethodRouter<AppState>,
}

/// The SigV4 service of MSK's API and Fjord's own JSON API.
pub const KAFKA_SERVICE: &str = "kafka";
/// The SigV4 service of STS.
pub const STS_SERVICE: &str = "sts";

macro_rules! route {
    ($method:ident, $path:expr, $op:expr, $handler:expr) => {
        route!(
            $method,
            $path,
            $op,
            $handler,
            Some(KAFKA_SERVICE),
            Protocol::RestJson
        )
    };
    ($method:ident, $path:expr, $op:expr, $handler:expr, $service:expr, $protocol:expr) => {
        Route {
            spec: RouteSpec {
                method: Method::$method,
                path: $path,
                operation: $op,
                service: $service,
                protocol: $protocol,
            },
            handler: on(MethodFilter::$method, $handler),
        }
    };
}

/// Every route, handlers included.
pub(crate) fn routes() -> Vec<Route> {
    const CLUSTER: &str = "/api/v2/clusters/{clusterArn}";
    const TOPICS: &str = "/v1/clusters/{clusterArn}/topics";
    const TOPIC: &str = "/v1/clusters/{clusterArn}/topics/{topicName}";
    const PRINCIPAL: &str = "/v1/principals/{kind}/{name}";
    vec![
        // MSK (botocore kafka 2018-11-14).
        route!(
            POST,
            "/api/v2/clusters",
            "CreateClusterV2",
            msk::create_cluster
        ),
        route!(
            GET,
            "/api/v2/clusters",
            "ListClustersV2",
            msk::list_clusters
        ),
        route!(GET, CLUSTER, "DescribeClusterV2", msk::describe_cluster),
        route!(
            DELETE,
            "/v1/clusters/{clusterArn}",
            "DeleteCluster",
            msk::delete_cluster
        ),
        route!(
            GET,
            "/v1/clusters/{clusterArn}/bootstrap-brokers",
            "GetBootstrapBrokers",
            msk::bootstrap_brokers
        ),
        route!(POST, TOPICS, "CreateTopic", topics::create_topic),
        route!(GET, TOPICS, "ListTopics", topics::list_topics),
        route!(GET, TOPIC, "DescribeTopic", topics::describe_topic),
        route!(PUT, TOPIC, "UpdateTopic", topics::update_topic),
        route!(DELETE, TOPIC, "DeleteTopic", topics::delete_topic),
        route!(
            GET,
            "/v1/clusters/{clusterArn}/topics/{topicName}/partitions",
            "DescribeTopicPartitions",
            topics::describe_partitions
        ),
        // Fjord's own JSON API.
        route!(
            GET,
            "/v1/clusters/{clusterArn}/settings",
            "GetClusterSettings",
            usage::get_settings
        ),
        route!(
            PUT,
            "/v1/clusters/{clusterArn}/settings",
            "PutClusterSettings",
            usage::put_settings
        ),
        route!(
            GET,
            "/v1/clusters/{clusterArn}/usage",
            "GetClusterUsage",
            usage::get_usage
        ),
        route!(
            POST,
            "/v1/principals",
            "CreatePrincipal",
            principals::create
        ),
        route!(GET, "/v1/principals", "ListPrincipals", principals::list),
        route!(GET, PRINCIPAL, "GetPrincipal", principals::get),
        route!(DELETE, PRINCIPAL, "DeletePrincipal", principals::delete),
        route!(
            PUT,
            "/v1/principals/{kind}/{name}/policies/{policyName}",
            "PutPrincipalPolicy",
            principals::put_policy
        ),
        route!(
            DELETE,
            "/v1/principals/{kind}/{name}/policies/{policyName}",
            "DeletePrincipalPolicy",
            principals::delete_policy
        ),
        route!(
            PUT,
            "/v1/principals/{kind}/{name}/trust-policy",
            "UpdateAssumeRolePolicy",
            principals::put_trust_policy
        ),
        route!(
            PUT,
            "/v1/principals/{kind}/{name}/scram",
            "PutScramCredential",
            principals::put_scram
        ),
        route!(
            DELETE,
            "/v1/principals/{kind}/{name}/scram",
            "DeleteScramCredential",
            principals::delete_scram
        ),
        route!(
            POST,
            "/v1/principals/{kind}/{name}/access-keys",
            "CreateAccessKey",
            keys::create
        ),
        route!(GET, "/v1/access-keys", "ListAccessKeys", keys::list),
        route!(
            PUT,
            "/v1/access-keys/{accessKeyId}",
            "UpdateAccessKey",
            keys::update
        ),
        route!(
            DELETE,
            "/v1/access-keys/{accessKeyId}",
            "DeleteAccessKey",
            keys::delete
        ),
        // STS (query protocol; the Action form field picks the operation).
        route!(
            POST,
            "/",
            "STS",
            sts::handle,
            Some(STS_SERVICE),
            Protocol::Query
        ),
        route!(
            GET,
            "/openapi.json",
            "GetOpenApi",
            openapi::serve,
            None,
            Protocol::RestJson
        ),
    ]
}

/// The specs of every route (method, path, operation), for documentation and tests.
pub fn route_specs() -> Vec<RouteSpec> {
    routes().into_iter().map(|r| r.spec).collect()
}
