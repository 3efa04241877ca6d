//! Real-socket tests of the listeners: TLS with the development CA, SNI → cluster, the
//! advertised host, mutual TLS, and per-cluster connection limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use fjord_metadata::{ClusterSettings, MetadataStore};
use fjord_tenancy::bootstrap::DevTenant;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use uuid::Uuid;

use crate::config::{ListenerAuth, ListenerConfig, SaslFamily, TlsSettings};
use crate::tests::{parse_response, plain, request_frame, tenant_env, MemDirectory};
use crate::topics::TopicService;
use crate::{ConnState, Gateway, GatewayConfig, PeerIdentity};

pub(crate) const DOMAIN: &str = "fjord.test";

/// A gateway over the dev tenant with `config` adjusted by `f`, and no storage nodes.
pub(crate) async fn gateway(
    f: impl FnOnce(&mut GatewayConfig, &DevTenant, &Path),
) -> (
    tempfile::TempDir,
    Arc<Gateway>,
    Arc<dyn MetadataStore>,
    DevTenant,
) {
    let (dir, store, tenant, auth) = tenant_env().await;
    let mut config = GatewayConfig::new("gw.us-east-1.fjord.test", 9092);
    config.cluster_domain = Some(DOMAIN.into());
    config.tls_dir = Some(dir.path().join("tls"));
    f(&mut config, &tenant, dir.path());
    let gw = Gateway::new(
        config,
        store.clone(),
        auth,
        Arc::new(TopicService::new(store.clone())),
        Arc::new(MemDirectory::default()),
    )
    .unwrap();
    (dir, Arc::new(gw), store, tenant)
}

pub(crate) async fn set_limits(store: &dyn MetadataStore, cluster: Uuid, limits: &[(&str, i64)]) {
    let limits: BTreeMap<String, i64> = limits.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    store
        .put_cluster_settings(&ClusterSettings {
            cluster_id: cluster,
            limits,
            version: 0,
        })
        .await
        .unwrap();
}

/// Serves the gateway's listeners; dropping the sender stops it.
async fn serve(gw: &Arc<Gateway>) -> (Vec<SocketAddr>, oneshot::Sender<()>) {
    let listeners = gw.bind_listeners().await.unwrap();
    let addrs = listeners.iter().map(|l| l.local_addr()).collect();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(gw.clone().serve_listeners(listeners, async move {
        let _ = rx.await;
    }));
    (addrs, tx)
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn client_config(
    ca: &Path,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match client {
        Some((chain, key)) => b.with_client_auth_cert(chain, key).unwrap(),
        None => b.with_no_client_auth(),
    })
}

async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// Sends one request and reads its response; `None` if the connection ends first.
async fn call<S, M, R>(s: &mut S, api: ApiKey, v: i16, corr: i32, body: &M) -> Option<R>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: Encodable,
    R: Decodable,
{
    let frame = request_frame(api, v, corr, body);
    let mut out = BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.put_slice(&frame);
    s.write_all(&out).await.ok()?;
    s.flush().await.ok()?;
    let mut size = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut size))
        .await
        .expect("no answer and no close within 10 s")
        .ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).await.ok()?;
    let mut framed = BytesMut::new();
    framed.put_slice(&size);
    framed.put_slice(&body);
    let (c, mut b) = parse_response(api, v, &framed.freeze());
    assert_eq!(c, corr);
    Some(R::decode(&mut b, v).unwrap())
}

async fn login<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, t: &DevTenant) -> Option<()> {
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let r: SaslHandshakeResponse = call(s, ApiKey::SaslHandshake, 1, 1, &hs).await?;
    assert_eq!(r.error_code, 0);
    let r: SaslAuthenticateResponse = call(s, ApiKey::SaslAuthenticate, 2, 2, &plain(t)).await?;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    Some(())
}

fn metadata() -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![]))
}

fn tls_plain_listener() -> ListenerConfig {
    ListenerConfig {
        name: "tls".into(),
        addr: local(0),
        advertised_port: None,
        tls: Some(TlsSettings::default()),
        auth: ListenerAuth::Sasl(vec![SaslFamily::Plain]),
        default_cluster: None,
    }
}

