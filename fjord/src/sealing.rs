//! The secret-sealing key in production: one AES-256 data key shared by every instance,
//! wrapped by AWS KMS (envelope encryption) and stored in the object store.
//!
//! Access-key secrets are sealed with a [`SecretSealer`] (see `fjord_tenancy::secrets`). The
//! control plane seals them and every gateway must unseal them, so all instances need the same
//! key, and the key must not sit in plain text on any disk. With `--kms-key-id`:
//!
//! - **Envelope encryption.** KMS generates a 256-bit data key and returns it wrapped
//!   (encrypted) under the KMS key; only the wrapped form is stored. Secrets are sealed locally
//!   with the data key, so KMS sees one request per process start, not one per secret or per
//!   authentication, and its request quota and latency stay off the SASL path.
//! - **The object store is the shared place.** Every role already opens it (`--object-store`),
//!   it is durable, and its conditional create (`PutMode::Create`: If-None-Match on S3) lets
//!   instances that start together for the first time agree: all of them generate a wrapped
//!   key, exactly one write succeeds, and the others read and use the winner's. The wrapped key
//!   is useless without `kms:Decrypt` on the KMS key, so the bucket holding it is not a secret.
//! - **Plaintext only from Decrypt.** New keys come from `GenerateDataKeyWithoutPlaintext`, and
//!   every instance (the first one too) obtains the plain key by `Decrypt`ing the stored
//!   object. One code path, and a role lacking `kms:Decrypt` fails on its first start rather
//!   than on its next one. The plain key is never written anywhere nor logged, and the buffers
//!   holding it are zeroed when dropped.
//! - **Encryption context** `{"fjord": "secret-sealing"}` is bound to the wrapped key (KMS
//!   refuses to unwrap it without the same context), so IAM policies can allow these calls with
//!   the condition `kms:EncryptionContext:fjord = secret-sealing` and nothing else.
//!
//! Object format (JSON, so an operator can see which KMS key wraps it):
//! `{"format": 1, "kms_key_arn": "arn:aws:kms:…", "ciphertext_blob": "<base64>"}`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use base64::Engine as _;
use fjord_tenancy::secrets::SecretSealer;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use tracing::{info, Instrument};
use zeroize::Zeroizing;

/// Where the wrapped data key is stored, relative to the object store's root (so under the
/// `--object-store` prefix, next to the data it belongs with).
pub const WRAPPED_KEY_OBJECT: &str = "_fjord/secret-sealing.key";

/// The encryption context bound to the data key: KMS refuses to unwrap it without the same
/// pair, and IAM conditions can name it.
const CONTEXT: (&str, &str) = ("fjord", "secret-sealing");

/// Version of the stored object's format.
const FORMAT_V1: u64 = 1;

/// Length of the data key (AES-256).
const KEY_LEN: usize = 32;

/// A wrapped key object is a few hundred bytes; anything much larger is not one, and is not
/// read into memory.
const MAX_OBJECT_BYTES: u64 = 64 * 1024;

/// Attempts of one KMS request (throttling, transient failures), with exponential backoff.
const KMS_ATTEMPTS: u32 = 5;

/// Bound on one KMS call including its retries, so a start cannot hang on an unreachable KMS.
const KMS_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How this start obtained the data key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// The wrapped key was already stored (every start but the very first).
    Loaded,
    /// This instance generated the key and stored it.
    Created,
    /// This instance generated a key but another one stored its own first; that one is used.
    Adopted,
}

/// The sealer for `--kms-key-id`: connects to KMS in the key's region (from the key ARN, else
/// `region`) at `endpoint` (the regional AWS endpoint when `None`), then
/// [`load_or_create_sealer`] in `objects`.
pub async fn open_kms_sealer(
    key_id: &str,
    region: &str,
    endpoint: Option<&str>,
    objects: &dyn ObjectStore,
) -> Result<SecretSealer> {
    let region = key_region(key_id).unwrap_or(region);
    let kms = kms_client(region, endpoint).await;
    let (sealer, _) = load_or_create_sealer(&kms, key_id, objects).await?;
    Ok(sealer)
}

/// The region in a key or alias ARN (`arn:aws:kms:eu-west-1:…`), if `key_id` is one.
pub fn key_region(key_id: &str) -> Option<&str> {
    let mut parts = key_id.strip_prefix("arn:")?.splitn(4, ':');
    let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (service == "kms" && !region.is_empty()).then_some(region)
}

