//! MSK resource ARNs: building them for authorization checks and parsing them for the control
//! plane's `{clusterArn}` path parameter.
//!
//! Layout (as MSK): `arn:aws:kafka:<region>:<account>:<type>/<cluster-name>/<cluster-uuid>[/<name>]`
//! with `<type>` one of `cluster`, `topic`, `group`, `transactional-id`. The resource name is the
//! rest of the ARN after the third `/`-separated part, so a group name may itself contain `/`.

use std::fmt;

use uuid::Uuid;

/// The partition, service and prefix every MSK ARN starts with.
const ARN_PREFIX: &str = "arn:aws:kafka:";
/// Longest ARN accepted by [`parse_arn`]; IAM's own limit on an ARN is 2048 characters.
pub const MAX_ARN_LEN: usize = 2048;

/// The kind of Kafka resource an ARN or an action refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// The cluster itself (`cluster/<name>/<uuid>`).
    Cluster,
    /// A topic (`topic/<name>/<uuid>/<topic>`).
    Topic,
    /// A consumer group (`group/<name>/<uuid>/<group>`).
    Group,
    /// A transactional id (`transactional-id/<name>/<uuid>/<id>`).
    TransactionalId,
}

impl ResourceKind {
    /// The ARN resource-type word (`cluster`, `topic`, `group`, `transactional-id`).
    pub fn arn_type(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Topic => "topic",
            Self::Group => "group",
            Self::TransactionalId => "transactional-id",
        }
    }

    /// The Kafka error code for a refusal on this kind of resource: TOPIC_ (29), GROUP_ (30),
    /// CLUSTER_ (31) or TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    pub fn authorization_failed_code(self) -> i16 {
        match self {
            Self::Topic => 29,
            Self::Group => 30,
            Self::Cluster => 31,
            Self::TransactionalId => 53,
        }
    }

    fn from_arn_type(word: &str) -> Option<Self> {
        match word {
            "cluster" => Some(Self::Cluster),
            "topic" => Some(Self::Topic),
            "group" => Some(Self::Group),
            "transactional-id" => Some(Self::TransactionalId),
            _ => None,
        }
    }
}

/// A resource of one cluster, borrowed: what an authorization check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource<'a> {
    /// The cluster.
    Cluster,
    /// The named topic.
    Topic(&'a str),
    /// The named consumer group.
    Group(&'a str),
    /// The named transactional id.
    TransactionalId(&'a str),
}

impl Resource<'_> {
    /// The resource's name (empty for the cluster).
    pub fn name(&self) -> &str {
        match self {
            Resource::Cluster => "",
            Resource::Topic(n) | Resource::Group(n) | Resource::TransactionalId(n) => n,
        }
    }

    /// The kind of this resource.
    pub fn kind(&self) -> ResourceKind {
        match self {
            Self::Cluster => ResourceKind::Cluster,
            Self::Topic(_) => ResourceKind::Topic,
            Self::Group(_) => ResourceKind::Group,
            Self::TransactionalId(_) => ResourceKind::TransactionalId,
        }
    }
}

/// An owned resource, as parsed out of an ARN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ArnResource {
    /// The cluster.
    Cluster,
    /// The named topic.
    Topic(String),
    /// The named consumer group.
    Group(String),
    /// The named transactional id.
    TransactionalId(String),
}

impl ArnResource {
    /// Borrows this as a [`Resource`] for authorization checks.
    pub fn as_resource(&self) -> Resource<'_> {
        match self {
            Self::Cluster => Resource::Cluster,
            Self::Topic(n) => Resource::Topic(n),
            Self::Group(n) => Resource::Group(n),
            Self::TransactionalId(n) => Resource::TransactionalId(n),
        }
    }
}

/// Identifies one cluster the way its ARNs do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClusterRef {
    /// AWS-style region name, e.g. `eu-west-1`.
    pub region: String,
    /// The owning account's 12-digit id.
    pub account_id: String,
    /// The cluster's name (unique per account).
    pub name: String,
    /// The cluster's id.
    pub id: Uuid,
}

