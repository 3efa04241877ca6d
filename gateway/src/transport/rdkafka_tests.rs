//! The TLS listeners with a real client: librdkafka over SASL_SSL (PLAIN) and over mutual TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::tests::gateway;
use crate::config::{ListenerAuth, ListenerConfig, SaslFamily, TlsSettings};
use crate::Gateway;

async fn serve(gw: &Arc<Gateway>) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listeners = gw.bind_listeners().await.unwrap();
    let port = listeners[0].local_addr().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gw.clone().serve_listeners(listeners, async move {
        let _ = rx.await;
    }));
    (port, tx)
}

/// Asks for metadata twice from a blocking thread (librdkafka blocks) and returns the brokers
/// of the second answer. librdkafka drops its bootstrap connection once the first Metadata
/// names the brokers, so the second request travels over a new connection to the advertised
/// broker: that name must resolve and its TLS handshake and login must succeed too.
async fn brokers(config: ClientConfig) -> Vec<(String, i32)> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().unwrap();
        consumer
            .fetch_metadata(None, Duration::from_secs(20))
            .expect("metadata over TLS from the bootstrap broker");
        let md = consumer
            .fetch_metadata(None, Duration::from_secs(20))
            .expect("metadata over TLS from the advertised broker");
        md.brokers()
            .iter()
            .map(|b| (b.host().to_owned(), b.port()))
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_over_sasl_ssl() {
    let (dir, gw, _store, tenant) = gateway(|c, _, _| {
        c.listeners = vec![ListenerConfig {
            name: "tls".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            advertised_port: None,
            tls: Some(TlsSettings::default()),
            auth: ListenerAuth::Sasl(vec![SaslFamily::Plain]),
            default_cluster: None,
        }]
    })
    .await;
    let (port, _stop) = serve(&gw).await;
    let ca = dir.path().join("tls").join("fjord-dev-ca.pem");
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", format!("localhost:{port}"))
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", &tenant.access_key_id)
        .set("sasl.password", tenant.secret_access_key.expose())
        .set("ssl.ca.location", ca.to_str().unwrap())
        .set("ssl.endpoint.identification.algorithm", "https")
        .set("broker.address.family", "v4");
    let got = brokers(c).await;
    // Certificate verified by librdkafka (OpenSSL), login over TLS, and the advertised broker
    // is the name the client dialled (not the cluster's name, which does not resolve here),
    // on the TLS listener's port.
    assert_eq!(got, [("localhost".to_owned(), i32::from(port))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_over_mutual_tls() {
    let pki = tempfile::tempdir().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "tenant CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "bob");
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let p = |n: &str| pki.path().join(n);
    std::fs::write(p("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(p("bob.pem"), cert.pem()).unwrap();
    std::fs::write(p("bob.key"), key.serialize_pem()).unwrap();

    let ca_path = p("ca.pem");
    let (dir, gw, _store, tenant) = gateway(move |c, t, _| {
        let mut l = ListenerConfig::mtls("127.0.0.1:0".parse().unwrap(), ca_path);
        l.default_cluster = Some(t.cluster.id);
        c.listeners = vec![l];
    })
    .await;
    let (port, _stop) = serve(&gw).await;
    let server_ca = dir.path().join("tls").join("fjord-dev-ca.pem");
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", format!("localhost:{port}"))
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", server_ca.to_str().unwrap())
        .set("ssl.certificate.location", p("bob.pem").to_str().unwrap())
        .set("ssl.key.location", p("bob.key").to_str().unwrap())
        .set("broker.address.family", "v4");
    let got = brokers(c).await;
    assert_eq!(got, [("localhost".to_owned(), i32::from(port))]);
    // The connection was admitted against the listener's cluster (its limiter entry exists).
    // Its open count is not asserted: `brokers` drops the client, so the count may already be
    // back to 0 when this runs.
    assert!(gw
        .quotas()
        .cluster(tenant.cluster.id, 0)
        .await
        .unwrap()
        .is_some());
}