#[tokio::test]
async fn sni_names_the_cluster_and_metadata_advertises_it() {
    let (dir, gw, _store, tenant) =
        gateway(|c, _, _| c.listeners = vec![tls_plain_listener()]).await;
    let (addrs, _stop) = serve(&gw).await;
    let ca = dir.path().join("tls").join("fjord-dev-ca.pem");
    let cfg = client_config(&ca, None);
    let cluster = tenant.cluster.id;
    let sni = format!("{cluster}.kafka.us-east-1.{DOMAIN}");
    assert_eq!(gw.cluster_from_host(&sni), Some(cluster));

    let mut s = tls_connect(addrs[0], cfg.clone(), &sni).await.unwrap();
    login(&mut s, &tenant).await.unwrap();
    let md: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, 3, &metadata())
        .await
        .unwrap();
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(
        md.brokers[0].host.as_str(),
        sni,
        "clients keep SNI on reconnect"
    );
    assert_eq!(md.brokers[0].port, i32::from(addrs[0].port()));
    let entry = gw.quotas().cluster(cluster, 0).await.unwrap().unwrap();
    assert_eq!(entry.open_connections(), 1, "admitted at the handshake");

    // Without SNI (an IP address), the cluster comes from authentication; the advertised
    // name is still the cluster's.
    let mut s2 = tls_connect(addrs[0], cfg.clone(), "127.0.0.1")
        .await
        .unwrap();
    login(&mut s2, &tenant).await.unwrap();
    let md: MetadataResponse = call(&mut s2, ApiKey::Metadata, 12, 3, &metadata())
        .await
        .unwrap();
    assert_eq!(md.brokers[0].host.as_str(), sni);
    assert_eq!(entry.open_connections(), 2, "admitted at authentication");

    // A name outside the scheme (the client dialled `localhost`): the cluster comes from
    // authentication and the advertised name is the one the client dialled, which it can
    // resolve; the cluster's name may not resolve for it.
    let mut s4 = tls_connect(addrs[0], cfg.clone(), "LocalHost")
        .await
        .unwrap();
    login(&mut s4, &tenant).await.unwrap();
    let md: MetadataResponse = call(&mut s4, ApiKey::Metadata, 12, 3, &metadata())
        .await
        .unwrap();
    assert_eq!(md.brokers[0].host.as_str(), "localhost");
    assert_eq!(md.brokers[0].port, i32::from(addrs[0].port()));
    assert_eq!(entry.open_connections(), 3);

    // A name in the scheme for a cluster that does not exist: closed before any answer.
    let ghost = format!("{}.kafka.us-east-1.{DOMAIN}", Uuid::from_u128(42));
    let mut s3 = tls_connect(addrs[0], cfg, &ghost).await.unwrap();
    let r: Option<ApiVersionsResponse> = call(
        &mut s3,
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    )
    .await;
    assert!(r.is_none(), "unknown cluster must be refused");
}

/// A client CA in `dir`, and a client certificate with `cn` signed by it.
fn client_pki(
    dir: &Path,
    cn: &str,
) -> (
    std::path::PathBuf,
    (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "tenant CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_path = dir.join("client-ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(DnType::OrganizationName, "Tenant A");
    leaf.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (ca_path, (vec![cert.der().clone()], der))
}

#[tokio::test]
async fn mutual_tls_authenticates_by_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let (ca_path, alice) = client_pki(pki.path(), "alice");
    let (dir, gw, _store, tenant) = gateway(|c, t, _| {
        let mut l = ListenerConfig::mtls(local(0), ca_path.clone());
        l.default_cluster = Some(t.cluster.id);
        c.listeners = vec![l];
    })
    .await;
    let (addrs, _stop) = serve(&gw).await;
    let server_ca = dir.path().join("tls").join("fjord-dev-ca.pem");

    // With the certificate: requests are served without any SASL exchange.
    let mut s = tls_connect(
        addrs[0],
        client_config(&server_ca, Some(alice)),
        "localhost",
    )
    .await
    .unwrap();
    let md: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, 1, &metadata())
        .await
        .unwrap();
    assert_eq!(md.brokers.len(), 1);
    // SASL is refused on a listener authenticated by TLS.
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let r: SaslHandshakeResponse = call(&mut s, ApiKey::SaslHandshake, 1, 2, &hs)
        .await
        .unwrap();
    assert_eq!(
        r.error_code,
        kafka_protocol::ResponseError::IllegalSaslState.code()
    );

    // Without a certificate: no request is answered.
    let unauth = tls_connect(addrs[0], client_config(&server_ca, None), "localhost").await;
    if let Ok(mut s) = unauth {
        let r: Option<MetadataResponse> = call(&mut s, ApiKey::Metadata, 12, 1, &metadata()).await;
        assert!(r.is_none());
    }

    // The principal: User:<CN> in the account owning the cluster.
    let config = gw.config().listeners[0].clone();
    let listener = Arc::new(super::ListenerInfo::new(config, 9094, None));
    let mut conn = ConnState::new(PeerIdentity {
        listener: Some(listener),
        client_cert_cn: Some("alice".into()),
        ..PeerIdentity::default()
    });
    gw.establish(&mut conn, crate::tests::NOW).await.unwrap();
    let id = conn.transport_identity().unwrap();
    assert_eq!(id.principal, "User:alice");
    assert_eq!(id.account_id, tenant.account_id);
    assert_eq!(id.cluster_id, tenant.cluster.id);
}

