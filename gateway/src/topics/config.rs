//! Topic configs: which exist, which a tenant may set, their defaults, validation, and what
//! DescribeConfigs shows.
//!
//! The settable set is MSK Serverless's (reference/msk-iam.md); everything else Kafka knows is
//! shown read-only with the value Fjord behaves as, because tools (and terraform providers)
//! describe topics and compare these. Only explicitly set values are stored in
//! [`fjord_metadata::Topic::configs`]; defaults are applied when reading, so changing a default
//! later changes it for every topic that never set it, as in Kafka.

use std::collections::BTreeMap;

use fjord_storage_node::TopicLimits;

use super::TopicError;

/// Default `max.message.bytes` (Kafka's and MSK's: 1 MiB plus the batch overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: i32 = 1_048_588;
/// MSK Serverless's ceiling for `max.message.bytes` (8 MiB).
pub const MSK_MAX_MESSAGE_BYTES: i32 = 8 * 1024 * 1024;
/// Default `retention.ms`: 7 days, as on MSK Serverless.
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Default `retention.bytes`: 250 GiB per partition, as on MSK Serverless.
pub const DEFAULT_RETENTION_BYTES: i64 = 250 * 1024 * 1024 * 1024;

/// Value type of a config, as DescribeConfigs (v3+) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean,
    /// Free text.
    String,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// Floating point.
    Double,
    /// Comma-separated list.
    List,
}

impl ConfigType {
    /// Kafka's `ConfigType` code on the wire.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// Where a described value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    TopicOverride,
    /// A fixed broker-side setting of the service (what Kafka calls a static broker config).
    StaticBroker,
    /// The default.
    Default,
}

impl ConfigSource {
    /// Kafka's `ConfigSource` code on the wire.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigSource::TopicOverride => 1,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// A lower-precedence value that a described config would fall back to (Kafka's synonyms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// Config name at that level (e.g. `log.retention.ms` for `retention.ms`).
    pub name: String,
    /// Its value.
    pub value: String,
    /// Its level.
    pub source: ConfigSource,
}

/// One config of a topic as DescribeConfigs shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Effective value.
    pub value: Option<String>,
    /// Whether a tenant may change it.
    pub read_only: bool,
    /// Whether the value is the default (not set on the topic).
    pub is_default: bool,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is secret (never, for topic configs; kept for the wire format).
    pub sensitive: bool,
    /// Value type.
    pub config_type: ConfigType,
    /// One-line documentation.
    pub documentation: &'static str,
    /// The values it falls back to, highest precedence first (the topic override, if any,
    /// then the service-wide default).
    pub synonyms: Vec<ConfigSynonym>,
}

/// How a settable config's value is checked.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// `cleanup.policy`: a list of `delete` / `compact`; compaction is not built yet.
    CleanupPolicy,
    /// One of a fixed set of words (case-sensitive, as Kafka).
    OneOf(&'static [&'static str]),
    /// `max.message.bytes`: 0..=the service's limit.
    MaxMessageBytes,
    /// A 64-bit integer >= 0.
    NonNegativeLong,
    /// A 64-bit integer that is -1 (unlimited) or > 0.
    UnlimitedOrPositiveLong,
}

/// The definition of one topic config.
#[derive(Clone, Copy, Debug)]
struct Def {
    name: &'static str,
    /// `None` for read-only configs.
    rule: Option<Rule>,
    ty: ConfigType,
    default: &'static str,
    /// The service-wide (broker) config it defaults from, for synonyms.
    broker: &'static str,
    doc: &'static str,
}

const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const LONG_MAX: &str = "9223372036854775807";

