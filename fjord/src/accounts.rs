//! `fjord admin create-account`: a new tenant account with its first administrator.
//!
//! On AWS an account is made outside MSK (Organizations) and its first administrator outside
//! IAM's API, so an operator command is the honest equivalent: it writes the account, a
//! principal (`user/admin` by default) with [`ADMIN_POLICY`] and one access key for it straight
//! into the shared metadata, the secret sealed with the instance's secret-sealing key, and
//! appends the key as a profile to an AWS shared-credentials file. From there the tenant manages
//! itself through the control plane (clusters, topics, further principals and keys).
//!
//! Safe against a running `fjord dev` on the same data dir: SQLite metadata is shared between
//! processes (WAL mode, busy timeout), gateways look a key up on its first use (unknown keys are
//! not cached), and every write is a conditional create, so an existing account id is refused
//! rather than overwritten.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use fjord_metadata::{
    AccessKey, Account, DynamoStore, KeyStatus, MetadataError, MetadataStore, Principal,
    SqliteStore,
};
use fjord_tenancy::secrets::{SealError, SecretSealer, SecretString};
use fjord_tenancy::PolicySet;
use rand::Rng;

use crate::cli::StateArgs;

/// The administrator's policy: everything MSK lets a tenant do (the cluster API and the Kafka
/// actions), managing the account's own principals and keys, temporary credentials, and reading
/// its clusters' settings and usage. Not `fjord:PutClusterSettings`: limits are the operator's
/// to raise (on AWS, a service-quota request), as the control plane's `usage` module says.
pub const ADMIN_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AccountAdministrator","Effect":"Allow","Action":["kafka:*","kafka-cluster:*","iam:*","sts:*","fjord:GetClusterSettings","fjord:GetClusterUsage"],"Resource":"*"}]}"#;
/// The name the administrator's policy is attached under.
pub const ADMIN_POLICY_NAME: &str = "account-administrator";
/// Longest IAM user name.
const MAX_PRINCIPAL_NAME: usize = 64;
/// Attempts at drawing an unused access key id.
const ID_ATTEMPTS: usize = 8;
/// AWS access key ids use upper-case base32.
const KEY_ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// AWS secrets use the base64 alphabet.
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `fjord admin create-account`.
#[derive(Debug, Args)]
pub struct CreateAccountArgs {
    /// Where state lives (the metadata and the secret-sealing key of the running instances).
    #[command(flatten)]
    pub state: StateArgs,

    /// The new account's id: 12 digits. An existing id is refused.
    #[arg(long)]
    pub account_id: String,

    /// A human-readable name for the account (defaults to its id).
    #[arg(long)]
    pub name: Option<String>,

    /// The administrator principal: `<name>` or `user/<name>`.
    #[arg(long, default_value = "admin")]
    pub principal: String,

    /// An IAM policy document (JSON file) to give the administrator instead of the default,
    /// which allows `kafka:*`, `kafka-cluster:*`, `iam:*`, `sts:*` and reading cluster settings
    /// and usage.
    #[arg(long)]
    pub policy_file: Option<PathBuf>,

    /// AWS shared-credentials file to append the administrator's key to (created, mode 0600,
    /// if missing). Defaults to `<data-dir>/credentials`, next to the dev profile.
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,

