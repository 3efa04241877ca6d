//! Sealing of access-key secrets at rest.
//!
//! SigV4 verification needs the plain secret (the server recomputes the signature), so secrets
//! cannot be stored as one-way hashes. They are instead encrypted with AES-256-GCM under a key
//! that lives outside metadata: a local key file in dev, a KMS-protected key in production. A
//! stolen metadata database alone therefore reveals no secret.
//!
//! Sealed layout (bytes): `version (1) = 1 | nonce (12, random) | ciphertext | GCM tag (16)`.
//! The additional authenticated data binds each sealed secret to its context (the access key id),
//! so a sealed secret copied onto another key's record does not unseal.
//!
//! The same key is the deployment's one shared secret, so other deployment-wide keys are derived
//! from it ([`SecretSealer::derive_key`], HKDF-SHA-256 with a per-purpose label) rather than
//! configured separately; the sealing key itself never leaves the sealer.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

/// Length of the sealing key in bytes (AES-256).
const KEY_LEN: usize = 32;
/// First byte of every sealed value; lets a later format coexist with this one.
const FORMAT_V1: u8 = 1;
/// Length of the GCM authentication tag.
const TAG_LEN: usize = 16;
/// Domain separation for the additional authenticated data.
const AAD_PREFIX: &[u8] = b"fjord-access-key-secret:v1:";
/// HKDF salt for [`SecretSealer::derive_key`]: separates derived keys from any other use of the
/// sealing key.
const DERIVE_SALT: &[u8] = b"fjord-secret-sealer-derived-key:v1";

/// Why sealing, unsealing or loading the key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The key file could not be read, created or written.
    #[error("secret key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The key file exists but does not hold a 256-bit hex key.
    #[error("secret key file {path} is invalid: {reason}")]
    InvalidKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A sealed value is truncated, has an unknown format, was sealed under another key or
    /// context, or was tampered with. Deliberately says no more than that.
    #[error("sealed secret cannot be opened (wrong key file, wrong context or corrupted)")]
    Unseal,
    /// The operating system's random generator failed.
    #[error("system random generator failed")]
    Random,
}

/// A secret string (an access-key secret) that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself; call only where the clear text is really needed (signing, sealing,
    /// writing the credentials file).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Seals and unseals access-key secrets with a 256-bit key held outside metadata.
#[derive(Clone)]
pub struct SecretSealer {
    key: Arc<LessSafeKey>,
    /// HKDF pseudo-random key extracted from the sealing key, for [`SecretSealer::derive_key`].
    derive: hkdf::Prk,
    rng: SystemRandom,
}

impl fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSealer(<key redacted>)")
    }
}

impl SecretSealer {
    /// A sealer using `key` directly (tests, or a key unwrapped from a KMS).
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        // Invariant: AES-256-GCM accepts exactly 32-byte keys and `key` is a `[u8; 32]`.
        #[allow(clippy::expect_used)]
        let unbound =
            UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key is valid for AES-256");
        Self {
            key: Arc::new(LessSafeKey::new(unbound)),
            derive: hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVE_SALT).extract(&key),
            rng: SystemRandom::new(),
        }
    }

    /// A 256-bit key for `label`'s purpose, derived from the sealing key with HKDF-SHA-256: the
    /// same on every process holding the same sealing key, unrelated across labels, and
    /// revealing nothing about the sealing key. Labels should name their purpose and version
    /// (e.g. `b"scram-mock-credential:v1"`).
    pub fn derive_key(&self, label: &[u8]) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        let info = [label];
        // Invariant: HKDF-SHA-256 can expand up to 255 × 32 bytes; 32 are asked for, and
        // `HKDF_SHA256` as the key type asks for exactly its 32-byte output length.
        #[allow(clippy::expect_used)]
        self.derive
            .expand(&info, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out))
            .expect("HKDF-SHA-256 expands to 32 bytes");
        out
    }

    /// Loads the key from `path`, or creates the file with a fresh random key (mode 0600) if it
    /// does not exist. Safe against several processes starting at once: the file appears
    /// atomically and the loser of the race reads the winner's key.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        match fs::read_to_string(path) {
            Ok(text) => return Self::parse_key_file(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SealError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        let rng = SystemRandom::new();
        let mut key = [0u8; KEY_LEN];
        rng.fill(&mut key).map_err(|_| SealError::Random)?;
        match create_exclusive(path, format!("{}\n", hex::encode(key)).as_bytes()) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created new secret sealing key file");
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let text = fs::read_to_string(path).map_err(|source| SealError::Io {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse_key_file(path, &text)
            }
            Err(source) => Err(SealError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn parse_key_file(path: &Path, text: &str) -> Result<Self, SealError> {
        warn_if_readable_by_others(path);
        let invalid = |reason| SealError::InvalidKeyFile {
            path: path.to_owned(),
            reason,
        };
        let bytes = hex::decode(text.trim()).map_err(|_| invalid("not hex"))?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| invalid("key must be 32 bytes (64 hex digits)"))?;
        Ok(Self::from_key(key))
    }

    /// Encrypts `secret`, bound to `context` (the access key id it belongs to).
    pub fn seal(&self, context: &str, secret: &SecretString) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut in_out = secret.expose().as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(context)),
                &mut in_out,
            )
            // Only fails for inputs beyond GCM's ~64 GiB limit; a secret is tiny.
            .map_err(|_| SealError::Unseal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts a value made by [`SecretSealer::seal`] with the same `context`.
    pub fn unseal(&self, context: &str, sealed: &[u8]) -> Result<SecretString, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Unseal)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Unseal);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Unseal)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(context)), &mut in_out)
            .map_err(|_| SealError::Unseal)?;
        let text = std::str::from_utf8(plain).map_err(|_| SealError::Unseal)?;
        Ok(SecretString::new(text))
    }
}

