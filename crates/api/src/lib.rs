//! The HTTP surface of bourse: axum routers, extractors, middleware and the OpenAPI
//! document. Handlers parse input into domain types, call a service, and map the result
//! to JSON; nothing else lives here. Transport (TLS, connection limits, header timeouts)
//! is the binary's job.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod error;
pub mod json;
pub mod middleware;
mod openapi_gateway;
pub mod query;
pub mod ratelimit;
pub mod request_id;
pub mod routes;
pub mod trading;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use bourse_store::Store;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, FieldError, Problem};

/// Shared state of every handler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Reference data, served from memory.
    pub catalog: catalog::Catalog,
    /// Accounts, sessions, tokens and two-factor.
    pub identity: bourse_identity::Identity,
    /// External sign-in providers (OpenID Connect), by name.
    pub oidc: bourse_identity::oidc::Providers,
    /// Wallet settings.
    pub wallet: WalletConfig,
    /// The exchange engine and the user → trading account map.
    pub trading: trading::Trading,
    /// Where the public listener's audit records go (the admin listener's tap is made
    /// from it with [`audit::Tap::for_listener`]).
    pub audit: audit::Tap,
}

/// Wallet settings.
#[derive(Debug, Clone, Copy)]
pub struct WalletConfig {
    /// How long a new withdrawal address waits before it can receive withdrawals.
    pub address_cooldown: time::Duration,
}

impl Default for WalletConfig {
    fn default() -> Self {
        Self {
            address_cooldown: time::Duration::hours(24),
        }
    }
}

/// Limits applied by the gateway middleware.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Rate limits, bans and load shedding of this listener (`None`: none).
    pub gate: Option<std::sync::Arc<ratelimit::Gate>>,
    /// Largest request body in bytes (413 above).
    pub body_limit: usize,
    /// Longest time a request may take from headers read to response (504 after).
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            gate: None,
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bourse API",
        description = "REST/JSON API of the bourse crypto-derivatives exchange.\n\n\
            Conventions: JSON fields are snake_case; prices, sizes and money are decimal strings, never numbers; \
            timestamps are RFC 3339 UTC; lists are cursor-paginated with a bounded `limit`; unknown JSON fields \
            and query parameters are rejected. Every error is RFC 9457 `application/problem+json` with a stable \
            `code` and the `request_id` (also echoed in `X-Request-Id`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
        contact(name = "bourse API team", email = "api@bourse.dev"),
    ),
    servers((url = "/", description = "This server")),
    modifiers(&PublicSecurity),
    tags(
        (name = "auth", description = "Accounts, sessions, tokens, two-factor and step-up."),
        (name = "wallet", description = "Withdrawal whitelist, withdrawals and deposits (adding addresses and withdrawing are sensitive: step-up)."),
        (name = "health", description = "Liveness and readiness probes."),
        (name = "instruments", description = "Reference data: the contracts that can be traded."),
        (name = "market", description = "Public market data: order book, trades, ticker."),
        (name = "trading", description = "Orders and fills (scope `trade` to change, `read` to list)."),
        (name = "account", description = "Balances, margin, positions and the ledger (scope `read`)."),
    )
)]
struct ApiDoc;

struct PublicSecurity;

impl utoipa::Modify for PublicSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from `POST /v1/auth/login` (or the OAuth token endpoint): a JWT \
                         with `typ: at+jwt`, EdDSA, at most 10 minutes. Scopes (claim `scope`): `read` \
                         (account data), `trade` (orders), `wallet` (funds). Sensitive actions also need \
                         `acr=mfa` with `auth_time` within 300 s; otherwise they answer 401 \
                         `insufficient_user_authentication` with `WWW-Authenticate: Bearer \
                         error=\"insufficient_user_authentication\", acr_values=\"mfa\", max_age=300` \
                         (RFC 9470): call `POST /v1/auth/step-up` and retry. Admin API keys are refused here.",
                    ))
                    .build(),
            ),
        );
    }
}

