//! The node's TLS identity: a self-signed certificate made at first start and kept in the data
//! dir, so that gateways can keep pinning it across restarts.

use std::io;
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A node's certificate and private key (DER).
#[derive(Clone)]
pub struct NodeIdentity {
    /// DER of the self-signed certificate; registered in metadata for gateways to pin.
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("cert_bytes", &self.cert_der.len())
            .finish()
    }
}

const CERT_FILE: &str = "node-cert.der";
const KEY_FILE: &str = "node-key.der";

impl NodeIdentity {
    /// Loads the identity from `dir`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> io::Result<Self> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        if cert_path.exists() && key_path.exists() {
            return Ok(Self {
                cert_der: std::fs::read(cert_path)?,
                key_der: std::fs::read(key_path)?,
            });
        }
        std::fs::create_dir_all(dir)?;
        let made = rcgen::generate_simple_self_signed(vec![super::SERVER_NAME.to_string()])
            .map_err(|e| io::Error::other(format!("generating node certificate: {e}")))?;
        let identity = Self {
            cert_der: made.cert.der().to_vec(),
            key_der: made.key_pair.serialize_der(),
        };
        write_private(&key_path, &identity.key_der)?;
        std::fs::write(&cert_path, &identity.cert_der)?;
        Ok(identity)
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.cert_der.clone())
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