impl ClusterRef {
    /// `arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>`.
    pub fn cluster_arn(&self) -> String {
        self.arn_for(ResourceKind::Cluster, None)
    }

    /// `arn:aws:kafka:<region>:<account>:topic/<name>/<uuid>/<topic>`.
    pub fn topic_arn(&self, topic: &str) -> String {
        self.arn_for(ResourceKind::Topic, Some(topic))
    }

    /// `arn:aws:kafka:<region>:<account>:group/<name>/<uuid>/<group>`.
    pub fn group_arn(&self, group: &str) -> String {
        self.arn_for(ResourceKind::Group, Some(group))
    }

    /// `arn:aws:kafka:<region>:<account>:transactional-id/<name>/<uuid>/<id>`.
    pub fn transactional_id_arn(&self, transactional_id: &str) -> String {
        self.arn_for(ResourceKind::TransactionalId, Some(transactional_id))
    }

    /// The ARN of any resource of this cluster.
    pub fn resource_arn(&self, resource: Resource<'_>) -> String {
        match resource {
            Resource::Cluster => self.cluster_arn(),
            Resource::Topic(n) => self.topic_arn(n),
            Resource::Group(n) => self.group_arn(n),
            Resource::TransactionalId(n) => self.transactional_id_arn(n),
        }
    }

    /// The common prefix of every ARN of `kind` in this cluster other than the cluster's own,
    /// ending with the `/` before the resource name (e.g. `…:group/<name>/<uuid>/`).
    pub fn kind_prefix(&self, kind: ResourceKind) -> String {
        let mut s = self.arn_for(kind, None);
        s.push('/');
        s
    }

    fn arn_for(&self, kind: ResourceKind, name: Option<&str>) -> String {
        let mut s = format!(
            "{ARN_PREFIX}{}:{}:{}/{}/{}",
            self.region,
            self.account_id,
            kind.arn_type(),
            self.name,
            self.id
        );
        if let Some(name) = name {
            s.push('/');
            s.push_str(name);
        }
        s
    }
}

impl fmt::Display for ClusterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cluster_arn())
    }
}

/// Why a string is not an MSK ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArnError {
    /// Longer than [`MAX_ARN_LEN`].
    #[error("ARN is longer than {MAX_ARN_LEN} characters")]
    TooLong,
    /// Does not start with `arn:aws:kafka:`.
    #[error("not an MSK ARN: it must start with `arn:aws:kafka:`")]
    NotMsk,
    /// Region, account or resource part missing or empty.
    #[error("malformed ARN: {0}")]
    Malformed(&'static str),
    /// The account is not 12 digits.
    #[error("malformed ARN: the account id must be 12 digits")]
    BadAccount,
    /// Unknown resource type word.
    #[error(
        "unknown resource type `{0}` in ARN (expected cluster, topic, group or transactional-id)"
    )]
    UnknownType(String),
    /// The cluster-uuid part is not a UUID.
    #[error("malformed ARN: `{0}` is not a cluster uuid")]
    BadUuid(String),
    /// A cluster ARN with a resource name, or a topic/group/transactional-id ARN without one.
    #[error("malformed ARN: {0}")]
    BadResourceName(&'static str),
    /// [`parse_cluster_arn`] was given the ARN of a topic, group or transactional id.
    #[error("expected a cluster ARN, got a {0} ARN")]
    NotACluster(&'static str),
}

/// Parses any MSK resource ARN into its cluster and resource.
pub fn parse_arn(arn: &str) -> Result<(ClusterRef, ArnResource), ArnError> {
    if arn.len() > MAX_ARN_LEN {
        return Err(ArnError::TooLong);
    }
    let rest = arn.strip_prefix(ARN_PREFIX).ok_or(ArnError::NotMsk)?;
    let mut parts = rest.splitn(3, ':');
    let region = parts.next().unwrap_or_default();
    let account = parts.next().ok_or(ArnError::Malformed("no account id"))?;
    let resource = parts.next().ok_or(ArnError::Malformed("no resource"))?;
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ArnError::Malformed("bad region"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArnError::BadAccount);
    }
    let mut segs = resource.splitn(4, '/');
    let type_word = segs.next().unwrap_or_default();
    let kind = ResourceKind::from_arn_type(type_word)
        .ok_or_else(|| ArnError::UnknownType(type_word.to_string()))?;
    let name = segs.next().filter(|s| !s.is_empty());
    let name = name.ok_or(ArnError::Malformed("no cluster name"))?;
    let uuid_str = segs.next().ok_or(ArnError::Malformed("no cluster uuid"))?;
    let id = parse_cluster_uuid(uuid_str)?;
    let resource_name = segs.next();
    let cluster = ClusterRef {
        region: region.to_string(),
        account_id: account.to_string(),
        name: name.to_string(),
        id,
    };
    let resource = match (kind, resource_name) {
        (ResourceKind::Cluster, None) => ArnResource::Cluster,
        (ResourceKind::Cluster, Some(_)) => {
            return Err(ArnError::BadResourceName(
                "a cluster ARN ends after the cluster uuid",
            ))
        }
        (_, None) | (_, Some("")) => {
            return Err(ArnError::BadResourceName("the resource name is missing"))
        }
        (ResourceKind::Topic, Some(n)) => ArnResource::Topic(n.to_string()),
        (ResourceKind::Group, Some(n)) => ArnResource::Group(n.to_string()),
        (ResourceKind::TransactionalId, Some(n)) => ArnResource::TransactionalId(n.to_string()),
    };
    Ok((cluster, resource))
}