fn public_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::instruments::list))
        .routes(routes!(routes::instruments::get))
        .routes(routes!(routes::auth::register))
        .routes(routes!(routes::auth::login))
        .routes(routes!(routes::auth::login_mfa))
        .routes(routes!(routes::auth::refresh))
        .routes(routes!(routes::auth::logout))
        .routes(routes!(routes::auth::me))
        .routes(routes!(routes::auth::sessions))
        .routes(routes!(routes::auth::revoke_session))
        .routes(routes!(routes::auth::change_password))
        .routes(routes!(
            routes::auth::enrol_totp,
            routes::auth::disable_totp
        ))
        .routes(routes!(routes::auth::confirm_totp))
        .routes(routes!(routes::auth::step_up))
        .routes(routes!(routes::auth::jwks))
        .routes(routes!(routes::oidc::providers))
        .routes(routes!(routes::oidc::start))
        .routes(routes!(routes::oidc::callback))
        .routes(routes!(routes::oidc::list_identities))
        .routes(routes!(routes::oidc::unlink_identity))
        .routes(routes!(routes::wallet::list, routes::wallet::add))
        .routes(routes!(routes::wallet::delete))
        .routes(routes!(routes::market::book))
        .routes(routes!(routes::market::trades))
        .routes(routes!(routes::market::ticker))
        .routes(routes!(
            routes::orders::create,
            routes::orders::list,
            routes::orders::cancel_all
        ))
        .routes(routes!(
            routes::orders::get,
            routes::orders::amend,
            routes::orders::cancel
        ))
        .routes(routes!(routes::account::account))
        .routes(routes!(routes::account::positions))
        .routes(routes!(routes::account::fills))
        .routes(routes!(routes::account::ledger))
        .routes(routes!(
            routes::wallet::list_withdrawals,
            routes::wallet::request_withdrawal
        ))
        .routes(routes!(routes::wallet::get_withdrawal))
        .routes(routes!(routes::wallet::list_deposits))
        .routes(routes!(routes::audit::activity))
        .routes(routes!(routes::risk::cancel_after))
        .routes(routes!(routes::risk::set_kill_switch))
        .routes(routes!(routes::risk::get_risk))
        .routes(routes!(routes::risk::set_mmp, routes::risk::remove_mmp))
        .routes(routes!(routes::risk::reset_mmp))
        .split_for_parts();
    (router, openapi_gateway::with_gateway_answers(api))
}

/// The OpenAPI 3.1 document of the public listener, exactly as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_parts().1
}

/// The public listener's application: `/v1`, health, `/openapi.json` and Swagger UI at `/docs`.
pub fn public_router(state: AppState, limits: HttpLimits) -> Router {
    let (router, api) = public_parts();
    let router = router.merge(SwaggerUi::new("/docs").url("/openapi.json", api));
    let tap = state.audit.for_listener("public");
    with_gateway(router, limits, Some(state.clone()), tap).with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bourse admin API",
        description = "Internal admin API of bourse, served only on the admin listener. Every call needs an \
            admin API key (`Authorization: Bearer bak_…`) holding the scope the operation names.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/", description = "This admin listener")),
    modifiers(&AdminSecurity),
    tags(
        (name = "health", description = "Liveness and readiness probes."),
        (name = "admin", description = "Reference data and platform administration."),
        (name = "admin-risk", description = "Pre-trade limits, circuit breakers, kill switches and market-maker protection (scopes `risk:read`, `risk:write`; docs/risk.md)."),
    )
)]
struct AdminDoc;

struct AdminSecurity;

impl utoipa::Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Admin API key `bak_…`, made with `bourse admin-key create`.",
                    ))
                    .build(),
            ),
        );
    }
}

fn admin_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, api) = OpenApiRouter::with_openapi(AdminDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::admin_instruments::create))
        .routes(routes!(routes::admin_instruments::halt))
        .routes(routes!(routes::admin_instruments::resume))
        .routes(routes!(routes::admin_instruments::set_prices))
        .routes(routes!(routes::admin_instruments::funding))
        .routes(routes!(routes::admin_instruments::settle))
        .routes(routes!(routes::admin_trading::engine_status))
        .routes(routes!(routes::admin_trading::credit_deposit))
        .routes(routes!(routes::admin_trading::list_withdrawals))
        .routes(routes!(routes::admin_trading::approve_withdrawal))
        .routes(routes!(routes::admin_trading::reject_withdrawal))
        .routes(routes!(
            routes::admin_identity::list_keys,
            routes::admin_identity::create_key
        ))
        .routes(routes!(routes::admin_identity::revoke_key))
        .routes(routes!(routes::admin_identity::list_users))
        .routes(routes!(routes::admin_identity::freeze_user))
        .routes(routes!(routes::admin_identity::unfreeze_user))
        .routes(routes!(routes::audit::list_audit))
        .routes(routes!(routes::admin_risk::get_instrument_risk))
        .routes(routes!(routes::admin_risk::set_instrument_limits))
        .routes(routes!(
            routes::admin_risk::set_circuit_breaker,
            routes::admin_risk::remove_circuit_breaker
        ))
        .routes(routes!(routes::admin_risk::set_mmp_group))
        .routes(routes!(routes::admin_risk::set_greeks))
        .routes(routes!(
            routes::admin_risk::get_kill_switch,
            routes::admin_risk::set_kill_switch
        ))
        .routes(routes!(routes::admin_risk::set_user_kill_switch))
        .routes(routes!(
            routes::admin_risk::set_user_limits,
            routes::admin_risk::remove_user_limits
        ))
        .routes(routes!(routes::admin_risk::get_user_risk))
        .routes(routes!(routes::admin_risk::set_insurance_fund))
        .routes(routes!(routes::admin_alerts::list_alerts))
        .routes(routes!(routes::admin_alerts::get_alert))
        .routes(routes!(routes::admin_alerts::resolve_alert))
        .routes(routes!(routes::admin_alerts::lift_alert))
        .split_for_parts();
    (router, openapi_gateway::with_gateway_answers(api))
}

