//! TLS for Kafka listeners: rustls server configurations from PEM files, optional client
//! certificate verification (mutual TLS), and a development CA with a certificate signed by it
//! when no files are configured.
//!
//! The development CA (`fjord-dev-ca.pem`) is kept across restarts so that clients configured
//! to trust it keep working; the server certificate is re-issued whenever the names it must
//! cover change.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsSettings;

/// File names of the development certificate in its directory.
const DEV_CA: &str = "fjord-dev-ca.pem";
const DEV_CA_KEY: &str = "fjord-dev-ca.key";
const DEV_CERT: &str = "fjord-dev-server.pem";
const DEV_KEY: &str = "fjord-dev-server.key";
const DEV_NAMES: &str = "fjord-dev-server.names";

/// Why a listener's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate, key or CA.
    #[error("tls: {0}")]
    Rustls(String),
    /// A TLS listener has no certificate files and no directory for a development one.
    #[error(
        "a TLS listener without certificate files needs tls_dir for a development certificate"
    )]
    NoTlsDir,
    /// The development certificate could not be generated.
    #[error("generating the development certificate: {0}")]
    DevCert(String),
}

/// The development certificate's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevCertificate {
    /// The CA clients must trust (e.g. librdkafka's `ssl.ca.location`).
    pub ca_path: PathBuf,
    /// The server certificate chain (leaf, then CA).
    pub cert_path: PathBuf,
    /// The server key.
    pub key_path: PathBuf,
}

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration for `settings`; `dev` supplies the files when the settings
/// name none.
pub fn server_config(
    settings: &TlsSettings,
    dev: Option<&DevCertificate>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (&settings.cert_chain, &settings.key, dev) {
        (Some(c), Some(k), _) => (c.clone(), k.clone()),
        (_, _, Some(d)) => (d.cert_path.clone(), d.key_path.clone()),
        _ => return Err(TlsError::NoTlsDir),
    };
    let chain = load_certs(&cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem {
        path: key_path.clone(),
        reason: format!("no private key: {e}"),
    })?;
    let provider = crypto();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &settings.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: ca.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(format!("{}: {e}", cert_path.display())))?;
    Ok(Arc::new(config))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |reason: String| TlsError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no certificate".into()));
    }
    Ok(certs)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn dev(e: rcgen::Error) -> TlsError {
    TlsError::DevCert(e.to_string())
}

/// Makes sure `dir` holds a development CA and a server certificate signed by it for `names`
/// (DNS names, wildcards such as `*.kafka.us-east-1.fjord.example`, or IP addresses); reuses
/// what is there when the names are unchanged.
pub fn ensure_dev_certificate(dir: &Path, names: &[String]) -> Result<DevCertificate, TlsError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let out = DevCertificate {
        ca_path: dir.join(DEV_CA),
        cert_path: dir.join(DEV_CERT),
        key_path: dir.join(DEV_KEY),
    };
    let ca_key_path = dir.join(DEV_CA_KEY);
    let names_path = dir.join(DEV_NAMES);
    let wanted = names.join("\n");
    let current = fs::read_to_string(&names_path).ok();
    let have_all = [&out.ca_path, &ca_key_path, &out.cert_path, &out.key_path]
        .iter()
        .all(|p| p.exists());
    if have_all && current.as_deref() == Some(wanted.as_str()) {
        return Ok(out);
    }
    // Keep an existing CA: clients already trust it.
    let (ca_pem, ca_key) = match (
        fs::read_to_string(&out.ca_path),
        fs::read_to_string(&ca_key_path),
    ) {
        (Ok(pem), Ok(key)) => (pem, KeyPair::from_pem(&key).map_err(dev)?),
        _ => {
            let key = KeyPair::generate().map_err(dev)?;
            let cert = ca_params()?.self_signed(&key).map_err(dev)?;
            write_file(&ca_key_path, &key.serialize_pem(), true)?;
            write_file(&out.ca_path, &cert.pem(), false)?;
            (cert.pem(), key)
        }
    };
    // rcgen signs with the issuer's parameters; the CA's are fixed, so rebuilding them gives
    // the same issuer name and key identifier as the stored CA certificate.
    let issuer = ca_params()?.self_signed(&ca_key).map_err(dev)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(dev)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Fjord development server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().map_err(dev)?;
    let cert = params.signed_by(&key, &issuer, &ca_key).map_err(dev)?;
    write_file(&out.key_path, &key.serialize_pem(), true)?;
    write_file(&out.cert_path, &format!("{}{}", cert.pem(), ca_pem), false)?;
    write_file(&names_path, &wanted, false)?;
    Ok(out)
}

fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(dev)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "Fjord development CA");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(p)
}

/// Writes a file atomically (temp file + rename); keys are readable by the owner only.
fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}