/// Every topic config Fjord knows, sorted by name (DescribeConfigs lists them in this order).
#[rustfmt::skip]
const DEFS: &[Def] = &[
    Def { name: "cleanup.policy", rule: Some(Rule::CleanupPolicy), ty: ConfigType::List, default: "delete", broker: "log.cleanup.policy", doc: "What happens to old data: delete (by retention.ms / retention.bytes). compact is not supported yet." },
    Def { name: "compression.type", rule: Some(Rule::OneOf(COMPRESSION_TYPES)), ty: ConfigType::String, default: "producer", broker: "compression.type", doc: "Compression of stored batches. Fjord stores batches as the producer sent them." },
    Def { name: "delete.retention.ms", rule: None, ty: ConfigType::Long, default: "86400000", broker: "log.cleaner.delete.retention.ms", doc: "How long delete markers are kept on compacted topics (read-only)." },
    Def { name: "file.delete.delay.ms", rule: None, ty: ConfigType::Long, default: "60000", broker: "log.segment.delete.delay.ms", doc: "Delay before deleting a file (read-only; storage is managed by Fjord)." },
    Def { name: "flush.messages", rule: None, ty: ConfigType::Long, default: LONG_MAX, broker: "log.flush.interval.messages", doc: "Fjord fsyncs its write-ahead log before every acknowledgement (read-only)." },
    Def { name: "flush.ms", rule: None, ty: ConfigType::Long, default: LONG_MAX, broker: "log.flush.interval.ms", doc: "Fjord fsyncs its write-ahead log before every acknowledgement (read-only)." },
    Def { name: "index.interval.bytes", rule: None, ty: ConfigType::Int, default: "4096", broker: "log.index.interval.bytes", doc: "Offset index granularity (read-only; storage is managed by Fjord)." },
    Def { name: "max.compaction.lag.ms", rule: None, ty: ConfigType::Long, default: LONG_MAX, broker: "log.cleaner.max.compaction.lag.ms", doc: "Compaction lag bound (read-only; compaction is not supported yet)." },
    Def { name: "max.message.bytes", rule: Some(Rule::MaxMessageBytes), ty: ConfigType::Int, default: "1048588", broker: "message.max.bytes", doc: "Largest record batch the topic accepts, in bytes." },
    Def { name: "message.timestamp.difference.max.ms", rule: Some(Rule::NonNegativeLong), ty: ConfigType::Long, default: LONG_MAX, broker: "log.message.timestamp.difference.max.ms", doc: "Largest allowed difference between a CreateTime timestamp and the broker's clock." },
    Def { name: "message.timestamp.type", rule: Some(Rule::OneOf(TIMESTAMP_TYPES)), ty: ConfigType::String, default: "CreateTime", broker: "log.message.timestamp.type", doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches on append." },
    Def { name: "min.cleanable.dirty.ratio", rule: None, ty: ConfigType::Double, default: "0.5", broker: "log.cleaner.min.cleanable.ratio", doc: "Compaction trigger (read-only; compaction is not supported yet)." },
    Def { name: "min.compaction.lag.ms", rule: None, ty: ConfigType::Long, default: "0", broker: "log.cleaner.min.compaction.lag.ms", doc: "Compaction lag bound (read-only; compaction is not supported yet)." },
    Def { name: "min.insync.replicas", rule: None, ty: ConfigType::Int, default: "2", broker: "min.insync.replicas", doc: "Durability is Fjord's: acknowledged data is fsynced and then tiered to object storage (read-only)." },
    Def { name: "preallocate", rule: None, ty: ConfigType::Boolean, default: "false", broker: "log.preallocate", doc: "Segment preallocation (read-only; storage is managed by Fjord)." },
    Def { name: "retention.bytes", rule: Some(Rule::UnlimitedOrPositiveLong), ty: ConfigType::Long, default: "268435456000", broker: "log.retention.bytes", doc: "Bytes kept per partition before old data is deleted; -1 for unlimited." },
    Def { name: "retention.ms", rule: Some(Rule::UnlimitedOrPositiveLong), ty: ConfigType::Long, default: "604800000", broker: "log.retention.ms", doc: "How long data is kept, in milliseconds; -1 for unlimited." },
    Def { name: "segment.bytes", rule: None, ty: ConfigType::Int, default: "1073741824", broker: "log.segment.bytes", doc: "Segment size (read-only; storage is managed by Fjord)." },
    Def { name: "segment.index.bytes", rule: None, ty: ConfigType::Int, default: "10485760", broker: "log.index.size.max.bytes", doc: "Index size (read-only; storage is managed by Fjord)." },
    Def { name: "segment.jitter.ms", rule: None, ty: ConfigType::Long, default: "0", broker: "log.roll.jitter.ms", doc: "Segment roll jitter (read-only; storage is managed by Fjord)." },
    Def { name: "segment.ms", rule: None, ty: ConfigType::Long, default: "604800000", broker: "log.roll.ms", doc: "Segment roll time (read-only; storage is managed by Fjord)." },
    Def { name: "unclean.leader.election.enable", rule: None, ty: ConfigType::Boolean, default: "false", broker: "unclean.leader.election.enable", doc: "Fjord never elects a replica that could lose acknowledged data (read-only)." },
];

fn def(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// Names of the configs a tenant may set.
pub fn settable_config_names() -> impl Iterator<Item = &'static str> {
    DEFS.iter().filter(|d| d.rule.is_some()).map(|d| d.name)
}

fn invalid_value(name: &str, value: &str, why: &str) -> TopicError {
    TopicError::InvalidConfig(format!(
        "invalid value {value:?} for configuration {name}: {why}"
    ))
}

fn parse_long(name: &str, value: &str) -> Result<i64, TopicError> {
    value
        .parse::<i64>()
        .map_err(|_| invalid_value(name, value, "not a 64-bit integer"))
}

/// Checks one settable config and returns its normalised value (trimmed; lists de-duplicated).
fn check(
    def: &Def,
    rule: Rule,
    raw: &str,
    max_message_bytes_limit: i32,
) -> Result<String, TopicError> {
    let value = raw.trim();
    match rule {
        Rule::CleanupPolicy => {
            let mut policies: Vec<&str> = Vec::new();
            for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match p {
                    "delete" => {}
                    "compact" => {
                        return Err(TopicError::InvalidConfig(format!(
                            "cleanup.policy={value}: compaction is not supported yet; use delete"
                        )))
                    }
                    other => {
                        return Err(invalid_value(
                            def.name,
                            value,
                            &format!("{other:?} is not one of delete, compact"),
                        ))
                    }
                }
                if !policies.contains(&p) {
                    policies.push(p);
                }
            }
            if policies.is_empty() {
                return Err(invalid_value(def.name, value, "the list is empty"));
            }
            Ok(policies.join(","))
        }
        Rule::OneOf(words) => {
            if words.contains(&value) {
                Ok(value.to_owned())
            } else {
                Err(invalid_value(
                    def.name,
                    value,
                    &format!("must be one of {}", words.join(", ")),
                ))
            }
        }
        Rule::MaxMessageBytes => {
            let n: i32 = value
                .parse()
                .map_err(|_| invalid_value(def.name, value, "not a 32-bit integer"))?;
            if n < 0 {
                return Err(invalid_value(def.name, value, "must be at least 0"));
            }
            if n > max_message_bytes_limit {
                return Err(TopicError::InvalidConfig(format!(
                    "max.message.bytes {n} exceeds the limit {max_message_bytes_limit}"
                )));
            }
            Ok(n.to_string())
        }
        Rule::NonNegativeLong => {
            let n = parse_long(def.name, value)?;
            if n < 0 {
                return Err(invalid_value(def.name, value, "must be at least 0"));
            }
            Ok(n.to_string())
        }
        Rule::UnlimitedOrPositiveLong => {
            let n = parse_long(def.name, value)?;
            if n != -1 && n <= 0 {
                return Err(invalid_value(
                    def.name,
                    value,
                    "must be -1 (unlimited) or greater than 0",
                ));
            }
            Ok(n.to_string())
        }
    }
}

