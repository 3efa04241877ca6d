//! Accounts, clusters and access keys. A cluster and an access key each have two items, one by
//! id and one under its account (for lookups by name and ordered listings), always written
//! together in one transaction.

use uuid::Uuid;

use super::exec::{record, s, to_record, Item, TxOutcome};
use super::keys::{self, ACCOUNT_SK, CLUSTER_SK, KEY_SK};
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::types::*;

const NOT_EXISTS: Option<&str> = Some("attribute_not_exists(pk)");
const EXISTS: Option<&str> = Some("attribute_exists(pk)");

/// An item holding `record` as JSON.
pub(super) fn record_item<T: serde::Serialize>(pk: String, sk: String, record: &T) -> Result<Item> {
    Ok(Item::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk)),
        ("d".to_string(), to_record(record)?),
    ]))
}

impl DynamoStore {
    pub(super) async fn d_create_account(&self, a: &Account) -> Result<()> {
        let item = record_item(keys::account(&a.id), ACCOUNT_SK.to_string(), a)?;
        let put = keys::put(&self.table, item, NOT_EXISTS, &[])?;
        match self.transact("create_account", vec![put]).await? {
            TxOutcome::Applied => Ok(()),
            TxOutcome::ConditionFailed(_) => Err(MetadataError::AlreadyExists {
                kind: "account",
                name: a.id.clone(),
            }),
        }
    }

    pub(super) async fn d_get_account(&self, id: &str) -> Result<Option<Account>> {
        self.get_item("get_account", &keys::account(id), ACCOUNT_SK)
            .await?
            .map(|i| record(&i))
            .transpose()
    }

    pub(super) async fn d_create_cluster(&self, c: &Cluster) -> Result<()> {
        let by_name = record_item(keys::account(&c.account_id), keys::cluster_name(&c.name), c)?;
        let by_id = record_item(keys::cluster(c.id), CLUSTER_SK.to_string(), c)?;
        let items = vec![
            keys::put(&self.table, by_name, NOT_EXISTS, &[])?,
            keys::put(&self.table, by_id, NOT_EXISTS, &[])?,
        ];
        match self.transact("create_cluster", items).await? {
            TxOutcome::Applied => Ok(()),
            // The name clash is what the caller can act on, so it is reported first.
            TxOutcome::ConditionFailed(failed) if failed.contains(&0) => {
                Err(MetadataError::AlreadyExists {
                    kind: "cluster",
                    name: format!("{}/{}", c.account_id, c.name),
                })
            }
            TxOutcome::ConditionFailed(_) => Err(MetadataError::AlreadyExists {
                kind: "cluster",
                name: c.id.to_string(),
            }),
        }
    }

    pub(super) async fn d_get_cluster(&self, id: Uuid) -> Result<Option<Cluster>> {
        self.get_item("get_cluster", &keys::cluster(id), CLUSTER_SK)
            .await?
            .map(|i| record(&i))
            .transpose()
    }

    pub(super) async fn d_get_cluster_by_name(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Cluster>> {
        self.get_item(
            "get_cluster_by_name",
            &keys::account(account_id),
            &keys::cluster_name(name),
        )
        .await?
        .map(|i| record(&i))
        .transpose()
    }

    pub(super) async fn d_list_clusters(&self, account_id: &str) -> Result<Vec<Cluster>> {
        let items = self
            .query_prefix("list_clusters", &keys::account(account_id), "CL#")
            .await?;
        let mut out: Vec<Cluster> = items.iter().map(record).collect::<Result<_>>()?;
        // Sort keys order names by UTF-8 bytes, which is also Rust's string order.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn key_items(&self, k: &AccessKey) -> Result<(Item, Item)> {
        Ok((
            record_item(keys::access_key(&k.id), KEY_SK.to_string(), k)?,
            record_item(keys::account(&k.account_id), keys::access_key(&k.id), k)?,
        ))
    }

    pub(super) async fn d_create_access_key(&self, k: &AccessKey) -> Result<()> {
        let (by_id, by_account) = self.key_items(k)?;
        let items = vec![
            keys::put(&self.table, by_id, NOT_EXISTS, &[])?,
            keys::put(&self.table, by_account, None, &[])?,
        ];
        match self.transact("create_access_key", items).await? {
            TxOutcome::Applied => Ok(()),
            TxOutcome::ConditionFailed(_) => Err(MetadataError::AlreadyExists {
                kind: "access key",
                name: k.id.clone(),
            }),
        }
    }

    pub(super) async fn d_get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        self.get_item("get_access_key", &keys::access_key(id), KEY_SK)
            .await?
            .map(|i| record(&i))
            .transpose()
    }

    pub(super) async fn d_list_access_keys(&self, account_id: &str) -> Result<Vec<AccessKey>> {
        let items = self
            .query_prefix("list_access_keys", &keys::account(account_id), "K#")
            .await?;
        let mut out: Vec<AccessKey> = items.iter().map(record).collect::<Result<_>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(super) async fn d_set_access_key_status(&self, id: &str, status: KeyStatus) -> Result<()> {
        let not_found = || MetadataError::NotFound {
            kind: "access key",
            name: id.to_string(),
        };
        let mut key = self.d_get_access_key(id).await?.ok_or_else(not_found)?;
        key.status = status;
        let (by_id, by_account) = self.key_items(&key)?;
        // Both conditional on existing, so a concurrent delete is not undone.
        let items = vec![
            keys::put(&self.table, by_id, EXISTS, &[])?,
            keys::put(&self.table, by_account, EXISTS, &[])?,
            self.auth_epoch_bump()?,
        ];
        match self.transact("set_access_key_status", items).await? {
            TxOutcome::Applied => Ok(()),
            TxOutcome::ConditionFailed(_) => Err(not_found()),
        }
    }

    pub(super) async fn d_delete_access_key(&self, id: &str) -> Result<()> {
        let Some(key) = self.d_get_access_key(id).await? else {
            return Ok(());
        };
        let items = vec![
            keys::delete(&self.table, &keys::access_key(id), KEY_SK, None, &[])?,
            keys::delete(
                &self.table,
                &keys::account(&key.account_id),
                &keys::access_key(id),
                None,
                &[],
            )?,
            self.auth_epoch_bump()?,
        ];
        self.transact("delete_access_key", items).await.map(|_| ())
    }
}
