//! Which Kafka APIs and versions the gateway answers, and the ApiVersions response.
//!
//! Each range is what Fjord implements intersected with what `kafka-protocol` can decode; the
//! group APIs are whatever the storage node's group coordinator speaks, because the gateway
//! forwards their bodies unchanged.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

/// (api key, min, max) of the APIs the gateway handles itself or via the admin handlers.
const GATEWAY_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    // v13+ addresses topics by id; v16 is the newest whose request fields Fjord needs no more of.
    (ApiKey::Fetch, 4, 16),
    // v7 adds MAX_TIMESTAMP (-3); v8+ add tiered-storage specific offsets Fjord does not expose.
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    // Kafka 4.0's ranges (v0 was removed there); librdkafka uses v1, the Java client v3.
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
];

/// The group APIs the coordinator speaks: the gateway forwards their bodies unchanged, so it
/// advertises exactly the coordinator's ranges.
fn group_versions() -> &'static [(i16, i16, i16)] {
    fjord_storage_node::groups::SUPPORTED_VERSIONS
}

/// The API keys that are forwarded to a group coordinator.
pub const GROUP_APIS: &[ApiKey] = &[
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::DeleteGroups,
];

/// The version range the gateway answers for `api`, or `None` if it does not handle it.
pub fn supported(api: ApiKey) -> Option<VersionRange> {
    let ours = if GROUP_APIS.contains(&api) {
        group_versions()
            .iter()
            .find(|(key, _, _)| *key == api as i16)
            .map(|&(_, min, max)| VersionRange { min, max })?
    } else {
        GATEWAY_VERSIONS
            .iter()
            .find(|(key, _, _)| *key == api)
            .map(|&(_, min, max)| VersionRange { min, max })?
    };
    let range = ours.intersect(&api.valid_versions());
    (!range.is_empty()).then_some(range)
}

/// Whether `version` of `api` is answered.
pub fn is_supported(api: ApiKey, version: i16) -> bool {
    supported(api).is_some_and(|r| r.min <= version && version <= r.max)
}

/// Every supported API with its range, ordered by key.
pub fn all() -> Vec<(ApiKey, VersionRange)> {
    let mut out: Vec<(ApiKey, VersionRange)> = GATEWAY_VERSIONS
        .iter()
        .map(|(k, _, _)| *k)
        .chain(GROUP_APIS.iter().copied())
        .filter_map(|k| supported(k).map(|r| (k, r)))
        .collect();
    out.sort_by_key(|(k, _)| *k as i16);
    out
}

/// The ApiVersions response; `error` is UNSUPPORTED_VERSION when the client asked for a
/// version above ours (then the caller encodes it as v0, which every client can read).
pub fn api_versions_response(error: Option<ResponseError>) -> ApiVersionsResponse {
    let api_keys = all()
        .into_iter()
        .map(|(k, r)| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_api_keys(api_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertises_at_least_the_msk_serverless_ranges() {
        // (key, min, max) that MSK Serverless advertises (reference/msk-iam.md), without the
        // group APIs, whose ranges come from the coordinator.
        let msk = [
            (ApiKey::Produce, 7, 9),
            (ApiKey::Fetch, 10, 12),
            (ApiKey::ListOffsets, 5, 6),
            (ApiKey::Metadata, 7, 11),
            (ApiKey::FindCoordinator, 2, 3),
            (ApiKey::SaslHandshake, 1, 1),
            (ApiKey::ApiVersions, 2, 3),
            (ApiKey::CreateTopics, 3, 7),
            (ApiKey::DeleteTopics, 3, 6),
            (ApiKey::InitProducerId, 1, 4),
            (ApiKey::OffsetForLeaderEpoch, 2, 4),
        ];
        for (key, min, max) in msk {
            let r = supported(key).unwrap_or_else(|| panic!("{key:?} not supported"));
            assert!(r.min <= min && r.max >= max, "{key:?}: {r}");
        }
        assert!(supported(ApiKey::AddPartitionsToTxn).is_none());
    }
}
