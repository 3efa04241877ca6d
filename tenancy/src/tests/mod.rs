//! End-to-end tests of the crate over a real SQLite metadata file: payloads made by the real
//! client libraries (recorded fixtures) and by [`crate::signer`] (aws-sigv4).
//!
//! Layout: this file holds the fixtures and the harness; [`mechanisms`] the accept/refuse cases,
//! [`fuzz`] the random and mutated payloads, [`bootstrap`] the dev tenant.
#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

mod bootstrap;
mod fuzz;
mod mechanisms;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fjord_metadata::{AccessKey, Account, KeyStatus, MetadataStore, SqliteStore};
use uuid::Uuid;

use crate::auth::{AuthConfig, AuthError, Authenticator, Identity, Mechanism};
use crate::secrets::{SecretSealer, SecretString};
use crate::signer::{msk_iam_oauth_token, msk_iam_payload, oauthbearer_initial_response};

pub(super) const REGION: &str = "eu-west-1";
pub(super) const ACCOUNT: &str = "123456789012";
pub(super) const KEY_ID: &str = "AKIAFJORDTESTKEY0001";
pub(super) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub(super) const INACTIVE_KEY: &str = "AKIAFJORDINACTIVE001";
pub(super) const EXPIRED_KEY: &str = "AKIAFJORDEXPIRED0001";
pub(super) const SESSION_TOKEN: &str = "FQoGZXIvYXdzEJr//////////wEaDOt+test/token==";
/// 2026-11-26T01:02:03Z, the signing time of the fixtures.
pub(super) const T0_MS: i64 = 1_795_654_923_000;
pub(super) const SKEW_MS: i64 = 5 * 60 * 1000;

/// aws-msk-iam-sasl-signer-python 1.0.2 (botocore 1.44.8), KEY_ID/SECRET, eu-west-1, at T0.
pub(super) const PYTHON_TOKEN: &str = "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJQUZKT1JEVEVTVEtFWTAwMDElMkYyMDI2MTEyNiUyRmV1LXdlc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTEyNlQwMTAyMDNaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TaWduYXR1cmU9YTc3M2MwYTZhOTJiYzM5MDZkZDg0ZjUxOTdmOTQzMWZjMDNmMmZiOWIxMDUwZjQyZWM3NDM0M2I3NmE2ZDEyYSZVc2VyLUFnZW50PWF3cy1tc2staWFtLXNhc2wtc2lnbmVyLXB5dGhvbiUyRjEuMC4y";
/// The same with SESSION_TOKEN.
pub(super) const PYTHON_TOKEN_WITH_SESSION: &str = "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJQUZKT1JEVEVTVEtFWTAwMDElMkYyMDI2MTEyNiUyRmV1LXdlc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTEyNlQwMTAyMDNaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TZWN1cml0eS1Ub2tlbj1GUW9HWlhJdllYZHpFSnIlMkYlMkYlMkYlMkYlMkYlMkYlMkYlMkYlMkYlMkZ3RWFET3QlMkJ0ZXN0JTJGdG9rZW4lM0QlM0QmWC1BbXotU2lnbmF0dXJlPTA3NzdlNDQyY2YxNWI2NjgxOTdjYWVkOTY0Yjk1NTQ1YzcxZTQ1ZTM4NGNiYWYwZTA5ZGI3NDc1NjBiMTllY2EmVXNlci1BZ2VudD1hd3MtbXNrLWlhbS1zYXNsLXNpZ25lci1weXRob24lMkYxLjAuMg";
/// @jm18457/kafkajs-msk-iam-authentication-mechanism 4.0.0, host "localhost", at T0.
pub(super) const KAFKAJS_PAYLOAD: &str = r#"{"version":"2020_10_22","user-agent":"MSK_IAM","host":"localhost","action":"kafka-cluster:Connect","x-amz-credential":"AKIAFJORDTESTKEY0001/20261126/eu-west-1/kafka-cluster/aws4_request","x-amz-algorithm":"AWS4-HMAC-SHA256","x-amz-date":"20261126T010203Z","x-amz-signedheaders":"host","x-amz-expires":"900","x-amz-signature":"213196077d0404127ef949185220c5973e0c4b6dd848fc5414b46df974178a03"}"#;
/// The same with SESSION_TOKEN.
pub(super) const KAFKAJS_PAYLOAD_WITH_SESSION: &str = r#"{"version":"2020_10_22","user-agent":"MSK_IAM","host":"localhost","action":"kafka-cluster:Connect","x-amz-credential":"AKIAFJORDTESTKEY0001/20261126/eu-west-1/kafka-cluster/aws4_request","x-amz-algorithm":"AWS4-HMAC-SHA256","x-amz-date":"20261126T010203Z","x-amz-security-token":"FQoGZXIvYXdzEJr//////////wEaDOt+test/token==","x-amz-signedheaders":"host","x-amz-expires":"900","x-amz-signature":"63d5940600aaf80332bb1a1ff666c2113a4b5baec060180991bd1860678c57a5"}"#;