/// The OpenAPI 3.1 document of the admin listener, as served at its `/openapi.json`.
pub fn admin_openapi() -> utoipa::openapi::OpenApi {
    admin_parts().1
}

/// The admin listener's application. Admin endpoints are never routed on the public
/// listener; this router is only bound to the admin address.
pub fn admin_router(state: AppState, limits: HttpLimits) -> Router {
    let (router, api) = admin_parts();
    let router = router.route(
        "/openapi.json",
        axum::routing::get(move || std::future::ready(axum::Json(api.clone()))),
    );
    let tap = state.audit.for_listener("admin");
    with_gateway(router, limits, None, tap).with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The gateway layers, outermost first: request id with problem+json normalisation and
/// security headers (one layer, see `request_id::layer`), rate limits with load
/// shedding (see `ratelimit`; `state` lets it recognise a caller by access token),
/// panic catching, request timeout, body limit. `audit` says where the request id layer
/// sends audit records.
fn with_gateway(
    router: Router<AppState>,
    limits: HttpLimits,
    state: Option<AppState>,
    audit: audit::Tap,
) -> Router<AppState> {
    let inner = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(limits.body_limit));
    let router = router.fallback(no_route).layer(inner);
    let router = match limits.gate {
        Some(gate) => router.layer(axum::middleware::from_fn_with_state(
            (gate, state),
            ratelimit::layer,
        )),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(
        audit,
        request_id::layer,
    ))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn panics() -> &'static str {
        panic!("secret detail that must not leak")
    }

    async fn slow() -> &'static str {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        "late"
    }

    async fn state() -> AppState {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let keyring =
            bourse_identity::load_or_create_keyring(&dir.path().join("mk"), None).unwrap();
        let identity = bourse_identity::Identity::new(
            store.clone(),
            Default::default(),
            std::sync::Arc::new(keyring),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        let engine_dir = dir.path().join("engine");
        let (engine, _) = bourse_engine::Engine::start(
            bourse_engine::EngineConfig::new(
                engine_dir,
                bourse_engine::core::Asset::parse("USDC").unwrap(),
            ),
            store.clone(),
        )
        .await
        .unwrap();
        std::mem::forget(dir);
        AppState {
            store,
            catalog: catalog::Catalog::default(),
            identity,
            oidc: Default::default(),
            wallet: WalletConfig::default(),
            trading: trading::Trading::new(engine, 10_000 * 1_000_000),
            audit: audit::Tap::disabled("public"),
        }
    }

    #[tokio::test]
    async fn a_slow_handler_is_cut_off_with_a_504_problem() {
        let limits = HttpLimits {
            request_timeout: std::time::Duration::from_millis(100),
            ..HttpLimits::default()
        };
        let app = with_gateway(
            Router::new().route("/slow", axum::routing::get(slow)),
            limits,
            None,
            audit::Tap::disabled("public"),
        )
        .with_state(state().await);
        let started = std::time::Instant::now();
        let resp = app
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "timeout");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_problem_without_detail() {
        let state = state().await;
        let app = with_gateway(
            Router::new().route("/boom", axum::routing::get(panics)),
            HttpLimits::default(),
            None,
            audit::Tap::disabled("public"),
        )
        .with_state(state);
        let resp = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(!text.contains("panic"), "{text}");
        assert!(!text.contains(".rs"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["code"], "internal_error");
        assert_eq!(v["request_id"], rid.as_str());
    }
}
