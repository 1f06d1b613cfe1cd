//! A real OpenID Connect provider for sign-in tests: `scripts/oidc-provider/server.mjs`
//! (the `oidc-provider` npm package, configured as if it were Google) run with node as
//! a subprocess on 127.0.0.1, killed when dropped.
//!
//! Outside CI a missing node or a provider not installed (`scripts/tools.sh` runs
//! `npm ci` for it) is a clear skip; with `CI=true` it is a failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One account of the provider.
#[derive(Debug, Clone)]
pub struct ProviderAccount {
    /// `sub`, also what is typed into the provider's sign-in form.
    pub sub: String,
    /// `email`.
    pub email: String,
    /// `email_verified`.
    pub email_verified: bool,
    /// `name`.
    pub name: String,
}

impl ProviderAccount {
    /// An account with a verified email.
    pub fn verified(sub: &str, email: &str) -> Self {
        Self {
            sub: sub.into(),
            email: email.into(),
            email_verified: true,
            name: format!("Test {sub}"),
        }
    }

    /// An account whose email the provider has not verified.
    pub fn unverified(sub: &str, email: &str) -> Self {
        Self {
            email_verified: false,
            ..Self::verified(sub, email)
        }
    }
}

/// A running provider.
#[derive(Debug)]
pub struct OidcProvider {
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
    /// The one client's id.
    pub client_id: String,
    /// The one client's secret.
    pub client_secret: String,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `scripts/oidc-provider` of this workspace.
pub fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/oidc-provider")
}

fn skip_or_fail(why: &str) -> Option<OidcProvider> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {why} (scripts/tools.sh installs it)"
    );
    eprintln!("skipping: {why}; run scripts/tools.sh");
    None
}

impl OidcProvider {
    /// Starts the provider with one client (`redirect_uris` exact) and these accounts;
    /// waits until it listens. `None` (outside CI) when node or the package is missing.
    pub fn start(redirect_uris: &[String], accounts: &[ProviderAccount]) -> Option<Self> {
        let dir = provider_dir();
        if Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            return skip_or_fail("node is not installed");
        }
        if !dir
            .join("node_modules/oidc-provider/package.json")
            .is_file()
        {
            return skip_or_fail("the test OIDC provider's npm packages are not installed");
        }
        let accounts: serde_json::Map<String, serde_json::Value> = accounts
            .iter()
            .map(|a| {
                (
                    a.sub.clone(),
                    serde_json::json!({
                        "email": a.email, "email_verified": a.email_verified, "name": a.name,
                    }),
                )
            })
            .collect();
        let client_id = format!("bourse-{}", uuid::Uuid::now_v7().simple());
        let client_secret = format!("cs-{}", uuid::Uuid::new_v4().simple());
        crate::plant_canary(&client_secret);
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("OIDC_PORT", "0")
            .env("OIDC_CLIENT_ID", &client_id)
            .env("OIDC_CLIENT_SECRET", &client_secret)
            .env("OIDC_REDIRECT_URIS", redirect_uris.join(","))
            .env(
                "OIDC_ACCOUNTS",
                serde_json::Value::Object(accounts).to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(issuer) = line.strip_prefix("issuer=") {
                    let _ = tx.send(issuer.trim().to_owned());
                }
                // Keep draining so the provider never blocks on a full pipe.
            }
        });
        let issuer = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(i) => i,
            Err(_) => {
                let _ = child.kill();
                panic!("the OIDC provider did not start within 20 s");
            }
        };
        Some(Self {
            issuer,
            client_id,
            client_secret,
            child,
        })
    }
}

/// A free port on 127.0.0.1 (bound and released: for a server whose own URL must be
/// known before it starts, such as a redirect URL registered at a provider).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// The provider name the helpers configure ("as if it were Google").
pub const PROVIDER: &str = "google";

/// Starts a provider with `accounts`, then a bourse server (on a port chosen first,
/// since the provider must know bourse's redirect URL) with the provider configured as
/// `google`. `None` when either cannot run here (outside CI).
pub async fn spawn_with_provider(
    db: crate::Db,
    accounts: &[ProviderAccount],
    adjust: impl FnOnce(&mut bourse::Config),
) -> Option<(crate::TestApp, OidcProvider)> {
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let redirect = format!("{base}/v1/auth/oidc/{PROVIDER}/callback");
    let provider = OidcProvider::start(std::slice::from_ref(&redirect), accounts)?;
    let settings = bourse::config::OidcProviderConfig {
        issuer_url: provider.issuer.clone(),
        client_id: provider.client_id.clone(),
        client_secret: provider.client_secret.clone().into(),
        redirect_url: None,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        display_name: Some("Google (test)".into()),
        ca_file: None,
    };
    let app = crate::TestApp::spawn_with(db, |c| {
        c.public_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        c.public_url = base.clone();
        c.oidc.providers.insert(PROVIDER.into(), settings);
        adjust(c);
    })
    .await?;
    Some((app, provider))
}
