//! Accounts, clusters and access keys.

use super::fixtures::*;
use super::{assert_already_exists, assert_not_found, Store};
use crate::types::*;

pub(super) async fn accounts(s: Store) {
    let a = account("111122223333");
    assert_eq!(s.get_account(&a.id).await.expect("get"), None);
    s.create_account(&a).await.expect("create");
    assert_eq!(s.get_account(&a.id).await.expect("get"), Some(a.clone()));

    let mut again = a.clone();
    again.name = "other".to_string();
    assert_already_exists(s.create_account(&again).await, "account");
    assert_eq!(
        s.get_account(&a.id).await.expect("get").map(|x| x.name),
        Some(a.name),
        "a refused create must not overwrite"
    );
}

pub(super) async fn clusters(s: Store) {
    let (acct_a, acct_b) = ("111111111111", "222222222222");
    let zeta = cluster(acct_a, "zeta");
    let alpha = cluster(acct_a, "alpha");
    let other = cluster(acct_b, "alpha");
    for c in [&zeta, &alpha, &other] {
        s.create_cluster(c).await.expect("create_cluster");
    }
    assert_eq!(
        s.get_cluster(alpha.id).await.expect("get"),
        Some(alpha.clone())
    );
    assert_eq!(
        s.get_cluster(uuid::Uuid::new_v4()).await.expect("get"),
        None
    );
    assert_eq!(
        s.get_cluster_by_name(acct_b, "alpha")
            .await
            .expect("by name"),
        Some(other.clone())
    );
    assert_eq!(
        s.get_cluster_by_name(acct_b, "zeta")
            .await
            .expect("by name"),
        None
    );
    assert_eq!(
        s.list_clusters(acct_a).await.expect("list"),
        vec![alpha.clone(), zeta.clone()],
        "clusters of an account, ordered by name"
    );
    assert_eq!(s.list_clusters("333333333333").await.expect("list"), vec![]);

    // Same name in the same account: refused even with a new id.
    assert_already_exists(s.create_cluster(&cluster(acct_a, "zeta")).await, "cluster");
    // Same id under a new name: refused too.
    let mut same_id = cluster(acct_a, "new");
    same_id.id = zeta.id;
    assert_already_exists(s.create_cluster(&same_id).await, "cluster");
    assert_eq!(s.list_clusters(acct_a).await.expect("list").len(), 2);
}

pub(super) async fn access_keys(s: Store) {
    let acct = "444455556666";
    let mut k2 = access_key("AKIAZZZZZZZZZZZZZZZ2", acct);
    k2.expires_ms = Some(1_800_000_000_000);
    k2.status = KeyStatus::Inactive;
    let k1 = access_key("AKIAAAAAAAAAAAAAAAA1", acct);
    let foreign = access_key("AKIAFOREIGNFOREIGN00", "999999999999");
    for k in [&k2, &k1, &foreign] {
        s.create_access_key(k).await.expect("create key");
    }
    assert_eq!(
        s.get_access_key(&k2.id).await.expect("get"),
        Some(k2.clone())
    );
    assert_eq!(s.get_access_key("AKIANOPE").await.expect("get"), None);
    assert_eq!(
        s.list_access_keys(acct).await.expect("list"),
        vec![k1.clone(), k2.clone()],
        "keys of an account, ordered by id"
    );
    assert_already_exists(s.create_access_key(&k1).await, "access key");

    for (status, what) in [
        (KeyStatus::Inactive, "deactivate"),
        (KeyStatus::Active, "activate"),
    ] {
        s.set_access_key_status(&k1.id, status).await.expect(what);
        assert_eq!(
            s.get_access_key(&k1.id)
                .await
                .expect("get")
                .map(|k| k.status),
            Some(status)
        );
    }
    assert_not_found(
        s.set_access_key_status("AKIANOPE", KeyStatus::Active).await,
        "access key",
    );

    s.delete_access_key(&k1.id).await.expect("delete");
    s.delete_access_key(&k1.id)
        .await
        .expect("delete of an absent key is not an error");
    assert_eq!(s.get_access_key(&k1.id).await.expect("get"), None);
    assert_eq!(s.list_access_keys(acct).await.expect("list"), vec![k2]);
}