#[tokio::test]
async fn listeners_offer_only_their_mechanisms() {
    let (_dir, gw, _store, _tenant) = gateway(|c, _, _| {
        c.listeners = vec![ListenerConfig::plaintext(local(0), vec![SaslFamily::Iam])]
    })
    .await;
    let (addrs, _stop) = serve(&gw).await;
    let mut s = TcpStream::connect(addrs[0]).await.unwrap();
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let r: SaslHandshakeResponse = call(&mut s, ApiKey::SaslHandshake, 1, 1, &hs)
        .await
        .unwrap();
    assert_eq!(
        r.error_code,
        kafka_protocol::ResponseError::UnsupportedSaslMechanism.code()
    );
    let offered: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["AWS_MSK_IAM", "OAUTHBEARER"]);
}

/// Waits (bounded) until `cond` holds; the server side of a close is asynchronous.
async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}

#[tokio::test]
async fn the_connection_over_the_cluster_cap_is_closed() {
    let (dir, gw, store, tenant) =
        gateway(|c, _, _| c.listeners = vec![tls_plain_listener()]).await;
    let cluster = tenant.cluster.id;
    set_limits(&*store, cluster, &[("max-connections", 2)]).await;
    let (addrs, _stop) = serve(&gw).await;
    let cfg = client_config(&dir.path().join("tls").join("fjord-dev-ca.pem"), None);
    let sni = format!("{cluster}.kafka.us-east-1.{DOMAIN}");
    let av = ApiVersionsRequest::default();
    let mut open = Vec::new();
    for i in 0..2 {
        let mut s = tls_connect(addrs[0], cfg.clone(), &sni).await.unwrap();
        let r: Option<ApiVersionsResponse> = call(&mut s, ApiKey::ApiVersions, 3, i, &av).await;
        assert!(r.is_some(), "connection {i} is within the cap");
        open.push(s);
    }
    let mut third = tls_connect(addrs[0], cfg.clone(), &sni).await.unwrap();
    let r: Option<ApiVersionsResponse> = call(&mut third, ApiKey::ApiVersions, 3, 9, &av).await;
    assert!(r.is_none(), "the third connection is closed");

    // Closing one frees its slot.
    drop(open.pop());
    let entry = gw.quotas().cluster(cluster, 0).await.unwrap().unwrap();
    eventually(|| entry.open_connections() == 1).await;
    let mut again = tls_connect(addrs[0], cfg, &sni).await.unwrap();
    let r: Option<ApiVersionsResponse> = call(&mut again, ApiKey::ApiVersions, 3, 1, &av).await;
    assert!(r.is_some());
}

