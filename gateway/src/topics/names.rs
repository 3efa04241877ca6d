//! Kafka's topic naming rules.

use super::TopicError;

/// Longest legal topic name (Kafka's `Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Names Kafka reserves for its internal topics. Fjord keeps group offsets and transaction
/// state in metadata, so a user topic with one of these names would mislead tools that treat
/// them specially.
const RESERVED: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// Checks a topic name against Kafka's rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.`
/// or `..`, and not a name Kafka reserves.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName(
            "topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(TopicError::InvalidName(
            "topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicError::InvalidName(format!(
            "topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters \
             (it has {})",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicError::InvalidName(format!(
            "topic name {name:?} is illegal: {c:?} is not an ASCII alphanumeric, '.', '_' or '-'"
        )));
    }
    if RESERVED.contains(&name) {
        return Err(TopicError::InvalidName(format!(
            "topic name {name:?} is reserved for Kafka's internal use"
        )));
    }
    Ok(())
}

/// Whether two names would collide in metric names, where Kafka maps '.' to '_' (Kafka refuses
/// to create a topic that collides with an existing one).
pub fn collides(a: &str, b: &str) -> bool {
    a != b && a.len() == b.len() && a.replace('.', "_") == b.replace('.', "_")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn legal_names_pass() {
        for name in ["a", "orders.v1", "A_b-c.9", &"x".repeat(249)] {
            assert!(validate_topic_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn illegal_names_fail_with_reason() {
        let cases = [
            ("", "empty"),
            (".", "\".\""),
            ("..", "\"..\""),
            ("a b", "' '"),
            ("ä", "'ä'"),
            ("__consumer_offsets", "reserved"),
        ];
        for (name, needle) in cases {
            let err = validate_topic_name(name).unwrap_err();
            assert_eq!(err.kafka_code(), 17, "{name}");
            assert!(err.to_string().contains(needle), "{name}: {err}");
        }
        let long = "x".repeat(250);
        assert!(validate_topic_name(&long)
            .unwrap_err()
            .to_string()
            .contains("249"));
    }

    #[test]
    fn dot_underscore_collisions() {
        assert!(collides("a.b", "a_b"));
        assert!(collides("a_b", "a.b"));
        assert!(!collides("a.b", "a.b"));
        assert!(!collides("a.b", "a-b"));
    }
}
