//! The dev tenant: an account, a cluster named `dev`, the principal `user/dev` with an inline
//! policy allowing everything ([`DEV_POLICY`]; authorization is default-deny) and its access key,
//! created on first start and written to `<data dir>/credentials` (AWS shared-credentials
//! format, profile `fjord`) so that stock clients and the MSK signers can pick them up.
//!
//! The credentials file is the source of truth for "which dev tenant is mine": a later start
//! reuses the key it names if the store still has it with the same secret; otherwise (file
//! missing, store reset, key deactivated, key file changed) a complete new tenant is created and
//! the file rewritten, so the file and the store always agree.

use std::io;
use std::path::{Path, PathBuf};

use fjord_metadata::{
    AccessKey, Account, Cluster, KeyStatus, MetadataError, MetadataStore, Principal,
};
use rand::Rng;
use uuid::Uuid;

use crate::secrets::{replace_private, SealError, SecretSealer, SecretString};

/// File name of the credentials file inside the data dir.
pub const CREDENTIALS_FILE: &str = "credentials";
/// Profile of the credentials file that holds the dev key.
pub const PROFILE: &str = "fjord";
/// Name of the dev cluster.
pub const DEV_CLUSTER: &str = "dev";
/// Principal of the dev access key.
pub const DEV_PRINCIPAL: &str = "user/dev";
/// Name of the dev principal's inline policy.
pub const DEV_POLICY_NAME: &str = "fjord-dev-allow-all";
/// The dev principal's inline policy: everything on every resource.
pub const DEV_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
/// Attempts at drawing an unused random id before giving up.
const ID_ATTEMPTS: usize = 8;

