//! Temporary credentials, the auth epoch and re-validation, and the cached access data.
#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

use std::collections::BTreeMap;

use fjord_metadata::{AccessKey, KeyStatus, MetadataStore, Principal};

use super::*;
use crate::signer::{msk_iam_oauth_token, msk_iam_payload};
use crate::tests::{at, bearer, harness, plain, ACCOUNT, KEY_ID, REGION, SECRET, T0_MS};

const TEMP_KEY: &str = "ASIAFJORDTEMPORARY01";

/// Stores a temporary key of `user/test` expiring at `expires_ms`, sealed with `auth`'s sealer.
async fn temporary_key(store: &dyn MetadataStore, auth: &Authenticator, expires_ms: i64) {
    let key = AccessKey {
        id: TEMP_KEY.into(),
        sealed_secret: auth
            .sealer()
            .seal(TEMP_KEY, &SecretString::new(SECRET))
            .unwrap(),
        account_id: ACCOUNT.into(),
        principal: "user/test".into(),
        status: KeyStatus::Active,
        expires_ms: Some(expires_ms),
        created_ms: T0_MS,
    };
    store.create_access_key(&key).await.unwrap();
}

#[tokio::test]
async fn temporary_keys_need_their_own_unexpired_session_token() {
    let h = harness().await;
    let key_expiry = T0_MS + 600_000;
    temporary_key(&*h.store, &h.auth, key_expiry).await;
    let token = session::mint(h.auth.sealer(), TEMP_KEY, key_expiry).unwrap();
    let sign =
        |tok: Option<&str>| msk_iam_oauth_token(TEMP_KEY, SECRET, tok, REGION, at(T0_MS)).unwrap();

    // Accepted over OAUTHBEARER and AWS_MSK_IAM; the session lasts until the key expires.
    let id = h.bearer(&sign(Some(&token)), T0_MS).await.unwrap();
    assert_eq!(id.expires_ms, Some(key_expiry));
    assert_eq!(id.session_lifetime_ms(T0_MS + 1), 599_999);
    let payload = msk_iam_payload(
        TEMP_KEY,
        SECRET,
        Some(&token),
        REGION,
        "localhost",
        at(T0_MS),
    )
    .unwrap();
    assert_eq!(
        h.iam(&payload, T0_MS).await.unwrap().expires_ms,
        Some(key_expiry)
    );

    // No token, another key's token, garbage: refused.
    let e = h.bearer(&sign(None), T0_MS).await.unwrap_err();
    assert!(matches!(e, AuthError::SessionTokenRequired(_)), "{e}");
    let foreign = session::mint(h.auth.sealer(), KEY_ID, key_expiry).unwrap();
    let e = h.bearer(&sign(Some(&foreign)), T0_MS).await.unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::SessionToken {
                source: TokenError::Invalid,
                ..
            }
        ),
        "{e}"
    );
    let e = h.bearer(&sign(Some("forged")), T0_MS).await.unwrap_err();
    assert!(matches!(e, AuthError::SessionToken { .. }), "{e}");

    // A token that expires before the key: refused after its expiry, and caps the session.
    let short = session::mint(h.auth.sealer(), TEMP_KEY, T0_MS + 5_000).unwrap();
    let id = h.bearer(&sign(Some(&short)), T0_MS).await.unwrap();
    assert_eq!(id.expires_ms, Some(T0_MS + 5_000));
    let e = h
        .bearer(&sign(Some(&short)), T0_MS + 5_000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::SessionToken {
                source: TokenError::Expired { .. },
                ..
            }
        ),
        "{e}"
    );

    // After the key's own expiry nothing works, whatever the token says.
    let long = session::mint(h.auth.sealer(), TEMP_KEY, key_expiry + 600_000).unwrap();
    let late = msk_iam_oauth_token(TEMP_KEY, SECRET, Some(&long), REGION, at(key_expiry)).unwrap();
    let e = h.bearer(&late, key_expiry).await.unwrap_err();
    assert!(matches!(e, AuthError::AccessKeyExpired(_)), "{e}");
}