fn aad(context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + context.len());
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(context.as_bytes());
    aad
}

/// Writes `contents` to `path` with mode 0600, failing with `AlreadyExists` if `path` exists.
///
/// The file is written under a temporary name, synced, then hard-linked into place: a reader
/// never sees a half-written file, and `link` refuses to replace an existing one.
pub(crate) fn create_exclusive(path: &Path, contents: &[u8]) -> io::Result<()> {
    publish_private(path, contents, |tmp, path| fs::hard_link(tmp, path))
}

/// Replaces `path` atomically with `contents` (mode 0600).
pub(crate) fn replace_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    publish_private(path, contents, |tmp, path| fs::rename(tmp, path))
}

/// Writes `contents` (mode 0600) to a synced temporary file next to `path`, moves it into place
/// with `place(tmp, path)`, then syncs the directory so the new name is durable too.
fn publish_private(
    path: &Path,
    contents: &[u8],
    place: impl FnOnce(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = tempfile_in(dir)?;
    {
        let mut f = open_private(&tmp.0)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    place(&tmp.0, path)?;
    sync_dir(dir)
}

/// A temporary path that is removed when dropped (if it still exists).
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn tempfile_in(dir: &Path) -> io::Result<TempPath> {
    let mut suffix = [0u8; 8];
    SystemRandom::new()
        .fill(&mut suffix)
        .map_err(|_| io::Error::other("system random generator failed"))?;
    Ok(TempPath(
        dir.join(format!(".fjord-tmp-{}", hex::encode(suffix))),
    ))
}

fn open_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "secret file is readable by other users; chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing unwrap is a failing test
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_context_binding() {
        let sealer = SecretSealer::from_key([7; 32]);
        let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let sealed = sealer.seal("AKIA1", &secret).unwrap();
        assert!(!sealed
            .windows(8)
            .any(|w| w == &secret.expose().as_bytes()[..8]));
        assert_eq!(sealer.unseal("AKIA1", &sealed).unwrap(), secret);
        // Same secret sealed twice gives different bytes (random nonce).
        assert_ne!(sealer.seal("AKIA1", &secret).unwrap(), sealed);
        assert!(matches!(
            sealer.unseal("AKIA2", &sealed),
            Err(SealError::Unseal)
        ));
        let other = SecretSealer::from_key([8; 32]);
        assert!(matches!(
            other.unseal("AKIA1", &sealed),
            Err(SealError::Unseal)
        ));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            sealer.unseal("AKIA1", &tampered),
            Err(SealError::Unseal)
        ));
        for len in 0..sealed.len() {
            assert!(sealer.unseal("AKIA1", &sealed[..len]).is_err());
        }
    }

    #[test]
    fn derived_keys_are_stable_per_sealing_key_and_label() {
        let a = SecretSealer::from_key([7; 32]);
        let same = SecretSealer::from_key([7; 32]);
        let other = SecretSealer::from_key([8; 32]);
        let k = a.derive_key(b"scram-mock-credential:v1");
        assert_eq!(k, same.derive_key(b"scram-mock-credential:v1"));
        assert_ne!(k, a.derive_key(b"another-purpose:v1"));
        assert_ne!(k, other.derive_key(b"scram-mock-credential:v1"));
        assert_ne!(k, [7; 32], "never the sealing key itself");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let secret = SecretString::new("super-secret-value");
        assert!(!format!("{secret:?}").contains("super"));
        let sealer = SecretSealer::from_key([1; 32]);
        assert!(!format!("{sealer:?}").contains("0101"));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret.key");
        let a = SecretSealer::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = a.seal("k", &SecretString::new("s")).unwrap();
        let b = SecretSealer::load_or_create(&path).unwrap();
        assert_eq!(b.unseal("k", &sealed).unwrap().expose(), "s");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn invalid_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        fs::write(&path, "abcd\n").unwrap();
        assert!(matches!(
            SecretSealer::load_or_create(&path),
            Err(SealError::InvalidKeyFile { .. })
        ));
        fs::write(&path, "zz".repeat(32)).unwrap();
        assert!(matches!(
            SecretSealer::load_or_create(&path),
            Err(SealError::InvalidKeyFile { .. })
        ));
    }
}
