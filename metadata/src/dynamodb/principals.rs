//! Principals, the authorization epoch, cluster deletes and settings, ACLs and usage records.
//!
//! Items: a principal is `A#<account>`/`PR#<name>` (version in `v`); the epoch is one counter
//! item `AUTH_EPOCH`/`COUNTER`, raised in the same transaction as the change that needs it;
//! settings are `C#<cluster>`/`SETTINGS`; an ACL binding is `C#<cluster>`/`ACL#<binding>`;
//! usage records are `U#<cluster>`/`<period start:020>#<source>`, so a range query by period
//! start serves the listing.

use aws_sdk_dynamodb::types::TransactWriteItem;
use uuid::Uuid;

use super::exec::{get_n, get_s, n, record, s, TxOutcome};
use super::keys::{self, AUTH_EPOCH_PK, CLUSTER_SK, COUNTER_SK, SETTINGS_SK};
use super::tenants::record_item;
use super::DynamoStore;
use crate::error::{MetadataError, Result};
use crate::types::*;

/// DynamoDB limits a sort key to 1,024 bytes; the prefix and some room stay free.
const MAX_BINDING_BYTES: usize = 1_000;

fn principal_name(account_id: &str, name: &str) -> String {
    format!("{account_id}/{name}")
}

impl DynamoStore {
    /// The write that raises the authorization epoch, for the transaction of a change.
    pub(super) fn auth_epoch_bump(&self) -> Result<TransactWriteItem> {
        keys::update(
            &self.table,
            AUTH_EPOCH_PK,
            COUNTER_SK,
            "ADD n :one",
            None,
            &[(":one", n(1))],
        )
    }

    pub(super) async fn d_auth_epoch(&self) -> Result<i64> {
        match self
            .get_item("auth_epoch", AUTH_EPOCH_PK, COUNTER_SK)
            .await?
        {
            Some(item) => get_n(&item, "n"),
            None => Ok(0),
        }
    }

    pub(super) async fn d_delete_cluster(&self, id: Uuid) -> Result<()> {
        let not_found = || MetadataError::NotFound {
            kind: "cluster",
            name: id.to_string(),
        };
        let c = self.d_get_cluster(id).await?.ok_or_else(not_found)?;
        let items = vec![
            keys::delete(
                &self.table,
                &keys::cluster(id),
                CLUSTER_SK,
                Some("attribute_exists(pk)"),
                &[],
            )?,
            keys::delete(
                &self.table,
                &keys::account(&c.account_id),
                &keys::cluster_name(&c.name),
                None,
                &[],
            )?,
        ];
        match self.transact("delete_cluster", items).await? {
            TxOutcome::Applied => Ok(()),
            TxOutcome::ConditionFailed(_) => Err(not_found()),
        }
    }

    fn principal_item(&self, p: &Principal) -> Result<super::exec::Item> {
        let mut item = record_item(keys::account(&p.account_id), keys::principal(&p.name), p)?;
        item.insert("v".to_string(), n(p.version));
        Ok(item)
    }

    pub(super) async fn d_create_principal(&self, p: &Principal) -> Result<()> {
        if p.version != 0 {
            return Err(MetadataError::InvalidArgument(format!(
                "a new principal has version 0, not {}",
                p.version
            )));
        }
        let put = keys::put(
            &self.table,
            self.principal_item(p)?,
            Some("attribute_not_exists(pk)"),
            &[],
        )?;
        match self.transact("create_principal", vec![put]).await? {
            TxOutcome::Applied => Ok(()),
            TxOutcome::ConditionFailed(_) => Err(MetadataError::AlreadyExists {
                kind: "principal",
                name: principal_name(&p.account_id, &p.name),
            }),
        }
    }

