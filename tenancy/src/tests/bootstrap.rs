//! The dev tenant bootstrap.
#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

use fjord_metadata::MetadataStore;

use super::*;

#[tokio::test]
async fn dev_tenant_bootstrap_is_idempotent_and_usable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    let sealer = SecretSealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    let data = dir.path().join("data");
    let first = crate::ensure_dev_tenant(&*store, &sealer, &data, "us-east-1", T0_MS)
        .await
        .unwrap();
    assert_eq!(first.account_id.len(), 12);
    assert!(first.account_id.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(first.cluster.name, "dev");
    assert_eq!(first.cluster.region, "us-east-1");
    assert_eq!(first.access_key_id.len(), 20);
    assert!(first.access_key_id.starts_with("AKIA"));
    assert_eq!(first.secret_access_key.expose().len(), 40);
    assert_eq!(first.credentials_path, data.join("credentials"));
    let text = std::fs::read_to_string(&first.credentials_path).unwrap();
    assert!(text.contains(&format!(
        "[fjord]\naws_access_key_id = {}\n",
        first.access_key_id
    )));
    assert!(text.contains(&format!(
        "aws_secret_access_key = {}\n",
        first.secret_access_key.expose()
    )));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&first.credentials_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!format!("{first:?}").contains(first.secret_access_key.expose()));

    let again = crate::ensure_dev_tenant(&*store, &sealer, &data, "us-east-1", T0_MS + 1)
        .await
        .unwrap();
    assert_eq!(again.account_id, first.account_id);
    assert_eq!(again.cluster, first.cluster);
    assert_eq!(again.access_key_id, first.access_key_id);
    assert_eq!(again.secret_access_key, first.secret_access_key);
    assert_eq!(
        std::fs::read_to_string(&again.credentials_path).unwrap(),
        text
    );

    // The key works through every mechanism.
    let config = AuthConfig {
        region: "us-east-1".into(),
        default_cluster: first.cluster.id,
        max_clock_skew_ms: SKEW_MS,
    };
    let auth = Authenticator::new(store.clone(), sealer.clone(), config);
    let (key, secret) = (&first.access_key_id, first.secret_access_key.expose());
    let t = msk_iam_oauth_token(key, secret, None, "us-east-1", at(T0_MS)).unwrap();
    let id = bearer(&auth, &t, T0_MS).await.unwrap();
    assert_eq!(
        (id.principal.as_str(), id.account_id.as_str()),
        ("user/dev", first.account_id.as_str())
    );
    assert!(plain(&auth, key, secret, T0_MS).await.is_ok());

    // Without the file, or with its key gone from the store, a new consistent tenant appears.
    std::fs::remove_file(&first.credentials_path).unwrap();
    let fresh = crate::ensure_dev_tenant(&*store, &sealer, &data, "us-east-1", T0_MS)
        .await
        .unwrap();
    assert_ne!(fresh.access_key_id, first.access_key_id);
    store.delete_access_key(&fresh.access_key_id).await.unwrap();
    let newer = crate::ensure_dev_tenant(&*store, &sealer, &data, "us-east-1", T0_MS)
        .await
        .unwrap();
    assert_ne!(newer.access_key_id, fresh.access_key_id);
    let stored = store
        .get_access_key(&newer.access_key_id)
        .await
        .unwrap()
        .unwrap();
    let unsealed = sealer.unseal(&stored.id, &stored.sealed_secret).unwrap();
    assert_eq!(unsealed, newer.secret_access_key);
    let reread = crate::ensure_dev_tenant(&*store, &sealer, &data, "us-east-1", T0_MS)
        .await
        .unwrap();
    assert_eq!(reread.access_key_id, newer.access_key_id);
    assert_eq!(reread.cluster, newer.cluster);
}
