//! TLS 1.3-only server configuration over aws-lc-rs, and the self-signed certificate
//! made on first start when none is configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The TLS material a listener serves.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// rustls configuration (TLS 1.3 only, ALPN h2 and http/1.1).
    pub config: Arc<ServerConfig>,
    /// Path of the certificate in use.
    pub cert_path: PathBuf,
    /// SHA-256 fingerprint of the leaf certificate, colon-separated upper-case hex.
    pub fingerprint: String,
}

/// Installs aws-lc-rs as the process-wide rustls provider. Idempotent.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed (tests call this repeatedly).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Loads the configured certificate, or makes (once) and reuses a self-signed one in
/// `data_dir/tls`.
pub fn load(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<TlsMaterial> {
    let (cert_path, key_path, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_owned(), k.to_owned(), false),
        _ => {
            let dir = data_dir.join("tls");
            let c = dir.join("cert.pem");
            let k = dir.join("key.pem");
            let made = ensure_self_signed(&dir, &c, &k)?;
            (c, k, made)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading tls_cert {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing tls_cert {}", cert_path.display()))?;
    let Some(leaf) = certs.first() else {
        bail!("tls_cert {} holds no certificate", cert_path.display());
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading tls_key {}", key_path.display()))?;
    let mut config = ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls_cert and tls_key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tracing::info!(
        cert = %cert_path.display(),
        sha256 = %fingerprint,
        generated,
        "TLS certificate loaded"
    );
    Ok(TlsMaterial {
        config: Arc::new(config),
        cert_path,
        fingerprint,
    })
}

/// SHA-256 of the DER certificate as `AB:CD:…`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes a self-signed certificate for localhost when none exists; true if one was made.
fn ensure_self_signed(dir: &Path, cert: &Path, key: &Path) -> anyhow::Result<bool> {
    if cert.is_file() && key.is_file() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let made = rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    write_private(key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, made.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    Ok(true)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let a = load(None, None, dir.path()).unwrap();
        let b = load(None, None, dir.path()).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tls/key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