    pub(super) async fn d_get_principal(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Principal>> {
        self.get_item(
            "get_principal",
            &keys::account(account_id),
            &keys::principal(name),
        )
        .await?
        .map(|i| record(&i))
        .transpose()
    }

    pub(super) async fn d_list_principals(&self, account_id: &str) -> Result<Vec<Principal>> {
        self.query_prefix("list_principals", &keys::account(account_id), "PR#")
            .await?
            .iter()
            .map(record)
            .collect()
    }

    pub(super) async fn d_update_principal(&self, p: &Principal) -> Result<Principal> {
        let not_found = || MetadataError::NotFound {
            kind: "principal",
            name: principal_name(&p.account_id, &p.name),
        };
        let stored = self
            .d_get_principal(&p.account_id, &p.name)
            .await?
            .ok_or_else(not_found)?;
        let conflict = |now: i64| {
            MetadataError::Conflict(format!(
                "principal {} is at version {now}, not {}",
                principal_name(&p.account_id, &p.name),
                p.version
            ))
        };
        if stored.version != p.version {
            return Err(conflict(stored.version));
        }
        let next = Principal {
            version: p.version + 1,
            created_ms: stored.created_ms,
            ..p.clone()
        };
        let items = vec![
            keys::put(
                &self.table,
                self.principal_item(&next)?,
                Some("v = :v"),
                &[(":v", n(p.version))],
            )?,
            self.auth_epoch_bump()?,
        ];
        match self.transact("update_principal", items).await? {
            TxOutcome::Applied => Ok(next),
            TxOutcome::ConditionFailed(_) => {
                match self.d_get_principal(&p.account_id, &p.name).await? {
                    None => Err(not_found()),
                    Some(now) => Err(conflict(now.version)),
                }
            }
        }
    }

    pub(super) async fn d_delete_principal(&self, account_id: &str, name: &str) -> Result<()> {
        let items = vec![
            keys::delete(
                &self.table,
                &keys::account(account_id),
                &keys::principal(name),
                Some("attribute_exists(pk)"),
                &[],
            )?,
            self.auth_epoch_bump()?,
        ];
        // Absent: nothing to revoke, and no error by contract.
        self.transact("delete_principal", items).await.map(|_| ())
    }

    pub(super) async fn d_get_cluster_settings(
        &self,
        cluster_id: Uuid,
    ) -> Result<Option<ClusterSettings>> {
        self.get_item(
            "get_cluster_settings",
            &keys::cluster(cluster_id),
            SETTINGS_SK,
        )
        .await?
        .map(|i| record(&i))
        .transpose()
    }

    pub(super) async fn d_put_cluster_settings(
        &self,
        st: &ClusterSettings,
    ) -> Result<ClusterSettings> {
        let next = ClusterSettings {
            version: st.version + 1,
            ..st.clone()
        };
        let mut item = record_item(keys::cluster(st.cluster_id), SETTINGS_SK.to_string(), &next)?;
        item.insert("v".to_string(), n(next.version));
        let put = if st.version == 0 {
            keys::put(&self.table, item, Some("attribute_not_exists(pk)"), &[])?
        } else {
            keys::put(&self.table, item, Some("v = :v"), &[(":v", n(st.version))])?
        };
        match self.transact("put_cluster_settings", vec![put]).await? {
            TxOutcome::Applied => Ok(next),
            TxOutcome::ConditionFailed(_) => {
                let now = self
                    .d_get_cluster_settings(st.cluster_id)
                    .await?
                    .map_or(0, |s| s.version);
                Err(MetadataError::Conflict(format!(
                    "settings of cluster {} are at version {now}, not {}",
                    st.cluster_id, st.version
                )))
            }
        }
    }

    fn check_binding(binding: &str) -> Result<()> {
        if binding.len() > MAX_BINDING_BYTES {
            return Err(MetadataError::InvalidArgument(format!(
                "ACL binding of {} bytes exceeds {MAX_BINDING_BYTES}",
                binding.len()
            )));
        }
        Ok(())
    }

    pub(super) async fn d_create_acls(
        &self,
        cluster_id: Uuid,
        bindings: &[String],
    ) -> Result<usize> {
        let mut added = 0;
        for b in bindings {
            Self::check_binding(b)?;
            let mut item = record_item(keys::cluster(cluster_id), keys::acl(b), &())?;
            item.insert("b".to_string(), s(b.clone()));
            let put = keys::put(&self.table, item, Some("attribute_not_exists(pk)"), &[])?;
            // In the same transaction, so the epoch rises exactly when a binding is new (a
            // Deny binding takes access away; an Allow must reach every gateway within a poll).
            let items = vec![put, self.auth_epoch_bump()?];
            if let TxOutcome::Applied = self.transact("create_acls", items).await? {
                added += 1;
            }
        }
        Ok(added)
    }

    pub(super) async fn d_list_acls(&self, cluster_id: Uuid) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .query_prefix("list_acls", &keys::cluster(cluster_id), "ACL#")
            .await?
            .iter()
            .map(|i| get_s(i, "b").map(str::to_string))
            .collect::<Result<_>>()?;
        out.sort();
        Ok(out)
    }

    pub(super) async fn d_delete_acls(
        &self,
        cluster_id: Uuid,
        bindings: &[String],
    ) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for b in bindings {
            Self::check_binding(b)?;
            let items = vec![
                keys::delete(
                    &self.table,
                    &keys::cluster(cluster_id),
                    &keys::acl(b),
                    Some("attribute_exists(pk)"),
                    &[],
                )?,
                self.auth_epoch_bump()?,
            ];
            if let TxOutcome::Applied = self.transact("delete_acls", items).await? {
                removed.push(b.clone());
            }
        }
        removed.sort();
        removed.dedup();
        Ok(removed)
    }

    pub(super) async fn d_record_usage(&self, r: &UsageRecord) -> Result<()> {
        let item = record_item(
            keys::usage(r.cluster_id),
            keys::usage_record(r.period_start_ms, &r.source),
            r,
        )?;
        let put = keys::put(&self.table, item, None, &[])?;
        self.transact("record_usage", vec![put]).await.map(|_| ())
    }

    pub(super) async fn d_list_usage(
        &self,
        cluster_id: Uuid,
        from_ms: Millis,
        to_ms: Millis,
    ) -> Result<Vec<UsageRecord>> {
        if to_ms <= from_ms || to_ms <= 0 {
            return Ok(Vec::new());
        }
        let lo = format!("{:020}#", from_ms.max(0));
        let hi = format!("{:020}#\u{ffff}", to_ms - 1);
        self.query_range("list_usage", &keys::usage(cluster_id), &lo, &hi, true, None)
            .await?
            .iter()
            .map(record)
            .collect()
    }
}
