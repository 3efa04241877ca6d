//! Tests of the config table, validation and describe output.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn table_defaults_match_the_typed_defaults() {
    let d = TopicSettings::from_configs(&BTreeMap::new());
    let described = describe(&BTreeMap::new());
    let value = |n: &str| {
        described
            .iter()
            .find(|e| e.name == n)
            .and_then(|e| e.value.clone())
            .unwrap()
    };
    assert_eq!(value("max.message.bytes"), d.max_message_bytes.to_string());
    assert_eq!(value("retention.ms"), d.retention_ms.to_string());
    assert_eq!(value("retention.bytes"), d.retention_bytes.to_string());
    assert_eq!(
        value("message.timestamp.difference.max.ms"),
        d.timestamp_difference_max_ms.to_string()
    );
    assert_eq!(value("compression.type"), d.compression_type);
    assert_eq!(d.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
    // The table stays sorted, so DescribeConfigs output is stable.
    assert!(DEFS.windows(2).all(|w| w[0].name < w[1].name));
    // Every default of a settable config passes its own validation.
    for d in DEFS.iter().filter(|d| d.rule.is_some()) {
        validate_config(d.name, d.default, MSK_MAX_MESSAGE_BYTES).unwrap();
    }
}

#[test]
fn unparsable_stored_values_fall_back_to_defaults() {
    let mut stored = BTreeMap::new();
    stored.insert("max.message.bytes".to_owned(), "lots".to_owned());
    stored.insert("retention.ms".to_owned(), "-1".to_owned());
    let s = TopicSettings::from_configs(&stored);
    assert_eq!(s.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
    assert_eq!(s.retention_ms, -1);
    assert_eq!(s.limits().max_message_bytes, 1_048_588);
}

#[test]
fn broker_configs_are_read_only_and_named_as_kafka() {
    let b = broker_configs(3);
    let get = |n: &str| b.iter().find(|e| e.name == n).unwrap();
    assert_eq!(get("num.partitions").value.as_deref(), Some("3"));
    assert_eq!(
        get("auto.create.topics.enable").value.as_deref(),
        Some("false")
    );
    assert_eq!(get("log.retention.ms").value.as_deref(), Some("604800000"));
    assert_eq!(get("message.max.bytes").value.as_deref(), Some("1048588"));
    assert!(b.iter().all(|e| e.read_only));
    assert!(b.windows(2).all(|w| w[0].name < w[1].name));
}

#[test]
fn cleanup_policy_lists_are_normalised() {
    assert_eq!(
        validate_config("cleanup.policy", " delete , delete", 1).unwrap(),
        "delete"
    );
    let out = apply_incremental(
        &BTreeMap::new(),
        &[ConfigAlteration {
            name: "cleanup.policy".into(),
            op: AlterOp::Append("delete".into()),
        }],
        1,
    )
    .unwrap();
    assert_eq!(out["cleanup.policy"], "delete");
}
