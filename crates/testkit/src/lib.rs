//! Test support: start the real bourse server (the same `bourse::start` that
//! `bourse serve` runs) on port 0 with a fresh database, and clients that talk real
//! TLS 1.3 to it, trusting only the certificate it generated.

pub mod oidc;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use bourse::{Config, Running};
use bourse_store::testing::TestDatabase;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Where test logs and canaries go: `<target>/test-logs`.
pub fn test_log_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()?
                .parent()?
                .parent()
                .map(|t| t.join("test-logs"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("bourse-test-logs"))
}

static LOG_INIT: OnceLock<()> = OnceLock::new();

/// Sends every log line of this test process (JSON, debug level) to
/// `<target>/test-logs/<binary>-<pid>.jsonl`, so that `scripts/scan-logs.sh` can look
/// for planted secrets after the whole run.
pub fn capture_logs() {
    LOG_INIT.get_or_init(|| {
        let dir = test_log_dir();
        let _ = std::fs::create_dir_all(&dir);
        let name = std::env::current_exe()
            .ok()
            .and_then(|e| e.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "test".into());
        let Ok(file) = std::fs::File::create(dir.join(format!("{name}-{}.jsonl", std::process::id())))
        else {
            return;
        };
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,hyper=info,h2=info,rustls=info,tokio_rustls=info,reqwest=info,hyper_util=info",
            ))
            .with_writer(Mutex::new(file))
            .try_init();
    });
}

/// Records a secret that must never appear in any log line of the run.
pub fn plant_canary(secret: &str) {
    let dir = test_log_dir();
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("canaries-{}.txt", std::process::id())))
    {
        let _ = writeln!(f, "{secret}");
    }
}

/// A running server with a private data folder and database.
pub struct TestApp {
    /// The running server (taken by [`TestApp::shutdown`]).
    pub running: Option<Running>,
    /// HTTPS client trusting the server's certificate (HTTP/1.1 or HTTP/2 by ALPN).
    pub client: reqwest::Client,
    /// The configuration the server was started with.
    pub config: Config,
    /// Base URL of the public listener, e.g. `https://127.0.0.1:41234`.
    pub base: String,
    /// Base URL of the admin listener.
    pub admin_base: String,
    /// The server's certificate.
    pub cert_der: CertificateDer<'static>,
    db: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("base", &self.base).finish()
    }
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// SQLite in the temp data folder (the embedded default).
    Sqlite,
    /// A fresh PostgreSQL database, dropped afterwards.
    Postgres,
}

