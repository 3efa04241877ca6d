//! Per-cluster host names: how a TLS client names its cluster.
//!
//! Every cluster has one bootstrap name, `<cluster-uuid>.kafka.<region>.<cluster-domain>`
//! (e.g. `6f1c…-…-….kafka.us-east-1.fjord.example`). It contains the region because the Java
//! MSK IAM plugin takes the signing region from the first region name in the host it dialled,
//! and it contains the cluster because TLS clients send it as SNI, which is how the gateway
//! learns the cluster before any byte of Kafka. Metadata on TLS listeners advertises the same
//! name as the broker host to clients that dialled it (or an IP address), so they keep sending
//! it when they reconnect; see [`crate::Gateway::advertised_endpoint`]. A wildcard
//! certificate for `*.kafka.<region>.<cluster-domain>` covers every cluster of a region.

use uuid::Uuid;

/// Longest DNS name.
const MAX_NAME: usize = 253;
/// Longest DNS label.
const MAX_LABEL: usize = 63;
/// The fixed label between the cluster and the region.
const SERVICE_LABEL: &str = "kafka";

/// A cluster named by a host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterHost {
    /// The cluster.
    pub cluster: Uuid,
    /// The region label of the name.
    pub region: String,
}

/// Lower-cases `domain`, drops one trailing dot, and checks it is a DNS name (labels of
/// letters, digits and inner hyphens); `None` if it is not.
pub fn normalize_domain(domain: &str) -> Option<String> {
    let d = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    let ok = !d.is_empty() && d.len() <= MAX_NAME && d.split('.').all(valid_label);
    ok.then_some(d)
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The bootstrap (and advertised broker) name of `cluster` in `region` under `domain` (a
/// domain already passed through [`normalize_domain`]).
pub fn cluster_host_name(cluster: Uuid, region: &str, domain: &str) -> String {
    format!(
        "{}.{SERVICE_LABEL}.{}.{domain}",
        cluster.hyphenated(),
        region.to_ascii_lowercase()
    )
}

/// Parses a host name of the scheme under `domain` (normalized): `None` for any other name,
/// including other domains, a malformed uuid, or a bad region label. Case and one trailing
/// dot are ignored, as DNS does.
pub fn parse_cluster_host(host: &str, domain: &str) -> Option<ClusterHost> {
    if host.len() > MAX_NAME + 1 {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let prefix = host.strip_suffix(domain)?.strip_suffix('.')?;
    let mut labels = prefix.split('.');
    let (Some(cluster), Some(service), Some(region), None) =
        (labels.next(), labels.next(), labels.next(), labels.next())
    else {
        return None;
    };
    // Only the hyphenated form, so that one cluster has one name (certificates, logs).
    if service != SERVICE_LABEL || cluster.len() != 36 || !valid_label(region) {
        return None;
    }
    let cluster = Uuid::try_parse(cluster).ok()?;
    Some(ClusterHost {
        cluster,
        region: region.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Uuid = Uuid::from_u128(0x6f1c_2d3e_4f50_6172_8394_a5b6_c7d8_e9f0);

    #[test]
    fn names_round_trip_and_ignore_case() {
        let name = cluster_host_name(ID, "us-east-1", "fjord.example");
        assert_eq!(
            name,
            "6f1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.kafka.us-east-1.fjord.example"
        );
        let parsed = parse_cluster_host(&name, "fjord.example").unwrap();
        assert_eq!(parsed.cluster, ID);
        assert_eq!(parsed.region, "us-east-1");
        let shouting = format!("{}.", name.to_ascii_uppercase());
        assert_eq!(parse_cluster_host(&shouting, "fjord.example"), Some(parsed));
    }

    #[test]
    fn other_names_are_not_clusters() {
        let d = "fjord.example";
        for host in [
            "localhost",
            "fjord.example",
            "kafka.us-east-1.fjord.example",
            // Another domain, and a domain that only ends like ours.
            "6f1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.kafka.us-east-1.other.example",
            "6f1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.kafka.us-east-1.xfjord.example",
            // Simple (unhyphenated) uuid, wrong service label, extra label, bad region.
            "6f1c2d3e4f5061728394a5b6c7d8e9f0.kafka.us-east-1.fjord.example",
            "6f1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.kafkax.us-east-1.fjord.example",
            "b-1.6f1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.kafka.us-east-1.fjord.example",
            "6f1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.kafka.-us.fjord.example",
            "zz1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.kafka.us-east-1.fjord.example",
        ] {
            assert_eq!(parse_cluster_host(host, d), None, "{host}");
        }
        assert_eq!(parse_cluster_host(&"a".repeat(10_000), d), None);
    }

    #[test]
    fn domains_are_checked() {
        assert_eq!(
            normalize_domain("Fjord.Example."),
            Some("fjord.example".into())
        );
        for bad in ["", ".", "a..b", "-a.b", "a b", "ä.b", &"a".repeat(64)] {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
    }
}
