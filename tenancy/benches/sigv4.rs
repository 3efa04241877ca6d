//! SASL authentication with MSK IAM credentials: the SigV4 verification a gateway does on
//! every SaslAuthenticate (each new connection and each KIP-368 re-authentication).
//!
//! The payloads are signed once, by `fjord_tenancy::signer` (`aws-sigv4`, as the tests sign),
//! for an access key stored sealed in a real SQLite metadata file in a temporary directory.
//!
//! - `sasl/{aws_msk_iam,oauthbearer}/cached`: `Authenticator::authenticate` with the unsealed
//!   key in the authenticator's key cache (the steady state: a client reconnecting).
//! - `sasl/{aws_msk_iam,oauthbearer}/uncached`: `Authenticator::invalidate_key` then
//!   `authenticate`, so every iteration reads the key from the store and unseals it (the first
//!   login of a key on a gateway, or every login after the cache's 10 s TTL).
//! - `sigv4/check_verify`: `sigv4::check` and `CheckedPresign::verify` alone on the parsed
//!   parameters: the canonical request, SHA-256, the signing-key derivation and HMAC.
//! - `sasl/aws_msk_iam/signed_host`: `msk_iam_signed_host`, the second parse the gateway does
//!   of an `AWS_MSK_IAM` payload to learn the cluster the client dialled.
//!
//! Setup failures abort the benchmark, hence the `expect`s.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use fjord_metadata::{AccessKey, Account, KeyStatus, MetadataStore, SqliteStore};
use fjord_tenancy::signer::{msk_iam_oauth_token, msk_iam_payload, oauthbearer_initial_response};
use fjord_tenancy::sigv4::{self, PresignedRequest};
use fjord_tenancy::{
    msk_iam_signed_host, AuthConfig, Authenticator, Mechanism, SecretSealer, SecretString,
};
use tokio::runtime::Runtime;

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";
const KEY_ID: &str = "AKIAFJORDBENCHKEY001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2026-11-26T01:02:03Z, the signing time; verification runs one second later.
const T0_MS: i64 = 1_795_654_923_000;
const NOW_MS: i64 = T0_MS + 1_000;

struct Fixture {
    _dir: tempfile::TempDir,
    auth: Authenticator,
    iam_payload: Vec<u8>,
    bearer_response: Vec<u8>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).expect("open SQLite"));
    let sealer = SecretSealer::load_or_create(&dir.path().join("secret.key")).expect("sealing key");
    store
        .create_account(&Account {
            id: ACCOUNT.into(),
            name: "bench".into(),
            created_ms: T0_MS,
        })
        .await
        .expect("create the account");
    store
        .create_access_key(&AccessKey {
            id: KEY_ID.into(),
            sealed_secret: sealer
                .seal(KEY_ID, &SecretString::new(SECRET))
                .expect("seal the secret"),
            account_id: ACCOUNT.into(),
            principal: "user/bench".into(),
            status: KeyStatus::Active,
            expires_ms: None,
            created_ms: T0_MS,
        })
        .await
        .expect("create the access key");
    let config = AuthConfig {
        region: REGION.into(),
        default_cluster: uuid::Uuid::from_u128(0xf10d),
        max_clock_skew_ms: 5 * 60 * 1000,
    };
    let auth = Authenticator::new(store, sealer, config);
    let signed_at = UNIX_EPOCH + Duration::from_millis(T0_MS as u64);
    let iam_payload = msk_iam_payload(KEY_ID, SECRET, None, REGION, "localhost", signed_at)
        .expect("sign an AWS_MSK_IAM payload");
    let token = msk_iam_oauth_token(KEY_ID, SECRET, None, REGION, signed_at).expect("sign a token");
    Fixture {
        _dir: dir,
        auth,
        iam_payload,
        bearer_response: oauthbearer_initial_response(&token),
    }
}

fn sasl(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let f = rt.block_on(fixture());
    let f = &f;
    let mut g = c.benchmark_group("sasl");
    for (name, mechanism, bytes) in [
        ("aws_msk_iam", Mechanism::AwsMskIam, &f.iam_payload),
        ("oauthbearer", Mechanism::OAuthBearer, &f.bearer_response),
    ] {
        // Both fixtures must authenticate, or the figures would time a refusal.
        let id = rt
            .block_on(f.auth.authenticate(mechanism, bytes, NOW_MS))
            .expect("the signed payload authenticates");
        assert_eq!(id.access_key_id, KEY_ID);
        g.bench_function(format!("{name}/cached"), |b| {
            b.to_async(&rt).iter(|| async move {
                f.auth
                    .authenticate(mechanism, black_box(bytes), NOW_MS)
                    .await
                    .expect("authenticates")
            })
        });
        g.bench_function(format!("{name}/uncached"), |b| {
            b.to_async(&rt).iter(|| async move {
                f.auth.invalidate_key(KEY_ID).await;
                f.auth
                    .authenticate(mechanism, black_box(bytes), NOW_MS)
                    .await
                    .expect("authenticates")
            })
        });
    }
    g.bench_function("aws_msk_iam/signed_host", |b| {
        b.iter(|| msk_iam_signed_host(black_box(&f.iam_payload)))
    });
    g.finish();
}

/// The signed parameters of the AWS_MSK_IAM payload (benchmark setup; the parse itself is
/// private to the crate and measured as part of `sasl/*`).
fn presigned(payload: &serde_json::Value) -> PresignedRequest<'_> {
    let field = |name: &str| payload[name].as_str().expect("payload field");
    PresignedRequest {
        host: field("host"),
        action: field("action"),
        algorithm: field("x-amz-algorithm"),
        credential: field("x-amz-credential"),
        date: field("x-amz-date"),
        expires: field("x-amz-expires"),
        security_token: None,
        signed_headers: field("x-amz-signedheaders"),
        signature: field("x-amz-signature"),
        extra_params: Vec::new(),
    }
}

fn check_verify(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let f = rt.block_on(fixture());
    let json: serde_json::Value =
        serde_json::from_slice(&f.iam_payload).expect("the payload is JSON");
    let req = presigned(&json);
    let skew = 5 * 60 * 1000;
    sigv4::check(&req, REGION, NOW_MS, skew)
        .expect("checks")
        .verify(SECRET)
        .expect("the signature verifies");
    c.bench_function("sigv4/check_verify", |b| {
        b.iter(|| {
            let checked = sigv4::check(black_box(&req), REGION, NOW_MS, skew)?;
            checked.verify(black_box(SECRET))
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

// criterion_group! defines an undocumented `pub fn`; missing_docs is on workspace-wide.
#[allow(missing_docs)]
mod group {
    use super::*;

    criterion_group! {
        name = benches;
        config = config();
        targets = sasl, check_verify
    }
}
criterion_main!(group::benches);