/// Validates one config a tenant wants to set and returns the value to store.
pub fn validate_config(
    name: &str,
    value: &str,
    max_message_bytes_limit: i32,
) -> Result<String, TopicError> {
    let Some(d) = def(name) else {
        return Err(TopicError::InvalidConfig(format!(
            "unknown topic config {name:?}; settable configs are: {}",
            settable_config_names().collect::<Vec<_>>().join(", ")
        )));
    };
    let Some(rule) = d.rule else {
        return Err(TopicError::PolicyViolation(format!(
            "topic config {name} is read-only on Fjord"
        )));
    };
    check(d, rule, value, max_message_bytes_limit)
}

/// Validates a full set of topic configs, returning the normalised map to store.
pub fn validate_configs(
    configs: &BTreeMap<String, String>,
    max_message_bytes_limit: i32,
) -> Result<BTreeMap<String, String>, TopicError> {
    configs
        .iter()
        .map(|(k, v)| Ok((k.clone(), validate_config(k, v, max_message_bytes_limit)?)))
        .collect()
}

/// One change of IncrementalAlterConfigs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterOp {
    /// Set the config to this value.
    Set(String),
    /// Remove the override (back to the default).
    Delete,
    /// Add items to a list config.
    Append(String),
    /// Remove items from a list config.
    Subtract(String),
}