/// A KMS client on the same credential chain as the DynamoDB metadata client: static
/// credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the
/// shared profile, web identity, the ECS task role and the EC2 instance profile. A local
/// `endpoint` (moto, LocalStack) with no credentials in the environment gets placeholder ones,
/// since it accepts any signature. TLS is rustls on ring, as for DynamoDB. Makes no request.
pub async fn kms_client(region: &str, endpoint: Option<&str>) -> aws_sdk_kms::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let region = Region::new(region.to_string());
    let credentials = if endpoint.is_some() && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        SharedCredentialsProvider::new(Credentials::new(
            "fjord-local",
            "fjord-local",
            None,
            None,
            "local endpoint",
        ))
    } else {
        let providers = aws_config::provider_config::ProviderConfig::default()
            .with_http_client(http.clone())
            .with_region(Some(region.clone()));
        SharedCredentialsProvider::new(
            aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                .configure(providers)
                .build()
                .await,
        )
    };
    let mut config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .http_client(http)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(KMS_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(50)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(KMS_OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_kms::Client::from_conf(config.build())
}

/// The sealer whose key is the data key stored at [`WRAPPED_KEY_OBJECT`] in `objects`,
/// unwrapped by KMS key `key_id` (key id, key ARN, alias name or alias ARN). The first start
/// generates and stores it; instances starting together agree on one (see the module doc).
/// Errors name the KMS key and the object.
pub async fn load_or_create_sealer(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    objects: &dyn ObjectStore,
) -> Result<(SecretSealer, KeySource)> {
    let span = tracing::info_span!("secret_sealing_key", kms_key_id = key_id);
    async {
        let (sealer, source) = match read_wrapped(objects).await? {
            Some(stored) => (
                unwrap_key(kms, key_id, &stored, objects).await?,
                KeySource::Loaded,
            ),
            None => create_or_adopt(kms, key_id, objects).await?,
        };
        info!(
            object = WRAPPED_KEY_OBJECT,
            ?source,
            "secret-sealing key unwrapped by KMS"
        );
        Ok((sealer, source))
    }
    .instrument(span)
    .await
}

/// Generates a wrapped key and stores it unless one exists; uses whichever is stored then.
/// Separate from [`load_or_create_sealer`] so a test can race two of these past the read.
pub(crate) async fn create_or_adopt(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    objects: &dyn ObjectStore,
) -> Result<(SecretSealer, KeySource)> {
    let generated = kms
        .generate_data_key_without_plaintext()
        .key_id(key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context(CONTEXT.0, CONTEXT.1)
        .send()
        .await
        .map_err(kms_error)
        .with_context(|| {
            format!(
                "KMS GenerateDataKeyWithoutPlaintext with --kms-key-id {key_id} for the \
                 secret-sealing key (none stored yet at {WRAPPED_KEY_OBJECT} in {objects})"
            )
        })?;
    let wrapped = WrappedKey {
        kms_key_arn: generated.key_id().unwrap_or(key_id).to_string(),
        ciphertext: generated
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .filter(|c| !c.is_empty())
            .with_context(|| {
                format!("KMS GenerateDataKeyWithoutPlaintext with --kms-key-id {key_id} returned no CiphertextBlob")
            })?,
    };
    let path = ObjectPath::from(WRAPPED_KEY_OBJECT);
    let put = objects
        .put_opts(
            &path,
            PutPayload::from(wrapped.encode()),
            PutOptions::from(PutMode::Create),
        )
        .await;
    let (stored, source) = match put {
        Ok(_) => {
            info!(object = WRAPPED_KEY_OBJECT, kms_key_arn = %wrapped.kms_key_arn, "stored a new wrapped secret-sealing key");
            (wrapped, KeySource::Created)
        }
        // Another instance stored its key first: use that one, as everyone else will.
        Err(object_store::Error::AlreadyExists { .. }) => {
            let stored = read_wrapped(objects).await?.with_context(|| {
                format!(
                    "{WRAPPED_KEY_OBJECT} in {objects} was reported to exist but cannot be found"
                )
            })?;
            (stored, KeySource::Adopted)
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "storing the wrapped secret-sealing key at {WRAPPED_KEY_OBJECT} in {objects}"
                )
            })
        }
    };
    Ok((unwrap_key(kms, key_id, &stored, objects).await?, source))
}

