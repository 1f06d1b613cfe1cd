//! Real pages in a real browser: Swagger UI renders offline from files inside the
//! binary; signing in with an external provider works in headless Chromium (the
//! harness of the OAuth acceptance test).
//! Uses Debian's `chromium` (installed by scripts/tools.sh); outside CI the test skips
//! when it is absent.

use std::process::Command;

use bourse_testkit::TestApp;

fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromium is not installed (scripts/tools.sh installs it)"
        );
        eprintln!("skipping: chromium not installed");
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn swagger_ui_renders_the_operations_offline() {
    let Some(chromium) = chromium() else {
        return;
    };
    let app = TestApp::spawn().await;
    let url = app.url("/docs/");
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // The test server's certificate is self-signed; the browser is ours.
                "--ignore-certificate-errors",
                "--virtual-time-budget=15000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .output()
            .expect("chromium runs")
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("swagger-ui"),
        "no Swagger UI container: {dom:.500}"
    );
    // Rendered by Swagger UI's JavaScript from /openapi.json: the title and operations.
    assert!(
        dom.contains("bourse API"),
        "spec title not rendered: {dom:.2000}"
    );
    assert!(dom.contains("/v1/instruments"), "operations not rendered");
    assert!(dom.contains("opblock"), "operation blocks not rendered");
    app.shutdown().await;
}

/// A headless Chromium driven over WebDriver (Debian's `chromium-driver`), for tests
/// that click through real pages. Stops chromedriver when dropped.
pub struct HeadlessBrowser {
    pub client: fantoccini::Client,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Drop for HeadlessBrowser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl HeadlessBrowser {
    /// Starts chromedriver on a free loopback port and opens a headless session.
    /// `None` (a clear skip outside CI) when chromium or chromedriver is missing.
    pub async fn start() -> Option<Self> {
        let chromium = chromium()?;
        if !std::path::Path::new("/usr/bin/chromedriver").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but chromedriver is not installed (scripts/tools.sh installs chromium-driver)"
            );
            eprintln!("skipping: chromedriver not installed");
            return None;
        }
        let port = bourse_testkit::oidc::free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver runs");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    // The test server's certificate is self-signed; the browser is ours.
                    "--ignore-certificate-errors",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..50 {
            let mut b = fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            );
            b.capabilities(caps.clone());
            match b.connect(&url).await {
                Ok(client) => {
                    return Some(Self {
                        client,
                        driver,
                        _profile: profile,
                    });
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("no WebDriver session: {last:?}");
    }
}

/// The harness for the OAuth acceptance test: a person signs in with the (local,
/// Google-like) provider in headless Chromium through bourse's
/// `/v1/auth/oidc/google/start`, types their account into the provider's page, and the
/// browser lands on bourse's callback with a new account signed in.
#[tokio::test(flavor = "multi_thread")]
async fn signs_in_with_the_provider_in_headless_chromium() {
    use bourse_testkit::oidc::{PROVIDER, ProviderAccount, spawn_with_provider};
    use fantoccini::Locator;
    let accounts = [ProviderAccount::verified(
        "g-browser",
        "browser@example.com",
    )];
    let Some((app, _op)) = spawn_with_provider(bourse_testkit::Db::Sqlite, &accounts, |_| {}).await
    else {
        return;
    };
    let Some(browser) = HeadlessBrowser::start().await else {
        return;
    };
    let c = &browser.client;
    c.goto(&app.url(&format!("/v1/auth/oidc/{PROVIDER}/start")))
        .await
        .unwrap();
    // The provider's sign-in page.
    let field = c.wait().for_element(Locator::Id("account")).await.unwrap();
    field.send_keys("g-browser").await.unwrap();
    c.find(Locator::Id("sign_in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let callback = format!("/v1/auth/oidc/{PROVIDER}/callback");
    let mut landed = None;
    for _ in 0..100 {
        let u = c.current_url().await.unwrap();
        if u.path() == callback {
            landed = Some(u);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let landed = landed.expect("the browser came back to bourse's callback");
    assert_eq!(landed.host_str(), Some("127.0.0.1"));
    let page = c.source().await.unwrap();
    assert!(page.contains("\"account\":\"created\""), "{page:.1000}");
    assert!(
        page.contains("\"status\":\"authenticated\""),
        "{page:.1000}"
    );
    let user = app
        .running()
        .store
        .find_user_by_email("browser@example.com")
        .await
        .unwrap()
        .expect("the account was created");
    let ids = app
        .running()
        .store
        .list_external_identities(&user.id)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].subject, "g-browser");
    browser.client.clone().close().await.unwrap();
    app.shutdown().await;
}
