//! The canonical string form of a Kafka ACL binding, as stored by
//! [`fjord_metadata::MetadataStore::create_acls`].
//!
//! Layout (version 1): the prefix `acl1:` followed by a compact JSON array of exactly seven
//! elements, in this order:
//!
//! ```text
//! acl1:[<resource type code>,<pattern type code>,<operation code>,<permission code>,"<principal>","<host>","<resource name>"]
//! ```
//!
//! The four codes are Kafka's wire codes ([`crate::acl::ResourceType::code`] and friends), which
//! Kafka never renumbers; the three strings are JSON strings as `serde_json` writes them (the
//! same escaping every time). So one binding has exactly one encoding: the store can use the
//! string as its key (a duplicate create is a no-op, a delete names exactly what was stored),
//! and decoding gives the binding back unchanged. A later layout would use another prefix.

use crate::acl::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};

/// The prefix of version-1 encodings.
pub const PREFIX: &str = "acl1:";

/// Why a stored string is not an ACL binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored ACL binding {stored:?} is invalid: {reason}")]
pub struct AclCodecError {
    /// The string (ACL strings hold no secret).
    pub stored: String,
    /// What is wrong.
    pub reason: String,
}

/// Encodes a binding canonically.
pub fn encode(b: &AclBinding) -> String {
    let arr = serde_json::json!([
        b.resource_type.code(),
        b.pattern_type.code(),
        b.operation.code(),
        b.permission.code(),
        b.principal,
        b.host,
        b.resource_name,
    ]);
    format!("{PREFIX}{arr}")
}

/// Decodes a string made by [`encode`], validating the binding as CreateAcls would.
pub fn decode(s: &str) -> Result<AclBinding, AclCodecError> {
    let fail = |reason: &str| AclCodecError {
        stored: s.to_owned(),
        reason: reason.to_owned(),
    };
    let body = s
        .strip_prefix(PREFIX)
        .ok_or_else(|| fail("unknown encoding prefix"))?;
    let v: Vec<serde_json::Value> =
        serde_json::from_str(body).map_err(|e| fail(&format!("not a JSON array: {e}")))?;
    let [rt, pt, op, perm, principal, host, name] = v.as_slice() else {
        return Err(fail("expected 7 elements"));
    };
    let code = |v: &serde_json::Value| -> Result<i8, AclCodecError> {
        v.as_i64()
            .and_then(|c| i8::try_from(c).ok())
            .ok_or_else(|| fail("a code is not a small integer"))
    };
    let text = |v: &serde_json::Value| -> Result<String, AclCodecError> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail("a name is not a string"))
    };
    let binding = AclBinding {
        resource_type: ResourceType::from_code(code(rt)?).ok_or_else(|| fail("resource type"))?,
        pattern_type: PatternType::from_code(code(pt)?).ok_or_else(|| fail("pattern type"))?,
        operation: AclOperation::from_code(code(op)?).ok_or_else(|| fail("operation"))?,
        permission: AclPermission::from_code(code(perm)?).ok_or_else(|| fail("permission"))?,
        principal: text(principal)?,
        host: text(host)?,
        resource_name: text(name)?,
    };
    binding.validate().map_err(|e| fail(&e.to_string()))?;
    Ok(binding)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn binding(name: &str, principal: &str) -> AclBinding {
        AclBinding::from_wire(2, name, 4, principal, "*", 3, 3).unwrap()
    }

    #[test]
    fn round_trips_and_is_canonical() {
        for (name, principal) in [
            ("orders", "User:alice"),
            ("we\"ird|na,me]", "User:bob\\x"),
            ("ünïcode", "User:*"),
        ] {
            let b = binding(name, principal);
            let s = encode(&b);
            assert!(s.starts_with(PREFIX));
            assert_eq!(decode(&s).unwrap(), b);
            assert_eq!(encode(&decode(&s).unwrap()), s, "one encoding per binding");
        }
        assert_eq!(
            encode(&binding("orders", "User:alice")),
            r#"acl1:[2,4,3,3,"User:alice","*","orders"]"#
        );
    }

    #[test]
    fn garbage_is_refused() {
        for s in [
            "",
            "acl2:[]",
            "acl1:",
            "acl1:[1,2,3]",
            r#"acl1:[2,4,3,3,"User:a","*",5]"#,
            r#"acl1:[2,4,300,3,"User:a","*","t"]"#,
            r#"acl1:[1,4,3,3,"User:a","*","t"]"#,
            r#"acl1:[2,4,3,3,"nocolon","*","t"]"#,
        ] {
            assert!(decode(s).is_err(), "{s:?}");
        }
    }
}