impl TestApp {
    /// Starts a server on SQLite with default settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Db::Sqlite, |_| {})
            .await
            .expect("SQLite is always available")
    }

    /// Starts a server, letting the test adjust the config first. Returns `None` only
    /// for PostgreSQL when it is unreachable outside CI (the store's `TestDatabase`
    /// panics in CI instead).
    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
        capture_logs();
        bourse::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            public_addr: "127.0.0.1:0".parse().expect("literal address"),
            admin_addr: "127.0.0.1:0".parse().expect("literal address"),
            ..Config::default()
        };
        config.http.shutdown_grace_secs = 5;
        // Suites make hundreds of calls from one IP in seconds; the rate-limit suite
        // (tests/it/ratelimit.rs) turns the limits on with its own small quotas.
        config.rate_limit.enabled = false;
        // Likewise surveillance: suites register, enrol 2FA and withdraw within seconds
        // from one address, which its rules rightly flag; tests/it/surveillance.rs
        // turns it on.
        config.surveillance.enabled = false;
        let test_db = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(TestDatabase::postgres().await?),
        };
        if let Some(t) = &test_db {
            config.database_url = Some(t.url().to_owned().into());
            // The server seeds only the embedded default; give PostgreSQL the same data.
            let store = bourse::open_store(&config).await.expect("PostgreSQL opens");
            store.seed_demo_instruments(time_now()).await.expect("seed");
            store.close().await;
        }
        adjust(&mut config);
        let running = bourse::start(&config).await.expect("server starts");
        let cert_der = CertificateDer::from_pem_slice(&running.cert_pem).expect("PEM cert");
        let client = client_for(&running.cert_pem, None);
        Some(TestApp {
            base: format!("https://{}", running.public_addr),
            admin_base: format!("https://{}", running.admin_addr),
            running: Some(running),
            client,
            config,
            cert_der,
            db: test_db,
            _dir: dir,
        })
    }

    /// URL of `path` on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// URL of `path` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_base)
    }

    /// The running server.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("server is running")
    }

    /// The database URL of a PostgreSQL-backed app.
    pub fn database_url(&self) -> Option<&str> {
        self.db.as_ref().map(TestDatabase::url)
    }

    /// A rustls client configuration trusting only this server's certificate.
    pub fn tls_client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> Arc<rustls::ClientConfig> {
        tls_client_config(&self.running().cert_pem, versions, alpn)
    }

    /// Creates an admin API key with these scopes and returns its secret.
    pub async fn admin_key(&self, scopes: &[&str]) -> String {
        self.admin_key_with(scopes, None, &[]).await
    }

    /// Creates an admin API key with an expiry and an IP allowlist.
    pub async fn admin_key_with(
        &self,
        scopes: &[&str],
        expires_at: Option<time::OffsetDateTime>,
        allowed_cidrs: &[&str],
    ) -> String {
        use secrecy::ExposeSecret;
        let req = bourse_identity::admin_keys::NewKey {
            name: "test".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at,
            allowed_cidrs: allowed_cidrs.iter().map(|s| (*s).to_owned()).collect(),
        };
        let (_, secret) =
            bourse_identity::admin_keys::create(&self.running().store, &req, None, time_now())
                .await
                .expect("admin key created");
        secret.expose_secret().to_owned()
    }

    /// Revokes the admin key whose secret is `secret`.
    pub async fn revoke_admin_key(&self, secret: &str) {
        let store = &self.running().store;
        let hash = bourse_auth::admin_key::hash_presented(secret).expect("a well-formed key");
        let key = store
            .find_admin_key(&hash)
            .await
            .expect("store answers")
            .expect("key exists");
        assert!(
            store
                .revoke_admin_key(&key.id, time_now())
                .await
                .expect("revoked")
        );
    }

    /// The server's current JWT signing key as `(kid, PKCS#8 DER)`, read the way the
    /// server reads it (decrypted with the master key file), for tests that forge tokens.
    pub async fn signing_key(&self) -> (String, Vec<u8>) {
        let keyring =
            bourse_identity::load_or_create_keyring(&self.config.effective_master_key_file(), None)
                .expect("master key");
        let keys = self
            .running()
            .store
            .list_signing_keys()
            .await
            .expect("keys");
        let k = keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .expect("a current signing key");
        let aad = bourse_auth::secretbox::Aad {
            table: "signing_keys",
            row_id: &k.kid,
            column: "private_enc",
        };
        let der = bourse_auth::secretbox::open(&keyring, &k.private_enc, &aad).expect("decrypts");
        (k.kid.clone(), der.to_vec())
    }

    /// Stops the server gracefully and starts it again on the same data folder and
    /// database (new ports): the engine comes back from its journal and snapshots.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let running = bourse::start(&self.config).await.expect("server restarts");
        self.base = format!("https://{}", running.public_addr);
        self.admin_base = format!("https://{}", running.admin_addr);
        self.client = client_for(&running.cert_pem, None);
        self.running = Some(running);
    }

    /// Stops the server gracefully and drops its database.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A rustls client configuration trusting only the certificate in `cert_pem`.
pub fn tls_client_config(
    cert_pem: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    bourse::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    let cert = CertificateDer::from_pem_slice(cert_pem).expect("PEM cert");
    roots.add(cert).expect("certificate is valid");
    let mut cfg = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// An HTTPS client that trusts exactly `cert_pem`; `http2_only` forces HTTP/2.
pub fn client_for(cert_pem: &[u8], http2_only: Option<bool>) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem).expect("PEM cert");
    let mut b = reqwest::Client::builder()
        .tls_certs_only([cert])
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30));
    if http2_only == Some(true) {
        b = b.http2_prior_knowledge();
    }
    b.build().expect("client builds")
}
