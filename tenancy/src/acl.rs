//! Kafka ACLs with Kafka's semantics, for principals that authenticate with SCRAM or mTLS.
//!
//! - [`AclBinding`]: one stored ACL (resource pattern + access control entry), with the Kafka
//!   wire codes of every enum, validated for CreateAcls by [`AclBinding::from_wire`].
//! - [`AclBindingFilter`]: the DescribeAcls / DeleteAcls filter, with ANY and MATCH.
//! - [`authorize`]: Kafka's authorizer rule — a matching Deny wins, otherwise a matching Allow is
//!   needed (default deny, as `allow.everyone.if.no.acl.found=false`). Describe is implied by
//!   Read, Write, Delete and Alter; DescribeConfigs by AlterConfigs; `All` matches every
//!   operation; `*` literal names, prefixed patterns, `User:*` and host `*` are wildcards.

use std::net::IpAddr;

/// Kafka's INVALID_REQUEST error code.
pub const INVALID_REQUEST: i16 = 42;
/// The only valid resource name for the CLUSTER resource type.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The literal resource name matching every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";
/// The principal matching every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host matching every host.
pub const WILDCARD_HOST: &str = "*";

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $code:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            /// The Kafka wire code.
            pub fn code(self) -> i8 { match self { $(Self::$v => $code),+ } }
            /// From a Kafka wire code; `None` for UNKNOWN (0) and codes Fjord does not support.
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some(Self::$v),)+ _ => None }
            }
        }
    };
}

wire_enum!(
    /// An ACL resource type.
    ResourceType {
        /// Filter only: any type.
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster (name `kafka-cluster`).
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
    }
);

wire_enum!(
    /// How an ACL's resource name is matched.
    PatternType {
        /// Filter only: any pattern type, names compared exactly.
        Any = 1,
        /// Filter only: every pattern that would match the filter's name.
        Match = 2,
        /// The exact name, or every resource when the name is `*`.
        Literal = 3,
        /// Every resource whose name starts with the name.
        Prefixed = 4,
    }
);

wire_enum!(
    /// An ACL operation.
    AclOperation {
        /// Filter only: any operation.
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Inter-broker actions.
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent produce.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
);

wire_enum!(
    /// Allow or Deny.
    AclPermission {
        /// Filter only: either.
        Any = 1,
        /// Refuse.
        Deny = 2,
        /// Grant.
        Allow = 3,
    }
);

impl ResourceType {
    /// The Kafka error code for a refusal on this type: TOPIC_ (29), GROUP_ (30), CLUSTER_ (31)
    /// or TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53); CLUSTER_ for `Any`.
    pub fn authorization_failed_code(self) -> i16 {
        match self {
            Self::Topic => 29,
            Self::Group => 30,
            Self::Cluster | Self::Any => 31,
            Self::TransactionalId => 53,
        }
    }
}

/// One ACL: a resource pattern and an access control entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AclBinding {
    /// Topic, Group, Cluster or TransactionalId.
    pub resource_type: ResourceType,
    /// The resource name or prefix (`*` with Literal: every resource of the type).
    pub resource_name: String,
    /// Literal or Prefixed.
    pub pattern_type: PatternType,
    /// `<type>:<name>`, e.g. `User:alice`, or `User:*`.
    pub principal: String,
    /// The client address, or `*`.
    pub host: String,
    /// The operation granted or refused.
    pub operation: AclOperation,
    /// Allow or Deny.
    pub permission: AclPermission,
}

/// A CreateAcls binding Kafka would refuse, with Kafka's error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AclError {
    /// INVALID_REQUEST (42).
    #[error("{0}")]
    InvalidRequest(String),
}

impl AclError {
    /// The Kafka error code for the response.
    pub fn error_code(&self) -> i16 {
        match self {
            Self::InvalidRequest(_) => INVALID_REQUEST,
        }
    }
}

fn invalid(msg: impl Into<String>) -> AclError {
    AclError::InvalidRequest(msg.into())
}

fn decode<T>(code: i8, what: &str, f: fn(i8) -> Option<T>) -> Result<T, AclError> {
    f(code).ok_or_else(|| invalid(format!("Invalid {what} {code}")))
}