    /// Profile name for the key in the credentials file (defaults to `account-<id>`). A
    /// profile that is already there is refused before anything is created.
    #[arg(long)]
    pub profile: Option<String>,
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    /// The account id is not 12 digits.
    #[error("account id {0:?} must be 12 digits")]
    BadAccountId(String),
    /// The principal name is not an IAM user name.
    #[error("principal {0:?} must be `<name>` or `user/<name>`, the name 1 to 64 letters, digits or +=,.@_-")]
    BadPrincipal(String),
    /// The profile name cannot be written as a credentials-file section.
    #[error("profile {0:?} must be 1 to 64 letters, digits or +=,.@_-")]
    BadProfile(String),
    /// The policy document is not a valid IAM policy.
    #[error("policy: {0}")]
    BadPolicy(String),
    /// An account with this id exists.
    #[error("account {0} already exists; pick another id")]
    AccountExists(String),
    /// The credentials file already has this profile.
    #[error("credentials file {path} already has a profile [{profile}]; pick another --profile")]
    ProfileExists {
        /// The credentials file.
        path: PathBuf,
        /// The profile.
        profile: String,
    },
    /// The metadata store failed.
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// The new secret could not be sealed.
    #[error("sealing the new secret: {0}")]
    Seal(#[from] SealError),
    /// Random key ids kept colliding with existing ones.
    #[error("could not draw an unused access key id")]
    IdsExhausted,
    /// The credentials file could not be read or written.
    #[error("credentials file {path}: {source}")]
    Io {
        /// The credentials file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// 12 digits.
    pub account_id: String,
    /// Human-readable name.
    pub name: String,
    /// Stored principal name (`user/<name>`).
    pub principal: String,
    /// The administrator's policy document.
    pub policy: String,
}

/// The account as created: its administrator's key.
#[derive(Debug)]
pub struct CreatedAccount {
    /// The account id.
    pub account_id: String,
    /// The administrator (`user/<name>`).
    pub principal: String,
    /// The key id.
    pub access_key_id: String,
    /// The key's secret.
    pub secret: SecretString,
}

impl NewAccount {
    /// Validates the parts of a request: account id, principal name (`admin` becomes
    /// `user/admin`) and policy document.
    pub fn new(
        account_id: &str,
        name: Option<&str>,
        principal: &str,
        policy: Option<String>,
    ) -> Result<Self, CreateAccountError> {
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CreateAccountError::BadAccountId(account_id.to_owned()));
        }
        let user = principal.strip_prefix("user/").unwrap_or(principal);
        if !valid_name(user) {
            return Err(CreateAccountError::BadPrincipal(principal.to_owned()));
        }
        let policy = policy.unwrap_or_else(|| ADMIN_POLICY.to_owned());
        PolicySet::parse([(ADMIN_POLICY_NAME, policy.as_str())])
            .map_err(|(_, e)| CreateAccountError::BadPolicy(e.to_string()))?;
        Ok(Self {
            account_id: account_id.to_owned(),
            name: name.unwrap_or(account_id).to_owned(),
            principal: format!("user/{user}"),
            policy,
        })
    }
}