/// KMS `Decrypt` of the stored key under `key_id` (KMS refuses if another key wrapped it).
async fn unwrap_key(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    stored: &WrappedKey,
    objects: &dyn ObjectStore,
) -> Result<SecretSealer> {
    let context = || {
        format!(
            "KMS Decrypt of the secret-sealing key at {WRAPPED_KEY_OBJECT} in {objects} (wrapped \
             by {}) with --kms-key-id {key_id}",
            stored.kms_key_arn
        )
    };
    let decrypted = kms
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(Blob::new(stored.ciphertext.clone()))
        .encryption_context(CONTEXT.0, CONTEXT.1)
        .send()
        .await
        .map_err(kms_error)
        .with_context(context)?;
    let plain = Zeroizing::new(
        decrypted
            .plaintext
            .map(Blob::into_inner)
            .unwrap_or_default(),
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(anyhow!(
            "the plaintext is {} bytes, expected {KEY_LEN}",
            plain.len()
        ))
        .with_context(context);
    }
    key.copy_from_slice(&plain);
    Ok(SecretSealer::from_key(*key))
}

/// The stored wrapped key, if there is one.
async fn read_wrapped(objects: &dyn ObjectStore) -> Result<Option<WrappedKey>> {
    let path = ObjectPath::from(WRAPPED_KEY_OBJECT);
    let what =
        || format!("reading the wrapped secret-sealing key {WRAPPED_KEY_OBJECT} in {objects}");
    let got = match objects.get(&path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e).with_context(what),
    };
    if got.meta.size > MAX_OBJECT_BYTES {
        bail!(
            "{}: {} bytes is too large for a wrapped key",
            what(),
            got.meta.size
        );
    }
    let bytes = got.bytes().await.with_context(what)?;
    WrappedKey::decode(&bytes).with_context(what).map(Some)
}

/// A data key as stored: wrapped by a KMS key, useless without it.
#[derive(Debug, PartialEq, Eq)]
struct WrappedKey {
    /// ARN of the KMS key that wrapped it, as KMS reported it (for errors and operators).
    kms_key_arn: String,
    /// KMS's CiphertextBlob.
    ciphertext: Vec<u8>,
}

impl WrappedKey {
    fn encode(&self) -> Vec<u8> {
        let json = serde_json::json!({
            "format": FORMAT_V1,
            "kms_key_arn": self.kms_key_arn,
            "ciphertext_blob": base64::engine::general_purpose::STANDARD.encode(&self.ciphertext),
        });
        format!("{json}\n").into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).context("not a JSON wrapped-key object")?;
        let format = json.get("format").and_then(|f| f.as_u64());
        if format != Some(FORMAT_V1) {
            bail!("unknown wrapped-key format {:?}", json.get("format"));
        }
        let field = |name: &str| {
            json.get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .with_context(|| format!("wrapped-key object has no {name:?}"))
        };
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(field("ciphertext_blob")?)
            .context("\"ciphertext_blob\" is not base64")?;
        Ok(Self {
            kms_key_arn: field("kms_key_arn")?.to_string(),
            ciphertext,
        })
    }
}

/// A KMS error with its code and message (`NotFoundException: Key '…' does not exist`) rather
/// than the SDK's bare "service error".
fn kms_error<E, R>(e: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.as_service_error() {
        Some(service) => anyhow!(
            "{}: {}",
            service.code().unwrap_or("KMS error"),
            service.message().unwrap_or("(no message)")
        ),
        None => anyhow!("{}", DisplayErrorContext(&e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failing unwrap is a failing test
    use super::*;

    #[test]
    fn key_region_comes_from_arns_only() {
        assert_eq!(
            key_region(
                "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ),
            Some("eu-west-1")
        );
        assert_eq!(
            key_region("arn:aws:kms:us-east-2:111122223333:alias/fjord"),
            Some("us-east-2")
        );
        assert_eq!(key_region("1234abcd-12ab-34cd-56ef-1234567890ab"), None);
        assert_eq!(key_region("alias/fjord"), None);
        assert_eq!(key_region("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn wrapped_key_round_trips_and_rejects_other_objects() {
        let key = WrappedKey {
            kms_key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            ciphertext: vec![0, 1, 2, 250, 255],
        };
        assert_eq!(WrappedKey::decode(&key.encode()).unwrap(), key);
        assert!(WrappedKey::decode(b"0123abcd").is_err());
        assert!(
            WrappedKey::decode(br#"{"format":2,"kms_key_arn":"a","ciphertext_blob":"AA=="}"#)
                .is_err()
        );
        assert!(
            WrappedKey::decode(br#"{"format":1,"kms_key_arn":"a","ciphertext_blob":"!"}"#).is_err()
        );
        assert!(WrappedKey::decode(br#"{"format":1,"ciphertext_blob":"AA=="}"#).is_err());
    }
}
