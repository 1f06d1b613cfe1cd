//! Security headers and request ids.

use bourse_testkit::TestApp;

#[tokio::test]
async fn api_responses_carry_security_headers() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/v1/instruments", "/nope"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(
            h["strict-transport-security"], "max-age=63072000; includeSubDomains",
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn html_pages_carry_csp_with_frame_ancestors_none() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    let body = r.text().await.unwrap();
    assert!(body.contains("swagger-ui"), "Swagger UI page");
    app.shutdown().await;
}

#[tokio::test]
async fn request_id_is_kept_when_sane_and_made_otherwise() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-abc_123");
    for hostile in ["<script>alert(1)</script>", &"x".repeat(200), "a b"] {
        let r = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", hostile)
            .send()
            .await
            .unwrap();
        let got = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(got, hostile);
        assert!(uuid::Uuid::parse_str(&got).is_ok(), "{got}");
    }
    app.shutdown().await;
}