#[tokio::test]
async fn an_epoch_change_drops_cached_keys_and_revalidation_sees_the_delete() {
    let h = harness().await;
    let id = plain(&h.auth, KEY_ID, SECRET, T0_MS).await.unwrap();
    let changes = h.auth.subscribe_invalidations();
    assert!(
        !h.auth.poll_auth_epoch().await.unwrap(),
        "the first poll only records"
    );
    assert!(!h.auth.poll_auth_epoch().await.unwrap(), "nothing changed");
    h.auth.revalidate(&id, T0_MS).await.unwrap();

    h.store.delete_access_key(KEY_ID).await.unwrap();
    // The cached key still lets a login through until the epoch is polled…
    assert!(plain(&h.auth, KEY_ID, SECRET, T0_MS).await.is_ok());
    assert!(!changes.has_changed().unwrap());
    // …and not after.
    assert!(h.auth.poll_auth_epoch().await.unwrap());
    assert!(changes.has_changed().unwrap());
    let e = h.auth.revalidate(&id, T0_MS).await.unwrap_err();
    assert!(matches!(e, AuthError::UnknownAccessKey(_)), "{e}");
    assert!(matches!(
        plain(&h.auth, KEY_ID, SECRET, T0_MS).await,
        Err(AuthError::UnknownAccessKey(_))
    ));
}

#[tokio::test]
async fn revalidation_refuses_deactivated_and_expired_keys() {
    let h = harness().await;
    let id = plain(&h.auth, KEY_ID, SECRET, T0_MS).await.unwrap();
    h.auth.poll_auth_epoch().await.unwrap();
    h.store
        .set_access_key_status(KEY_ID, KeyStatus::Inactive)
        .await
        .unwrap();
    assert!(h.auth.poll_auth_epoch().await.unwrap());
    assert!(matches!(
        h.auth.revalidate(&id, T0_MS).await,
        Err(AuthError::InactiveAccessKey(_))
    ));

    temporary_key(&*h.store, &h.auth, T0_MS + 1_000).await;
    let token = session::mint(h.auth.sealer(), TEMP_KEY, T0_MS + 1_000).unwrap();
    let t = msk_iam_oauth_token(TEMP_KEY, SECRET, Some(&token), REGION, at(T0_MS)).unwrap();
    let temp = bearer(&h.auth, &t, T0_MS).await.unwrap();
    h.auth.revalidate(&temp, T0_MS + 999).await.unwrap();
    assert!(matches!(
        h.auth.revalidate(&temp, T0_MS + 1_000).await,
        Err(AuthError::AccessKeyExpired(_))
    ));
}

#[tokio::test]
async fn principals_are_cached_until_invalidated() {
    let h = harness().await;
    let missing = h.auth.principal_access(ACCOUNT, "user/test").await.unwrap();
    assert!(!missing.exists);
    let cred = crate::scram::ScramCredential::derive(b"pw", b"salt", 4096).unwrap();
    let p = Principal {
        account_id: ACCOUNT.into(),
        name: "user/test".into(),
        policies: BTreeMap::from([(
            "p".to_owned(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kafka-cluster:*","Resource":"*"}]}"#.to_owned(),
        )]),
        scram: Some(serde_json::to_string(&cred).unwrap()),
        version: 0,
        created_ms: T0_MS,
    };
    h.store.create_principal(&p).await.unwrap();
    // Creating grants access; it does not raise the epoch, so the cached miss stays until
    // the TTL or an invalidation.
    assert!(
        !h.auth
            .principal_access(ACCOUNT, "user/test")
            .await
            .unwrap()
            .exists
    );
    h.auth.invalidate_all();
    let found = h.auth.principal_access(ACCOUNT, "user/test").await.unwrap();
    assert!(found.exists);
    assert_eq!(found.policies.as_ref().unwrap().policies().len(), 1);
    assert_eq!(
        h.auth.scram_credential(ACCOUNT, "user/test").await.unwrap(),
        Some(cred)
    );

    // A SCRAM identity is re-validated by its principal.
    let scram_id = Identity {
        account_id: ACCOUNT.into(),
        principal: "user/test".into(),
        access_key_id: String::new(),
        cluster_id: h.cluster,
        expires_ms: None,
    };
    h.auth.revalidate(&scram_id, T0_MS).await.unwrap();
    h.auth.poll_auth_epoch().await.unwrap();
    h.store
        .delete_principal(ACCOUNT, "user/test")
        .await
        .unwrap();
    assert!(h.auth.poll_auth_epoch().await.unwrap());
    assert!(matches!(
        h.auth.revalidate(&scram_id, T0_MS).await,
        Err(AuthError::PrincipalRevoked(_))
    ));
}