#[tokio::test]
async fn connections_over_the_rate_are_closed_and_sasl_says_too_many_connects() {
    // Plaintext: the cluster is known only at authentication, which then answers MSK's
    // "Too many connects".
    let (_dir, gw, store, tenant) = gateway(|c, _, _| {
        c.listeners = vec![ListenerConfig::plaintext(local(0), vec![SaslFamily::Plain])];
        c.auth_failure_delay = Duration::from_millis(1);
    })
    .await;
    set_limits(
        &*store,
        tenant.cluster.id,
        &[("connection-attempts-per-sec", 1)],
    )
    .await;
    let (addrs, _stop) = serve(&gw).await;
    let mut refused = None;
    for _ in 0..4 {
        let mut s = TcpStream::connect(addrs[0]).await.unwrap();
        let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        let _: SaslHandshakeResponse = call(&mut s, ApiKey::SaslHandshake, 1, 1, &hs)
            .await
            .unwrap();
        let r: SaslAuthenticateResponse =
            call(&mut s, ApiKey::SaslAuthenticate, 2, 2, &plain(&tenant))
                .await
                .unwrap();
        if r.error_code != 0 {
            refused = r.error_message.map(|m| m.to_string());
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
            assert!(rest.is_empty(), "closed after the refusal");
            break;
        }
    }
    let msg = refused.expect("a connection beyond 1/s is refused");
    assert!(msg.starts_with("Too many connects"), "{msg}");
    assert!(msg.contains("1 new connections per second"), "{msg}");
}

#[tokio::test]
async fn dev_certificate_is_reused_and_covers_cluster_names() {
    let (dir, gw, _store, _tenant) =
        gateway(|c, _, _| c.listeners = vec![tls_plain_listener()]).await;
    let names = gw.dev_certificate_names();
    assert!(
        names.contains(&format!("*.kafka.us-east-1.{DOMAIN}")),
        "{names:?}"
    );
    let tls_dir = dir.path().join("tls");
    let a = super::tls::ensure_dev_certificate(&tls_dir, &names).unwrap();
    let ca_before = std::fs::read(&a.ca_path).unwrap();
    let cert_before = std::fs::read(&a.cert_path).unwrap();
    let b = super::tls::ensure_dev_certificate(&tls_dir, &names).unwrap();
    assert_eq!(a, b);
    assert_eq!(std::fs::read(&b.cert_path).unwrap(), cert_before, "reused");
    // New names: a new server certificate from the same CA.
    let mut more = names.clone();
    more.push("gw2.fjord.test".into());
    let c = super::tls::ensure_dev_certificate(&tls_dir, &more).unwrap();
    assert_eq!(std::fs::read(&c.ca_path).unwrap(), ca_before);
    assert_ne!(std::fs::read(&c.cert_path).unwrap(), cert_before);
    // And it is accepted by a client trusting the CA, for a cluster name.
    let tls = super::tls::server_config(&TlsSettings::default(), Some(&c)).unwrap();
    let listener = tokio::net::TcpListener::bind(local(0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let s = tokio_rustls::TlsAcceptor::from(tls)
            .accept(sock)
            .await
            .unwrap();
        drop(s);
    });
    let name = format!("{}.kafka.us-east-1.{DOMAIN}", Uuid::from_u128(5));
    tls_connect(addr, client_config(&c.ca_path, None), &name)
        .await
        .unwrap();
}

#[tokio::test]
async fn sni_names_the_cluster_a_login_is_for() {
    let (dir, gw, store, tenant) =
        gateway(|c, _, _| c.listeners = vec![tls_plain_listener()]).await;
    // A second cluster of the same account; the dev key's policy allows every cluster of it.
    let other = fjord_metadata::Cluster {
        id: Uuid::from_u128(77),
        account_id: tenant.account_id.clone(),
        name: "other".into(),
        region: "us-east-1".into(),
        created_ms: crate::tests::NOW,
    };
    store.create_cluster(&other).await.unwrap();
    let (addrs, _stop) = serve(&gw).await;
    let cfg = client_config(&dir.path().join("tls").join("fjord-dev-ca.pem"), None);
    let sni = format!("{}.kafka.us-east-1.{DOMAIN}", other.id);
    let mut s = tls_connect(addrs[0], cfg, &sni).await.unwrap();
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let _: SaslHandshakeResponse = call(&mut s, ApiKey::SaslHandshake, 1, 1, &hs)
        .await
        .unwrap();
    let r: SaslAuthenticateResponse = call(&mut s, ApiKey::SaslAuthenticate, 2, 2, &plain(&tenant))
        .await
        .unwrap();
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    // The connection talks to the cluster the server name named, not the listener's default.
    let md: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        12,
        3,
        &MetadataRequest::default().with_topics(Some(vec![])),
    )
    .await
    .unwrap();
    assert_eq!(
        md.cluster_id.as_ref().map(|c| c.to_string()),
        Some(crate::handlers::cluster::kafka_cluster_id(other.id))
    );
}