/// A named [`AlterOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigAlteration {
    /// Config name.
    pub name: String,
    /// What to do with it.
    pub op: AlterOp,
}

/// Applies incremental changes to the stored overrides and validates the result (every op is
/// checked even if a later one deletes the config again, as Kafka does). Duplicate names in
/// one request are refused.
pub fn apply_incremental(
    current: &BTreeMap<String, String>,
    ops: &[ConfigAlteration],
    max_message_bytes_limit: i32,
) -> Result<BTreeMap<String, String>, TopicError> {
    let mut out = current.clone();
    for (i, alteration) in ops.iter().enumerate() {
        let name = alteration.name.as_str();
        if ops[..i].iter().any(|o| o.name == name) {
            return Err(TopicError::InvalidRequest(format!(
                "config {name} appears more than once in the request"
            )));
        }
        let d = def(name);
        match &alteration.op {
            AlterOp::Set(value) => {
                let v = validate_config(name, value, max_message_bytes_limit)?;
                out.insert(name.to_owned(), v);
            }
            AlterOp::Delete => {
                if d.is_none() {
                    // Refuse rather than ignore: a typo must not look like a success.
                    validate_config(name, "", max_message_bytes_limit)?;
                }
                out.remove(name);
            }
            AlterOp::Append(items) | AlterOp::Subtract(items) => {
                let Some(d) = d else {
                    validate_config(name, items, max_message_bytes_limit)?;
                    continue;
                };
                if d.ty != ConfigType::List {
                    return Err(TopicError::InvalidConfig(format!(
                        "config {name} is not a list; APPEND and SUBTRACT apply to list configs only"
                    )));
                }
                let base = out.get(name).map(String::as_str).unwrap_or(d.default);
                let mut list: Vec<String> = split_list(base);
                if matches!(alteration.op, AlterOp::Append(_)) {
                    for item in split_list(items) {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                } else {
                    let remove = split_list(items);
                    list.retain(|x| !remove.contains(x));
                }
                let v = validate_config(name, &list.join(","), max_message_bytes_limit)?;
                out.insert(name.to_owned(), v);
            }
        }
    }
    Ok(out)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every known config of a topic with its effective value.
pub fn describe(configs: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    DEFS.iter()
        .map(|d| {
            let set = configs.get(d.name);
            let default = ConfigSynonym {
                name: d.broker.to_owned(),
                value: d.default.to_owned(),
                source: ConfigSource::Default,
            };
            let mut synonyms = Vec::with_capacity(2);
            if let Some(v) = set {
                synonyms.push(ConfigSynonym {
                    name: d.name.to_owned(),
                    value: v.clone(),
                    source: ConfigSource::TopicOverride,
                });
            }
            synonyms.push(default);
            ConfigEntry {
                name: d.name.to_owned(),
                value: Some(set.cloned().unwrap_or_else(|| d.default.to_owned())),
                read_only: d.rule.is_none(),
                is_default: set.is_none(),
                source: if set.is_some() {
                    ConfigSource::TopicOverride
                } else {
                    ConfigSource::Default
                },
                sensitive: false,
                config_type: d.ty,
                documentation: d.doc,
                synonyms,
            }
        })
        .collect()
}

/// The service-wide (Kafka "broker") configs, for DescribeConfigs on a BROKER resource. All
/// read-only: every gateway is the same and tenants cannot change them. They are the broker-side
/// names of the topic defaults plus the few broker settings clients look at.
pub fn broker_configs(default_partitions: i32) -> Vec<ConfigEntry> {
    let entry = |name: &str, value: String, ty: ConfigType, doc: &'static str| ConfigEntry {
        name: name.to_owned(),
        value: Some(value.clone()),
        read_only: true,
        is_default: true,
        source: ConfigSource::Default,
        sensitive: false,
        config_type: ty,
        documentation: doc,
        synonyms: vec![ConfigSynonym {
            name: name.to_owned(),
            value,
            source: ConfigSource::Default,
        }],
    };
    let mut out: Vec<ConfigEntry> = vec![
        entry(
            "auto.create.topics.enable",
            "false".into(),
            ConfigType::Boolean,
            "Topics are never created implicitly.",
        ),
        entry(
            "default.replication.factor",
            super::REPORTED_REPLICATION_FACTOR.to_string(),
            ConfigType::Int,
            "Each partition has one owner; durability comes from the WAL and object storage.",
        ),
        entry(
            "delete.topic.enable",
            "true".into(),
            ConfigType::Boolean,
            "Topics can be deleted.",
        ),
        entry(
            "num.partitions",
            default_partitions.to_string(),
            ConfigType::Int,
            "Partitions of a topic created without a partition count.",
        ),
    ];
    for d in DEFS {
        if !out.iter().any(|e| e.name == d.broker) {
            out.push(entry(d.broker, d.default.to_owned(), d.ty, d.doc));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The effective, typed values of the settable configs of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSettings {
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `message.timestamp.type=LogAppendTime`.
    pub log_append_time: bool,
    /// `message.timestamp.difference.max.ms`.
    pub timestamp_difference_max_ms: i64,
    /// `retention.ms` (-1 = unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `compression.type`.
    pub compression_type: String,
}

impl TopicSettings {
    /// Reads the stored overrides, falling back to the default for anything missing. Stored
    /// values were validated when written; one that does not parse (written by another version)
    /// falls back to the default with a warning rather than making the topic unusable.
    pub fn from_configs(configs: &BTreeMap<String, String>) -> Self {
        fn get<T: std::str::FromStr>(configs: &BTreeMap<String, String>, name: &str, d: T) -> T {
            match configs.get(name) {
                None => d,
                Some(v) => v.trim().parse().unwrap_or_else(|_| {
                    tracing::warn!(config = name, value = %v, "stored topic config does not parse; using the default");
                    d
                }),
            }
        }
        TopicSettings {
            max_message_bytes: get(configs, "max.message.bytes", DEFAULT_MAX_MESSAGE_BYTES),
            log_append_time: configs
                .get("message.timestamp.type")
                .is_some_and(|v| v == "LogAppendTime"),
            timestamp_difference_max_ms: get(
                configs,
                "message.timestamp.difference.max.ms",
                i64::MAX,
            ),
            retention_ms: get(configs, "retention.ms", DEFAULT_RETENTION_MS),
            retention_bytes: get(configs, "retention.bytes", DEFAULT_RETENTION_BYTES),
            compression_type: configs
                .get("compression.type")
                .cloned()
                .unwrap_or_else(|| "producer".to_owned()),
        }
    }

    /// The limits the storage node enforces on produce.
    pub fn limits(&self) -> TopicLimits {
        TopicLimits {
            max_message_bytes: u32::try_from(self.max_message_bytes).unwrap_or(0),
            log_append_time: self.log_append_time,
        }
    }
}

/// The produce limits of a topic with these stored configs.
pub fn limits(configs: &BTreeMap<String, String>) -> TopicLimits {
    TopicSettings::from_configs(configs).limits()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