/// IAM's user-name characters (and a safe credentials-file section name).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PRINCIPAL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// Creates the account, its administrator and the administrator's access key in `store`.
/// Refuses an existing account id; each write is a conditional create, so two operators racing
/// on one id get one account and one refusal.
pub async fn create_account(
    store: &dyn MetadataStore,
    sealer: &SecretSealer,
    new: &NewAccount,
    now_ms: i64,
) -> Result<CreatedAccount, CreateAccountError> {
    let account = Account {
        id: new.account_id.clone(),
        name: new.name.clone(),
        created_ms: now_ms,
    };
    match store.create_account(&account).await {
        Ok(()) => {}
        Err(MetadataError::AlreadyExists { .. }) => {
            return Err(CreateAccountError::AccountExists(new.account_id.clone()))
        }
        Err(e) => return Err(e.into()),
    }
    let principal = Principal {
        account_id: new.account_id.clone(),
        name: new.principal.clone(),
        policies: [(ADMIN_POLICY_NAME.to_owned(), new.policy.clone())].into(),
        scram: None,
        version: 0,
        created_ms: now_ms,
    };
    store.create_principal(&principal).await?;
    let secret = SecretString::new(random_string(SECRET_ALPHABET, 40));
    for _ in 0..ID_ATTEMPTS {
        let id = format!("AKIA{}", random_string(KEY_ID_ALPHABET, 16));
        let key = AccessKey {
            sealed_secret: sealer.seal(&id, &secret)?,
            id: id.clone(),
            account_id: new.account_id.clone(),
            principal: new.principal.clone(),
            status: KeyStatus::Active,
            expires_ms: None,
            created_ms: now_ms,
        };
        match store.create_access_key(&key).await {
            Ok(()) => {
                tracing::info!(account = %new.account_id, principal = %new.principal, access_key_id = %id, "account created");
                return Ok(CreatedAccount {
                    account_id: new.account_id.clone(),
                    principal: new.principal.clone(),
                    access_key_id: id,
                    secret,
                });
            }
            Err(MetadataError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CreateAccountError::IdsExhausted)
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    // thread_rng is a CSPRNG seeded from the OS, fit for secrets.
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// A credentials file opened for appending one profile, locked against other appenders.
pub struct CredentialsFile {
    path: PathBuf,
    file: File,
}

impl CredentialsFile {
    /// Opens (creating, mode 0600) and locks `path`, and refuses if it already has `profile`:
    /// checked before anything is created, so a refused profile leaves no orphan account.
    pub fn open_for(path: &Path, profile: &str) -> Result<Self, CreateAccountError> {
        if !valid_name(profile) {
            return Err(CreateAccountError::BadProfile(profile.to_owned()));
        }
        let io_err = |source| CreateAccountError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        // Held until this value is dropped: a second create-account appending to the same
        // file waits instead of interleaving its lines.
        file.lock().map_err(io_err)?;
        let mut me = Self {
            path: path.to_owned(),
            file,
        };
        if me.read()?.lines().any(|l| is_section(l, profile)) {
            return Err(CreateAccountError::ProfileExists {
                path: path.to_owned(),
                profile: profile.to_owned(),
            });
        }
        Ok(me)
    }

    fn read(&mut self) -> Result<String, CreateAccountError> {
        let mut text = String::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_string(&mut text))
            .map_err(|source| CreateAccountError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(text)
    }

    /// Appends `[profile]` with the account's key, then syncs the file.
    pub fn append(
        mut self,
        profile: &str,
        created: &CreatedAccount,
        region: &str,
    ) -> Result<(), CreateAccountError> {
        let existing = self.read()?;
        let separator = if existing.is_empty() || existing.ends_with("\n\n") {
            ""
        } else if existing.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        let section = format!(
            "{separator}# Fjord account {account}, principal {principal}, region {region}.\n\
             # Written by `fjord admin create-account`; use with AWS_PROFILE={profile}.\n\
             [{profile}]\n\
             aws_access_key_id = {key}\n\
             aws_secret_access_key = {secret}\n",
            account = created.account_id,
            principal = created.principal,
            key = created.access_key_id,
            secret = created.secret.expose(),
        );
        self.file
            .write_all(section.as_bytes())
            .and_then(|()| self.file.sync_all())
            .map_err(|source| CreateAccountError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// Whether a credentials-file line opens section `profile`.
fn is_section(line: &str, profile: &str) -> bool {
    line.trim()
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .is_some_and(|s| s.trim() == profile)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The metadata store `--metadata` names. Unlike the serving roles this never creates a fresh
/// SQLite file: an account written where no instance looks would be lost.
fn open_metadata(state: &StateArgs) -> anyhow::Result<Box<dyn MetadataStore>> {
    let path = match crate::roles::metadata_spec(state)? {
        crate::roles::MetadataSpec::Dynamo(url) => {
            let store = DynamoStore::connect(&url)
                .with_context(|| format!("connecting to metadata {url}"))?;
            return Ok(Box::new(store));
        }
        crate::roles::MetadataSpec::Sqlite(path) => path,
    };
    if !path.exists() {
        bail!(
            "no metadata at {}: start `fjord dev` (or run `fjord admin init-metadata`) on this --data-dir first",
            path.display()
        );
    }
    let store =
        SqliteStore::open(&path).with_context(|| format!("opening metadata {}", path.display()))?;
    Ok(Box::new(store))
}

/// The instances' secret-sealing key. Never made up here: a secret sealed with a key that no
/// gateway has could not be verified anywhere.
fn open_sealer(state: &StateArgs) -> anyhow::Result<SecretSealer> {
    if state.kms_key_id.is_some() {
        bail!(
            "create-account does not support --kms-key-id yet (it needs the object store the \
             wrapped key lives in); create the account with the file key, or through a control \
             plane started with --kms-key-id"
        );
    }
    let path = state.data_dir.join("secret.key");
    if !path.exists() {
        bail!(
            "no secret-sealing key at {}: start `fjord dev` on this --data-dir first",
            path.display()
        );
    }
    SecretSealer::load_or_create(&path)
        .with_context(|| format!("loading the secret-sealing key {}", path.display()))
}

/// `fjord admin create-account`: prints the account, principal, key id and profile.
pub async fn run(args: CreateAccountArgs) -> anyhow::Result<()> {
    let policy = match &args.policy_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading policy file {}", path.display()))?,
        ),
        None => None,
    };
    let new = NewAccount::new(
        &args.account_id,
        args.name.as_deref(),
        &args.principal,
        policy,
    )?;
    let profile = args
        .profile
        .clone()
        .unwrap_or_else(|| format!("account-{}", new.account_id));
    let credentials_path = args
        .credentials_file
        .clone()
        .unwrap_or_else(|| args.state.data_dir.join("credentials"));
    // Everything that can be refused is checked before anything is written.
    let store = open_metadata(&args.state)?;
    let sealer = open_sealer(&args.state)?;
    let credentials = CredentialsFile::open_for(&credentials_path, &profile)?;
    let created = create_account(store.as_ref(), &sealer, &new, now_ms()).await?;
    credentials
        .append(&profile, &created, &args.state.region)
        .with_context(|| {
            format!(
                "account {} and key {} were created, but writing the key failed; delete the key \
                 through the control plane and create another",
                created.account_id, created.access_key_id
            )
        })?;
    println!(
        "account {account} created
  principal: {principal} (arn:aws:iam::{account}:{principal})
  access key: {key}
  credentials: {file} (profile {profile})",
        account = created.account_id,
        principal = created.principal,
        key = created.access_key_id,
        file = credentials_path.display(),
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing unwrap is a failing test
mod tests {
    use super::*;
    use fjord_tenancy::policy::{Action, ClusterRef, Resource};

    fn store_and_sealer(dir: &Path) -> (SqliteStore, SecretSealer) {
        let store = SqliteStore::open(&dir.join("metadata.sqlite")).unwrap();
        let sealer = SecretSealer::load_or_create(&dir.join("secret.key")).unwrap();
        (store, sealer)
    }

    #[tokio::test]
    async fn creates_an_administrator_whose_key_unseals_and_who_may_use_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let (store, sealer) = store_and_sealer(dir.path());
        let new = NewAccount::new("111122223333", None, "admin", None).unwrap();
        let created = create_account(&store, &sealer, &new, 7).await.unwrap();
        assert_eq!(created.principal, "user/admin");
        let key = store
            .get_access_key(&created.access_key_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(key.account_id, "111122223333");
        assert_eq!(key.status, KeyStatus::Active);
        // A second process (a gateway) with the same key file unseals it.
        let other = SecretSealer::load_or_create(&dir.path().join("secret.key")).unwrap();
        assert_eq!(
            other.unseal(&key.id, &key.sealed_secret).unwrap(),
            created.secret
        );
        let p = store
            .get_principal("111122223333", "user/admin")
            .await
            .unwrap()
            .unwrap();
        let set =
            PolicySet::parse(p.policies.iter().map(|(n, d)| (n.as_str(), d.as_str()))).unwrap();
        let cluster = ClusterRef {
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            name: "c".into(),
            id: uuid::Uuid::new_v4(),
        };
        set.check_all(
            &cluster,
            &[
                (Action::Connect, Resource::Cluster),
                (Action::WriteData, Resource::Topic("t")),
                (Action::ReadData, Resource::Topic("t")),
                (Action::CreateTopic, Resource::Topic("t")),
            ],
        )
        .unwrap();
    }

    #[tokio::test]
    async fn refuses_an_existing_account_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let (store, sealer) = store_and_sealer(dir.path());
        let new = NewAccount::new("111122223333", Some("b"), "user/ops", None).unwrap();
        create_account(&store, &sealer, &new, 1).await.unwrap();
        // A second process on the same file (the running `fjord dev` and this command).
        let again = SqliteStore::open(&dir.path().join("metadata.sqlite")).unwrap();
        let err = create_account(&again, &sealer, &new, 2).await.unwrap_err();
        assert!(
            matches!(err, CreateAccountError::AccountExists(ref id) if id == "111122223333"),
            "{err}"
        );
        assert_eq!(
            store.list_access_keys("111122223333").await.unwrap().len(),
            1
        );
        for bad in ["12345678901", "1111222233334", "11112222333x"] {
            assert!(matches!(
                NewAccount::new(bad, None, "admin", None),
                Err(CreateAccountError::BadAccountId(_))
            ));
        }
        assert!(matches!(
            NewAccount::new("111122223333", None, "role/x", None),
            Err(CreateAccountError::BadPrincipal(_))
        ));
        assert!(matches!(
            NewAccount::new("111122223333", None, "admin", Some("{}".into())),
            Err(CreateAccountError::BadPolicy(_))
        ));
    }

    #[test]
    fn appends_a_profile_and_refuses_one_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[fjord]\naws_access_key_id = A\naws_secret_access_key = S",
        )
        .unwrap();
        let created = CreatedAccount {
            account_id: "111122223333".into(),
            principal: "user/admin".into(),
            access_key_id: "AKIAB".into(),
            secret: SecretString::new("s+/"),
        };
        CredentialsFile::open_for(&path, "tenant-b")
            .unwrap()
            .append("tenant-b", &created, "us-east-1")
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("[fjord]\naws_access_key_id = A\naws_secret_access_key = S\n\n"));
        assert!(
            text.ends_with("[tenant-b]\naws_access_key_id = AKIAB\naws_secret_access_key = s+/\n")
        );
        for profile in ["tenant-b", "fjord"] {
            assert!(matches!(
                CredentialsFile::open_for(&path, profile),
                Err(CreateAccountError::ProfileExists { .. })
            ));
        }
        assert!(matches!(
            CredentialsFile::open_for(&path, "a]b"),
            Err(CreateAccountError::BadProfile(_))
        ));
        // A new file is private to its owner.
        let fresh = dir.path().join("new-credentials");
        CredentialsFile::open_for(&fresh, "p")
            .unwrap()
            .append("p", &created, "us-east-1")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