/// Why the dev tenant could not be ensured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The metadata store failed.
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// A secret could not be sealed.
    #[error("sealing the dev secret: {0}")]
    Seal(#[from] SealError),
    /// The credentials file could not be read or written.
    #[error("credentials file {path}: {source}")]
    Io {
        /// The credentials file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Random ids kept colliding with existing ones.
    #[error("could not find an unused {0} id")]
    IdsExhausted(&'static str),
}

/// The dev tenant, as created or found.
#[derive(Clone, Debug)]
pub struct DevTenant {
    /// The 12-digit account id.
    pub account_id: String,
    /// The `dev` cluster.
    pub cluster: Cluster,
    /// Access key id of the dev key.
    pub access_key_id: String,
    /// Its secret (shown only through [`SecretString::expose`]).
    pub secret_access_key: SecretString,
    /// Where the credentials file is.
    pub credentials_path: PathBuf,
}

/// Makes sure the dev tenant exists and `<data_dir>/credentials` names its key; idempotent.
pub async fn ensure_dev_tenant(
    store: &dyn MetadataStore,
    sealer: &SecretSealer,
    data_dir: &Path,
    region: &str,
    now_ms: i64,
) -> Result<DevTenant, BootstrapError> {
    let path = data_dir.join(CREDENTIALS_FILE);
    if let Some((access_key_id, secret)) = read_credentials(&path)? {
        if let Some(tenant) = reuse(
            store,
            sealer,
            &path,
            access_key_id.clone(),
            secret,
            region,
            now_ms,
        )
        .await?
        {
            tracing::info!(access_key_id = %tenant.access_key_id, account = %tenant.account_id, "reusing dev tenant");
            return Ok(tenant);
        }
        tracing::warn!(
            %access_key_id,
            path = %path.display(),
            "the credentials file names a key that the store lacks or cannot use; creating a new dev tenant"
        );
    }
    let tenant = create(store, sealer, &path, region, now_ms).await?;
    tracing::info!(
        access_key_id = %tenant.access_key_id,
        account = %tenant.account_id,
        path = %path.display(),
        "created dev tenant"
    );
    Ok(tenant)
}

/// The existing tenant behind a key from the credentials file, if it is still whole and usable.
async fn reuse(
    store: &dyn MetadataStore,
    sealer: &SecretSealer,
    path: &Path,
    access_key_id: String,
    secret: SecretString,
    region: &str,
    now_ms: i64,
) -> Result<Option<DevTenant>, BootstrapError> {
    let Some(key) = store.get_access_key(&access_key_id).await? else {
        return Ok(None);
    };
    let same_secret = sealer
        .unseal(&key.id, &key.sealed_secret)
        .is_ok_and(|s| s == secret);
    let usable = key.status == KeyStatus::Active && key.expires_ms.is_none_or(|at| at > now_ms);
    if !same_secret || !usable || store.get_account(&key.account_id).await?.is_none() {
        return Ok(None);
    }
    let cluster = match store
        .get_cluster_by_name(&key.account_id, DEV_CLUSTER)
        .await?
    {
        Some(cluster) => {
            if cluster.region != region {
                tracing::warn!(cluster_region = %cluster.region, region, "the dev cluster was created in another region");
            }
            cluster
        }
        None => create_cluster(store, &key.account_id, region, now_ms).await?,
    };
    // Dev tenants made before authorization existed have keys but no principal record.
    ensure_dev_principal(store, &key.account_id, &key.principal, now_ms).await?;
    Ok(Some(DevTenant {
        account_id: key.account_id,
        cluster,
        access_key_id,
        secret_access_key: secret,
        credentials_path: path.to_owned(),
    }))
}

async fn create(
    store: &dyn MetadataStore,
    sealer: &SecretSealer,
    path: &Path,
    region: &str,
    now_ms: i64,
) -> Result<DevTenant, BootstrapError> {
    let account_id = create_account(store, now_ms).await?;
    let cluster = create_cluster(store, &account_id, region, now_ms).await?;
    ensure_dev_principal(store, &account_id, DEV_PRINCIPAL, now_ms).await?;
    let secret = SecretString::new(random_string(&SECRET_ALPHABET, 40));
    let mut access_key_id = None;
    for _ in 0..ID_ATTEMPTS {
        let id = format!("AKIA{}", random_string(&KEY_ID_ALPHABET, 16));
        let key = AccessKey {
            sealed_secret: sealer.seal(&id, &secret)?,
            id: id.clone(),
            account_id: account_id.clone(),
            principal: DEV_PRINCIPAL.to_owned(),
            status: KeyStatus::Active,
            expires_ms: None,
            created_ms: now_ms,
        };
        match store.create_access_key(&key).await {
            Ok(()) => {
                access_key_id = Some(id);
                break;
            }
            Err(MetadataError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let access_key_id = access_key_id.ok_or(BootstrapError::IdsExhausted("access key"))?;
    let contents = format!(
        "# Fjord dev credentials: account {account_id}, cluster {DEV_CLUSTER}, region {region}.\n\
         # Written by `fjord dev`; use with AWS_PROFILE={PROFILE} or --profile {PROFILE}.\n\
         [{PROFILE}]\n\
         aws_access_key_id = {access_key_id}\n\
         aws_secret_access_key = {}\n",
        secret.expose()
    );
    replace_private(path, contents.as_bytes()).map_err(|source| BootstrapError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(DevTenant {
        account_id,
        cluster,
        access_key_id,
        secret_access_key: secret,
        credentials_path: path.to_owned(),
    })
}

async fn create_account(store: &dyn MetadataStore, now_ms: i64) -> Result<String, BootstrapError> {
    for _ in 0..ID_ATTEMPTS {
        let id = random_string(b"0123456789", 12);
        let account = Account {
            id: id.clone(),
            name: "dev".to_owned(),
            created_ms: now_ms,
        };
        match store.create_account(&account).await {
            Ok(()) => return Ok(id),
            Err(MetadataError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(BootstrapError::IdsExhausted("account"))
}

async fn create_cluster(
    store: &dyn MetadataStore,
    account_id: &str,
    region: &str,
    now_ms: i64,
) -> Result<Cluster, BootstrapError> {
    let cluster = Cluster {
        id: Uuid::new_v4(),
        account_id: account_id.to_owned(),
        name: DEV_CLUSTER.to_owned(),
        region: region.to_owned(),
        created_ms: now_ms,
    };
    match store.create_cluster(&cluster).await {
        Ok(()) => Ok(cluster),
        // Another process created it between our read and write: use theirs.
        Err(MetadataError::AlreadyExists { .. }) => store
            .get_cluster_by_name(account_id, DEV_CLUSTER)
            .await?
            .ok_or_else(|| {
                MetadataError::Conflict("dev cluster vanished while creating it".into()).into()
            }),
        Err(e) => Err(e.into()),
    }
}

/// AWS access key ids use upper-case base32.
const KEY_ID_ALPHABET: [u8; 32] = *b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// AWS secrets use the base64 alphabet.
const SECRET_ALPHABET: [u8; 64] =
    *b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_string(alphabet: &[u8], len: usize) -> String {
    // thread_rng is a CSPRNG seeded from the OS, fit for secrets.
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// Reads (access key id, secret) of profile `fjord` from an AWS shared-credentials file.
fn read_credentials(path: &Path) -> Result<Option<(String, SecretString)>, BootstrapError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BootstrapError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    Ok(parse_credentials(&text))
}

fn parse_credentials(text: &str) -> Option<(String, SecretString)> {
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == PROFILE;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            match key.trim() {
                "aws_access_key_id" => id = Some(value.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(SecretString::new(value.trim())),
                _ => {}
            }
        }
    }
    Some((
        id.filter(|i| !i.is_empty())?,
        secret.filter(|s| !s.expose().is_empty())?,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing unwrap is a failing test
mod tests {
    use super::*;

    #[test]
    fn parses_the_profile_only() {
        let text = "[default]\naws_access_key_id = X\naws_secret_access_key = Y\n\
                    # comment\n[fjord]\naws_access_key_id=AKIAABC\n aws_secret_access_key =  s+/=\n";
        let (id, secret) = parse_credentials(text).unwrap();
        assert_eq!(id, "AKIAABC");
        assert_eq!(secret.expose(), "s+/=");
        assert!(
            parse_credentials("[default]\naws_access_key_id = X\naws_secret_access_key = Y\n")
                .is_none()
        );
        assert!(parse_credentials("[fjord]\naws_access_key_id = X\n").is_none());
    }

    #[test]
    fn random_ids_have_the_aws_shape() {
        let id = format!("AKIA{}", random_string(&KEY_ID_ALPHABET, 16));
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| KEY_ID_ALPHABET.contains(&b)));
        let secret = random_string(&SECRET_ALPHABET, 40);
        assert_eq!(secret.len(), 40);
        assert_ne!(secret, random_string(&SECRET_ALPHABET, 40));
    }
}

/// Creates the dev principal with [`DEV_POLICY`] unless a principal of that name exists (one
/// that exists is left as it is: its policies may have been narrowed on purpose).
async fn ensure_dev_principal(
    store: &dyn MetadataStore,
    account_id: &str,
    name: &str,
    now_ms: i64,
) -> Result<(), BootstrapError> {
    if store.get_principal(account_id, name).await?.is_some() {
        return Ok(());
    }
    let principal = Principal {
        account_id: account_id.to_owned(),
        name: name.to_owned(),
        policies: [(DEV_POLICY_NAME.to_owned(), DEV_POLICY.to_owned())].into(),
        scram: None,
        version: 0,
        created_ms: now_ms,
    };
    match store.create_principal(&principal).await {
        // Another process starting at the same time created it: as good.
        Ok(()) | Err(MetadataError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod dev_principal_tests {
    #![allow(clippy::unwrap_used)] // a failing unwrap is a failing test
    use super::*;
    use crate::policy::{Action, ClusterRef, PolicySet, Resource};

    #[tokio::test]
    async fn the_dev_principal_is_allowed_everything_and_restored_for_old_tenants() {
        let dir = tempfile::tempdir().unwrap();
        let store = fjord_metadata::SqliteStore::open(&dir.path().join("meta.db")).unwrap();
        let sealer = SecretSealer::load_or_create(&dir.path().join("secret.key")).unwrap();
        let data = dir.path().join("data");
        let t = ensure_dev_tenant(&store, &sealer, &data, "us-east-1", 1)
            .await
            .unwrap();
        let p = store
            .get_principal(&t.account_id, DEV_PRINCIPAL)
            .await
            .unwrap()
            .unwrap();
        let set =
            PolicySet::parse(p.policies.iter().map(|(n, d)| (n.as_str(), d.as_str()))).unwrap();
        let cluster = ClusterRef {
            region: "us-east-1".into(),
            account_id: t.account_id.clone(),
            name: t.cluster.name.clone(),
            id: t.cluster.id,
        };
        set.check_all(
            &cluster,
            &[
                (Action::WriteData, Resource::Topic("t")),
                (Action::ReadData, Resource::Topic("t")),
                (Action::CreateTopic, Resource::Topic("t")),
                (Action::AlterCluster, Resource::Cluster),
            ],
        )
        .unwrap();
        // A tenant made before principals existed (key, no principal record) gets one on reuse.
        store
            .delete_principal(&t.account_id, DEV_PRINCIPAL)
            .await
            .unwrap();
        let again = ensure_dev_tenant(&store, &sealer, &data, "us-east-1", 2)
            .await
            .unwrap();
        assert_eq!(again.access_key_id, t.access_key_id);
        let p = store
            .get_principal(&t.account_id, DEV_PRINCIPAL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            p.policies.get(DEV_POLICY_NAME).map(String::as_str),
            Some(DEV_POLICY)
        );
        // A principal that exists is left alone (its policy may have been narrowed on purpose).
        let mut narrowed = p.clone();
        narrowed.policies.clear();
        store.update_principal(&narrowed).await.unwrap();
        ensure_dev_tenant(&store, &sealer, &data, "us-east-1", 3)
            .await
            .unwrap();
        let p = store
            .get_principal(&t.account_id, DEV_PRINCIPAL)
            .await
            .unwrap()
            .unwrap();
        assert!(p.policies.is_empty());
    }
}