/// aws-msk-iam-sasl-signer-js 1.0.3 (parameters sorted, `User-Agent` second), at T0.
pub(super) const JS_TOKEN: &str = "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlVzZXItQWdlbnQ9YXdzLW1zay1pYW0tc2FzbC1zaWduZXItanMlMkYxLjAuMyZYLUFtei1BbGdvcml0aG09QVdTNC1ITUFDLVNIQTI1NiZYLUFtei1DcmVkZW50aWFsPUFLSUFGSk9SRFRFU1RLRVkwMDAxJTJGMjAyNjExMjYlMkZldS13ZXN0LTElMkZrYWZrYS1jbHVzdGVyJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjExMjZUMDEwMjAzWiZYLUFtei1FeHBpcmVzPTkwMCZYLUFtei1TaWduYXR1cmU9YTc3M2MwYTZhOTJiYzM5MDZkZDg0ZjUxOTdmOTQzMWZjMDNmMmZiOWIxMDUwZjQyZWM3NDM0M2I3NmE2ZDEyYSZYLUFtei1TaWduZWRIZWFkZXJzPWhvc3Q";
/// The same with SESSION_TOKEN.
pub(super) const JS_TOKEN_WITH_SESSION: &str = "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlVzZXItQWdlbnQ9YXdzLW1zay1pYW0tc2FzbC1zaWduZXItanMlMkYxLjAuMyZYLUFtei1BbGdvcml0aG09QVdTNC1ITUFDLVNIQTI1NiZYLUFtei1DcmVkZW50aWFsPUFLSUFGSk9SRFRFU1RLRVkwMDAxJTJGMjAyNjExMjYlMkZldS13ZXN0LTElMkZrYWZrYS1jbHVzdGVyJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjExMjZUMDEwMjAzWiZYLUFtei1FeHBpcmVzPTkwMCZYLUFtei1TZWN1cml0eS1Ub2tlbj1GUW9HWlhJdllYZHpFSnIlMkYlMkYlMkYlMkYlMkYlMkYlMkYlMkYlMkYlMkZ3RWFET3QlMkJ0ZXN0JTJGdG9rZW4lM0QlM0QmWC1BbXotU2lnbmF0dXJlPTA3NzdlNDQyY2YxNWI2NjgxOTdjYWVkOTY0Yjk1NTQ1YzcxZTQ1ZTM4NGNiYWYwZTA5ZGI3NDc1NjBiMTllY2EmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0";
/// The JS signer with credentials expiring 543.217 s after T0 (session token "tok"): it then
/// signs the fractional `X-Amz-Expires=543.217`.
pub(super) const JS_TOKEN_FRACTIONAL_EXPIRY: &str = "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlVzZXItQWdlbnQ9YXdzLW1zay1pYW0tc2FzbC1zaWduZXItanMlMkYxLjAuMyZYLUFtei1BbGdvcml0aG09QVdTNC1ITUFDLVNIQTI1NiZYLUFtei1DcmVkZW50aWFsPUFLSUFGSk9SRFRFU1RLRVkwMDAxJTJGMjAyNjExMjYlMkZldS13ZXN0LTElMkZrYWZrYS1jbHVzdGVyJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjExMjZUMDEwMjAzWiZYLUFtei1FeHBpcmVzPTU0My4yMTcmWC1BbXotU2VjdXJpdHktVG9rZW49dG9rJlgtQW16LVNpZ25hdHVyZT00Nzg1MDg3M2QyMTIyYzc0Y2U2N2ZlYTI0Yjc4NmE1YmRiOGFkZDcwZjMxMjdhNDExNTcwMzY5NzQwNTFkM2M2JlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdA";