impl AclBinding {
    /// Builds a binding from CreateAcls wire values, refusing what Kafka refuses: unknown codes,
    /// ANY/MATCH, an empty name, a CLUSTER name other than `kafka-cluster`, a principal without
    /// `type:`, a host that is neither `*` nor an IP address.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Self, AclError> {
        let resource_type = decode(resource_type, "resourceType", ResourceType::from_code)?;
        let pattern_type = decode(pattern_type, "patternType", PatternType::from_code)?;
        let operation = decode(operation, "operation", AclOperation::from_code)?;
        let permission = decode(permission, "permissionType", AclPermission::from_code)?;
        let b = Self {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        };
        b.validate()?;
        Ok(b)
    }

    /// Checks a binding as CreateAcls does.
    pub fn validate(&self) -> Result<(), AclError> {
        if self.resource_type == ResourceType::Any {
            return Err(invalid("Invalid resourceType ANY"));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(invalid(format!(
                "Invalid patternType {:?}",
                self.pattern_type
            )));
        }
        if self.operation == AclOperation::Any {
            return Err(invalid("Invalid operation ANY"));
        }
        if self.permission == AclPermission::Any {
            return Err(invalid("Invalid permissionType ANY"));
        }
        if self.resource_name.is_empty() {
            return Err(invalid("Resource name should not be empty"));
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(invalid(
                "The only valid name for the CLUSTER resource is kafka-cluster",
            ));
        }
        match self.principal.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
            _ => {
                return Err(invalid(format!(
                    "Could not parse principal from `{}` (expected <type>:<name>, e.g. User:alice)",
                    self.principal
                )))
            }
        }
        if self.host != WILDCARD_HOST && self.host.parse::<IpAddr>().is_err() {
            return Err(invalid(format!(
                "Invalid host `{}`: expected * or an IP address",
                self.host
            )));
        }
        Ok(())
    }

    fn matches_resource(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD_RESOURCE
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
                PatternType::Any | PatternType::Match => false,
            }
    }

    fn matches_principal_and_host(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == WILDCARD_HOST || same_host(&self.host, host))
    }
}

/// Compares addresses as addresses when both parse (so `::1` equals `0:0:0:0:0:0:0:1`).
fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A DescribeAcls / DeleteAcls filter. `None` strings match anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// A type, or Any.
    pub resource_type: ResourceType,
    /// A name, or `None` for any.
    pub resource_name: Option<String>,
    /// Literal, Prefixed, Any (exact name, any pattern type) or Match (patterns matching the name).
    pub pattern_type: PatternType,
    /// An exact principal (no wildcard semantics), or `None`.
    pub principal: Option<String>,
    /// An exact host, or `None`.
    pub host: Option<String>,
    /// An operation, or Any.
    pub operation: AclOperation,
    /// A permission, or Any.
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// The filter matching every binding.
    pub fn any() -> Self {
        Self {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// Builds a filter from DescribeAcls / DeleteAcls wire values; unknown codes are
    /// INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, AclError> {
        Ok(Self {
            resource_type: decode(resource_type, "resourceType", ResourceType::from_code)?,
            resource_name: resource_name.map(str::to_string),
            pattern_type: decode(pattern_type, "patternType", PatternType::from_code)?,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: decode(operation, "operation", AclOperation::from_code)?,
            permission: decode(permission, "permissionType", AclPermission::from_code)?,
        })
    }

    /// Whether `binding` matches, with Kafka's `ResourcePatternFilter` / `AccessControlEntryFilter`
    /// semantics.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != b.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        // MATCH: every stored pattern that would apply to a resource called `name`.
        match b.pattern_type {
            PatternType::Literal => {
                *name == b.resource_name || b.resource_name == WILDCARD_RESOURCE
            }
            PatternType::Prefixed => name.starts_with(&b.resource_name),
            PatternType::Any | PatternType::Match => false,
        }
    }

    fn matches_entry(&self, b: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission == AclPermission::Any || self.permission == b.permission)
    }
}

/// Which ACL decided an authorization, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclDecision<'a> {
    /// Allowed by this ACL.
    Allowed(&'a AclBinding),
    /// Refused by this Deny ACL.
    Denied(&'a AclBinding),
    /// No ACL allows it: refused by default.
    NoMatch,
}

impl AclDecision<'_> {
    /// Whether the operation is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed(_))
    }
}

/// Kafka's authorizer decision for `principal` at `host` doing `operation` on a resource.
pub fn decide<'a>(
    acls: &'a [AclBinding],
    principal: &str,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> AclDecision<'a> {
    let applicable = || {
        acls.iter().filter(move |a| {
            a.matches_resource(resource_type, name) && a.matches_principal_and_host(principal, host)
        })
    };
    // A Deny applies only for the exact operation or All (a Deny of Read does not deny Describe).
    let deny = applicable().find(|a| {
        a.permission == AclPermission::Deny
            && (a.operation == operation || a.operation == AclOperation::All)
    });
    if let Some(a) = deny {
        return AclDecision::Denied(a);
    }
    let implied: &[AclOperation] = match operation {
        AclOperation::Describe => &[
            AclOperation::Describe,
            AclOperation::Read,
            AclOperation::Write,
            AclOperation::Delete,
            AclOperation::Alter,
        ],
        AclOperation::DescribeConfigs => {
            &[AclOperation::DescribeConfigs, AclOperation::AlterConfigs]
        }
        _ => std::slice::from_ref(&operation),
    };
    applicable()
        .find(|a| {
            a.permission == AclPermission::Allow
                && (a.operation == AclOperation::All || implied.contains(&a.operation))
        })
        .map_or(AclDecision::NoMatch, AclDecision::Allowed)
}

/// Whether `principal` at `host` may do `operation` on the named resource (see [`decide`]).
pub fn authorize(
    acls: &[AclBinding],
    principal: &str,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    decide(acls, principal, host, operation, resource_type, name).is_allowed()
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