/// Parses a cluster ARN (the control plane's `{clusterArn}`), refusing other resource ARNs.
pub fn parse_cluster_arn(arn: &str) -> Result<ClusterRef, ArnError> {
    match parse_arn(arn)? {
        (cluster, ArnResource::Cluster) => Ok(cluster),
        (_, ArnResource::Topic(_)) => Err(ArnError::NotACluster("topic")),
        (_, ArnResource::Group(_)) => Err(ArnError::NotACluster("group")),
        (_, ArnResource::TransactionalId(_)) => Err(ArnError::NotACluster("transactional-id")),
    }
}

/// MSK appends a suffix to the cluster uuid (`<uuid>-<n>`, e.g. `…-25`); accept it and keep the
/// uuid, since Fjord's ids are plain uuids.
fn parse_cluster_uuid(s: &str) -> Result<Uuid, ArnError> {
    let bad = || ArnError::BadUuid(s.chars().take(64).collect());
    let head = s.get(..36).ok_or_else(bad)?;
    let id = Uuid::parse_str(head).map_err(|_| bad())?;
    match &s[36..] {
        "" => Ok(id),
        suffix => match suffix.strip_prefix('-') {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
            _ => Err(bad()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterRef {
        ClusterRef {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
            name: "orders".into(),
            id: Uuid::parse_str("0b6f1c39-3e0c-4a34-9d1e-7f1b2a3c4d5e").unwrap(),
        }
    }

    const BASE: &str = "arn:aws:kafka:eu-west-1:123456789012";
    const ID: &str = "0b6f1c39-3e0c-4a34-9d1e-7f1b2a3c4d5e";

    #[test]
    fn builders_produce_msk_layout() {
        let c = cluster();
        assert_eq!(c.cluster_arn(), format!("{BASE}:cluster/orders/{ID}"));
        assert_eq!(c.topic_arn("t.1"), format!("{BASE}:topic/orders/{ID}/t.1"));
        assert_eq!(c.group_arn("g/x"), format!("{BASE}:group/orders/{ID}/g/x"));
        assert_eq!(
            c.transactional_id_arn("tx"),
            format!("{BASE}:transactional-id/orders/{ID}/tx")
        );
        assert_eq!(
            c.kind_prefix(ResourceKind::Group),
            format!("{BASE}:group/orders/{ID}/")
        );
        assert_eq!(c.resource_arn(Resource::Topic("a")), c.topic_arn("a"));
        assert_eq!(c.to_string(), c.cluster_arn());
    }

    #[test]
    fn authorization_error_codes_are_kafkas() {
        assert_eq!(ResourceKind::Topic.authorization_failed_code(), 29);
        assert_eq!(ResourceKind::Group.authorization_failed_code(), 30);
        assert_eq!(ResourceKind::Cluster.authorization_failed_code(), 31);
        assert_eq!(
            ResourceKind::TransactionalId.authorization_failed_code(),
            53
        );
    }

    #[test]
    fn every_built_arn_parses_back() {
        let c = cluster();
        let cases = [
            (c.cluster_arn(), ArnResource::Cluster),
            (c.topic_arn("t"), ArnResource::Topic("t".into())),
            (c.group_arn("a/b:c"), ArnResource::Group("a/b:c".into())),
            (
                c.transactional_id_arn("x"),
                ArnResource::TransactionalId("x".into()),
            ),
        ];
        for (arn, want) in cases {
            let (got_c, got_r) = parse_arn(&arn).unwrap();
            assert_eq!(got_c, c, "{arn}");
            assert_eq!(got_r, want, "{arn}");
            assert_eq!(c.resource_arn(got_r.as_resource()), arn);
        }
    }

    #[test]
    fn msk_uuid_suffix_is_accepted() {
        let arn = format!("{BASE}:cluster/orders/{ID}-25");
        assert_eq!(parse_cluster_arn(&arn).unwrap(), cluster());
    }

    #[test]
    fn malformed_arns_are_refused_with_the_reason() {
        let long = format!("{BASE}:topic/orders/{ID}/{}", "x".repeat(MAX_ARN_LEN));
        let cases: Vec<(String, ArnError)> = vec![
            ("arn:aws:s3:::bucket".into(), ArnError::NotMsk),
            (
                "arn:aws:kafka:eu-west-1".into(),
                ArnError::Malformed("no account id"),
            ),
            (
                "arn:aws:kafka:eu-west-1:123456789012".into(),
                ArnError::Malformed("no resource"),
            ),
            (
                format!("arn:aws:kafka::123456789012:cluster/o/{ID}"),
                ArnError::Malformed("bad region"),
            ),
            (
                format!("arn:aws:kafka:eu-west-1:1234:cluster/o/{ID}"),
                ArnError::BadAccount,
            ),
            (
                format!("{BASE}:broker/o/{ID}"),
                ArnError::UnknownType("broker".into()),
            ),
            (
                format!("{BASE}:cluster//{ID}"),
                ArnError::Malformed("no cluster name"),
            ),
            (
                format!("{BASE}:cluster/o"),
                ArnError::Malformed("no cluster uuid"),
            ),
            (
                format!("{BASE}:cluster/o/not-a-uuid"),
                ArnError::BadUuid("not-a-uuid".into()),
            ),
            (
                format!("{BASE}:cluster/o/{ID}-x"),
                ArnError::BadUuid(format!("{ID}-x")),
            ),
            (
                format!("{BASE}:cluster/o/{ID}/t"),
                ArnError::BadResourceName("a cluster ARN ends after the cluster uuid"),
            ),
            (
                format!("{BASE}:topic/o/{ID}"),
                ArnError::BadResourceName("the resource name is missing"),
            ),
            (
                format!("{BASE}:topic/o/{ID}/"),
                ArnError::BadResourceName("the resource name is missing"),
            ),
            (long, ArnError::TooLong),
        ];
        for (arn, want) in cases {
            assert_eq!(parse_arn(&arn).unwrap_err(), want, "{arn}");
        }
    }

    #[test]
    fn cluster_arn_parser_refuses_other_kinds() {
        let c = cluster();
        assert_eq!(
            parse_cluster_arn(&c.topic_arn("t")),
            Err(ArnError::NotACluster("topic"))
        );
        assert_eq!(
            parse_cluster_arn(&c.group_arn("g")),
            Err(ArnError::NotACluster("group"))
        );
        assert_eq!(
            parse_cluster_arn(&c.transactional_id_arn("x")),
            Err(ArnError::NotACluster("transactional-id"))
        );
    }
}