pub(super) struct Harness {
    _dir: tempfile::TempDir,
    pub(super) store: Arc<SqliteStore>,
    pub(super) auth: Authenticator,
    pub(super) cluster: Uuid,
}

pub(super) fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

pub(super) async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    let sealer = SecretSealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    store
        .create_account(&Account {
            id: ACCOUNT.into(),
            name: "t".into(),
            created_ms: T0_MS,
        })
        .await
        .unwrap();
    for (id, status, expires_ms) in [
        (KEY_ID, KeyStatus::Active, None),
        (INACTIVE_KEY, KeyStatus::Inactive, None),
        (EXPIRED_KEY, KeyStatus::Active, Some(T0_MS - 1)),
    ] {
        let key = AccessKey {
            id: id.into(),
            sealed_secret: sealer.seal(id, &SecretString::new(SECRET)).unwrap(),
            account_id: ACCOUNT.into(),
            principal: "user/test".into(),
            status,
            expires_ms,
            created_ms: T0_MS,
        };
        store.create_access_key(&key).await.unwrap();
    }
    let cluster = Uuid::new_v4();
    let config = AuthConfig {
        region: REGION.into(),
        default_cluster: cluster,
        max_clock_skew_ms: SKEW_MS,
    };
    let auth = Authenticator::new(store.clone(), sealer, config);
    Harness {
        _dir: dir,
        store,
        auth,
        cluster,
    }
}

impl Harness {
    pub(super) fn expected(&self, key: &str, expires_ms: Option<i64>) -> Identity {
        Identity {
            account_id: ACCOUNT.into(),
            principal: "user/test".into(),
            access_key_id: key.into(),
            cluster_id: self.cluster,
            expires_ms,
        }
    }

    pub(super) async fn bearer(&self, token: &str, now_ms: i64) -> Result<Identity, AuthError> {
        bearer(&self.auth, token, now_ms).await
    }

    pub(super) async fn iam(&self, payload: &[u8], now_ms: i64) -> Result<Identity, AuthError> {
        self.auth
            .authenticate(Mechanism::AwsMskIam, payload, now_ms)
            .await
    }
}

/// Authenticates with `token` over SASL/OAUTHBEARER, as a client sends it.
pub(super) async fn bearer(
    auth: &Authenticator,
    token: &str,
    now_ms: i64,
) -> Result<Identity, AuthError> {
    auth.authenticate(
        Mechanism::OAuthBearer,
        &oauthbearer_initial_response(token),
        now_ms,
    )
    .await
}

/// Authenticates as `key_id` with `secret` over SASL/PLAIN (no authorization id).
pub(super) async fn plain(
    auth: &Authenticator,
    key_id: &str,
    secret: &str,
    now_ms: i64,
) -> Result<Identity, AuthError> {
    let message = format!("\0{key_id}\0{secret}");
    auth.authenticate(Mechanism::Plain, message.as_bytes(), now_ms)
        .await
}

pub(super) fn token(key: &str, secret: &str, region: &str, signed_at_ms: i64) -> String {
    msk_iam_oauth_token(key, secret, None, region, at(signed_at_ms)).unwrap()
}

pub(super) fn payload(key: &str, secret: &str, region: &str, signed_at_ms: i64) -> Vec<u8> {
    msk_iam_payload(key, secret, None, region, "localhost", at(signed_at_ms)).unwrap()
}

/// Rewrites one string field of an AWS_MSK_IAM JSON payload.
pub(super) fn with_field(payload: &[u8], field: &str, value: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    v[field] = serde_json::Value::String(value.into());
    serde_json::to_vec(&v).unwrap()
}
