//! Swagger UI really renders in a browser, offline, from files inside the binary.
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
