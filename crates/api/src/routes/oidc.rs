//! Sign in with an external OpenID Connect provider ("Sign in with Google"):
//! `/v1/auth/oidc/*`, and the caller's linked identities at `/v1/account/identities`.
//!
//! The browser is sent to the provider by `start` (303) with a `__Host-` cookie that
//! binds the login to it, and comes back to `callback`, which answers like
//! `POST /v1/auth/login`. The provider's own tokens never leave the identity service.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_identity::LoginOutcome;
use bourse_identity::external::{BROWSER_PREFIX, OidcCallback};
use bourse_identity::oidc::{PENDING_LOGIN_TTL, RelyingParty};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{LoginResponse, audit_signed_in, client_info, device_detail};
use crate::AppState;
use crate::auth::{ClientAddr, Read, Scoped, SteppedUp};
use crate::error::{ApiError, FieldError, Problem};
use crate::query::ApiQuery;

/// The cookie binding a login in flight to the browser that started it.
pub const BROWSER_COOKIE: &str = "__Host-bourse_oidc";
/// Longest `return_to` accepted.
pub const MAX_RETURN_TO: usize = 1024;
/// Longest callback query string read.
const MAX_CALLBACK_QUERY: usize = 4096;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn provider<'a>(state: &'a AppState, name: &str) -> Result<&'a RelyingParty, ApiError> {
    state.oidc.get(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "oidc_provider_unknown",
            "no sign-in provider has this name; see GET /v1/auth/oidc",
        )
    })
}

/// Whether `v` is a path on this server: starts with one `/`, no scheme or authority
/// (`//host`, `/\host`), no backslash or control character, bounded.
pub fn valid_return_to(v: &str) -> bool {
    v.len() <= MAX_RETURN_TO
        && v.starts_with('/')
        && !v.starts_with("//")
        && !v.contains('\\')
        && !v.chars().any(char::is_control)
}

/// The value of cookie `name` in the request, if sent once.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    // Two values: a cookie planted next to ours. Trust neither.
                    return None;
                }
                found = Some(val);
            }
        }
    }
    found
}

/// A configured provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// The name in the routes.
    #[schema(example = "google")]
    pub name: String,
    /// The name to show.
    #[schema(example = "Google")]
    pub display_name: String,
    /// Where a browser starts signing in with it.
    #[schema(example = "/v1/auth/oidc/google/start")]
    pub start_url: String,
}

/// The configured providers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    /// By name.
    pub data: Vec<ProviderView>,
}

/// The query of `start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartParams {
    /// A path on this server to go to after signing in.
    pub return_to: Option<String>,
}

/// A completed external sign-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcLoginResponse {
    /// How the account was found: `existing` (linked before), `linked` (the provider's
    /// verified email belongs to this account, and the identity is now linked to it) or
    /// `created` (a new account, without a password).
    #[schema(example = "created")]
    pub account: &'static str,
    /// The account's user id.
    pub user_id: String,
    /// The `return_to` given at `start`, if any.
    pub return_to: Option<String>,
    /// Tokens, or `status: mfa_required` with a challenge for `POST /v1/auth/login/mfa`
    /// when the account has two-factor on.
    pub login: LoginResponse,
}

/// A linked external identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    /// Identity id (for unlinking).
    pub id: String,
    /// The provider's configured name when it was linked.
    pub provider: String,
    /// The provider's issuer URL.
    pub issuer: String,
    /// The provider's user id, masked to its last four characters.
    #[schema(example = "…4821")]
    pub subject_hint: String,
    /// The email the provider gave last.
    pub email: Option<String>,
    /// Whether the provider said that email is verified.
    pub email_verified: bool,
    /// Linked at (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub linked_at: OffsetDateTime,
    /// Last sign-in through it (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_login_at: OffsetDateTime,
}

/// The caller's linked identities.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    /// Oldest first.
    pub data: Vec<IdentityView>,
}

fn mask(subject: &str) -> String {
    let tail: Vec<char> = subject.chars().rev().take(4).collect();
    format!("…{}", tail.into_iter().rev().collect::<String>())
}

/// The configured sign-in providers.
#[utoipa::path(
    get, path = "/v1/auth/oidc", tag = "auth", operation_id = "listSignInProviders", security(()),
    responses(
        (status = 200, description = "The providers a person can sign in with.", body = ProviderList),
    )
)]
pub async fn providers(State(state): State<AppState>) -> Json<ProviderList> {
    Json(ProviderList {
        data: state
            .oidc
            .all()
            .map(|rp| {
                let s = rp.settings();
                ProviderView {
                    name: s.name.clone(),
                    display_name: s.display_name.clone(),
                    start_url: format!("/v1/auth/oidc/{}/start", s.name),
                }
            })
            .collect(),
    })
}

/// Start signing in with a provider (a browser navigation).
#[utoipa::path(
    get, path = "/v1/auth/oidc/{provider}/start", tag = "auth", operation_id = "startOidcLogin",
    security(()),
    params(
        ("provider" = String, Path, description = "Provider name (see `GET /v1/auth/oidc`).", max_length = 64),
        ("return_to" = Option<String>, Query, description = "A path on this server to go to afterwards (starts with one `/`).", max_length = 1024),
    ),
    responses(
        (status = 303, description = "To the provider's authorization endpoint (authorization code flow, PKCE S256, `state`, `nonce`). Sets the `__Host-bourse_oidc` cookie that binds the login to this browser; the login expires after 10 minutes.",
            headers(("Location" = String, description = "The provider's authorization URL."),
                    ("Set-Cookie" = String, description = "`__Host-bourse_oidc`: Secure, HttpOnly, SameSite=Lax, Path=/."))),
        (status = 400, description = "`return_to` is not a local path, or another query parameter was given (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No provider has this name (`oidc_provider_unknown`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider's discovery document or keys cannot be fetched (`oidc_provider_unavailable`); see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StartParams>,
) -> Result<Response, ApiError> {
    let rp = provider(&state, &name)?;
    if let Some(r) = &q.return_to
        && !valid_return_to(r)
    {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/query/return_to".into(),
            code: "invalid_return_to".into(),
            message: format!(
                "return_to must be a path on this server: one leading `/`, no `//` or `\\`, at most {MAX_RETURN_TO} bytes"
            ),
        }]));
    }
    let started = state
        .identity
        .oidc_start(rp, q.return_to, cookie(&headers, BROWSER_COOKIE), now())
        .await?;
    let location = HeaderValue::from_str(&started.redirect_to).map_err(|_| ApiError::internal())?;
    let set_cookie = HeaderValue::from_str(&format!(
        "{BROWSER_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        started.browser.expose_secret(),
        PENDING_LOGIN_TTL.whole_seconds()
    ))
    .map_err(|_| ApiError::internal())?;
    debug_assert!(started.browser.expose_secret().starts_with(BROWSER_PREFIX));
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, set_cookie),
        ],
    )
        .into_response())
}

/// The parameters of a provider's callback that we read; any other (`scope`,
/// `session_state`, `authuser`, …) is the provider's business and ignored.
#[derive(Debug, Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

fn parse_callback(query: &str) -> Result<CallbackParams, ApiError> {
    let field = |name: &str, code: &str, message: String| {
        ApiError::validation(vec![FieldError {
            pointer: format!("/query/{name}"),
            code: code.into(),
            message,
        }])
    };
    if query.len() > MAX_CALLBACK_QUERY {
        return Err(field(
            "",
            "too_long",
            format!("the query string is longer than {MAX_CALLBACK_QUERY} bytes"),
        ));
    }
    let mut p = CallbackParams::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut p.code,
            "state" => &mut p.state,
            "error" => &mut p.error,
            "iss" => &mut p.iss,
            _ => continue,
        };
        if slot.is_some() {
            return Err(field(
                &k,
                "duplicate_key",
                format!("query parameter `{k}` is given more than once"),
            ));
        }
        *slot = Some(v.into_owned());
    }
    if p.state.is_none() {
        return Err(field(
            "state",
            "missing_field",
            "the provider's answer has no `state`".into(),
        ));
    }
    if p.code.is_none() && p.error.is_none() {
        return Err(field(
            "code",
            "missing_field",
            "the provider's answer has neither `code` nor `error`".into(),
        ));
    }
    Ok(p)
}

/// Where the provider sends the browser back (a browser navigation).
#[utoipa::path(
    get, path = "/v1/auth/oidc/{provider}/callback", tag = "auth", operation_id = "oidcCallback",
    security(()),
    params(
        ("provider" = String, Path, description = "Provider name.", max_length = 64),
        ("code" = Option<String>, Query, description = "The authorization code (on success)."),
        ("state" = String, Query, description = "The `state` sent at start."),
        ("error" = Option<String>, Query, description = "The provider's error (when it refused)."),
        ("iss" = Option<String>, Query, description = "The provider's issuer (RFC 9207); must be the configured one when given."),
    ),
    responses(
        (status = 200, description = "Signed in: tokens with `amr: [\"ext\"]` and `acr: pwd` (an external sign-in is one factor), or `mfa_required` for an account with two-factor on.", body = OidcLoginResponse),
        (status = 400, description = "Unknown, used, expired or other browser's `state` (`oidc_state_invalid`); `iss` of another issuer (`oidc_issuer_mismatch`); the provider refused the code (`oidc_login_failed`); missing or repeated parameters (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The provider answered with an error, e.g. the person declined (`oidc_denied`); or the account is frozen (`account_frozen`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No provider has this name (`oidc_provider_unknown`).", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider's ID token failed verification (`oidc_id_token_invalid`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be reached (`oidc_provider_unavailable`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ClientAddr(peer): ClientAddr,
    uri: axum::http::Uri,
) -> Result<Json<OidcLoginResponse>, ApiError> {
    crate::audit::action(
        "auth.oidc_login",
        serde_json::json!({ "provider": crate::audit::short(&name), "result": "failure" }),
    );
    let rp = provider(&state, &name)?;
    let p = parse_callback(uri.query().unwrap_or_default())?;
    if let Some(iss) = &p.iss
        && *iss != rp.settings().issuer_url
    {
        // RFC 9207: an answer from another issuer (a mix-up attack).
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "oidc_issuer_mismatch",
            "the answer names another issuer than this provider's",
        ));
    }
    let cb = OidcCallback {
        state: p.state.as_deref().unwrap_or_default(),
        code: p.code.as_deref(),
        error: p.error.as_deref(),
    };
    let (claims, return_to) = state
        .identity
        .oidc_finish(rp, cb, cookie(&headers, BROWSER_COOKIE), now())
        .await?;
    let client = client_info(&headers, peer);
    device_detail(&client);
    let login = state
        .identity
        .sign_in_external(&claims, &client, now())
        .await?;
    let account = login.account.as_str();
    if login.account != bourse_identity::external::AccountResolution::Existing {
        crate::audit::action("auth.oidc_link", serde_json::json!({}));
    }
    crate::audit::detail("account", account);
    crate::audit::detail("user_id", login.user_id.clone());
    let body = match login.outcome {
        LoginOutcome::Tokens(t) => {
            audit_signed_in(&state, &t);
            crate::audit::detail("result", "success");
            LoginResponse::Authenticated(t.into())
        }
        LoginOutcome::MfaRequired {
            challenge,
            expires_in,
        } => {
            crate::audit::detail("result", "mfa_required");
            LoginResponse::MfaRequired {
                challenge: challenge.expose_secret().to_owned(),
                expires_in,
            }
        }
    };
    tracing::info!(user_id = %login.user_id, provider = %name, account, "external sign-in");
    Ok(Json(OidcLoginResponse {
        account,
        user_id: login.user_id,
        return_to,
        login: body,
    }))
}

/// The caller's linked external identities.
#[utoipa::path(
    get, path = "/v1/account/identities", tag = "auth", operation_id = "listIdentities",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Linked identities, oldest first.", body = IdentityList),
        (status = 401, description = "Missing or invalid access token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `read` scope (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_identities(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
) -> Result<Json<IdentityList>, ApiError> {
    let list = state.identity.external_identities(user.user_id()).await?;
    Ok(Json(IdentityList {
        data: list
            .into_iter()
            .map(|i| IdentityView {
                subject_hint: mask(&i.subject),
                id: i.id,
                provider: i.provider,
                issuer: i.issuer,
                email: i.email,
                email_verified: i.email_verified,
                linked_at: i.linked_at,
                last_login_at: i.last_login_at,
            })
            .collect(),
    }))
}

/// Unlink an external identity (sensitive: step-up).
#[utoipa::path(
    delete, path = "/v1/account/identities/{id}", tag = "auth", operation_id = "unlinkIdentity",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Identity id.", max_length = 64)),
    responses(
        (status = 204, description = "Unlinked: the provider can no longer sign in to this account."),
        (status = 400, description = "Malformed id (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token, or no fresh second factor (`insufficient_user_authentication`, with an RFC 9470 `WWW-Authenticate` challenge: `acr_values=\"mfa\", max_age=300`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor is not enabled, so sensitive actions are refused (`mfa_enrollment_required`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such identity of the caller (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is the account's only way to sign in: no password and no other identity (`last_sign_in_method`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unlink_identity(
    State(state): State<AppState>,
    SteppedUp(user): SteppedUp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "auth.oidc_unlink",
        serde_json::json!({ "identity_id": crate::audit::short(&id) }),
    );
    super::check_path_id(&id)?;
    if state
        .identity
        .unlink_external_identity(user.user_id(), &id)
        .await?
    {
        crate::audit::detail("result", "success");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("identity"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_must_be_a_local_path() {
        for ok in ["/", "/oauth/authorize?client_id=x&scope=read", "/a/b#c"] {
            assert!(valid_return_to(ok), "{ok}");
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "relative",
            "/a\nb",
            "javascript:alert(1)",
        ] {
            assert!(!valid_return_to(bad), "{bad:?}");
        }
        assert!(!valid_return_to(&format!("/{}", "a".repeat(MAX_RETURN_TO))));
    }

    #[test]
    fn callback_parameters_are_read_once_and_others_ignored() {
        let p = parse_callback("code=c&state=s&scope=openid&authuser=0").unwrap();
        assert_eq!(p.code.as_deref(), Some("c"));
        assert_eq!(p.state.as_deref(), Some("s"));
        assert_eq!(
            parse_callback("code=c").unwrap_err().code(),
            "validation_failed"
        );
        assert_eq!(
            parse_callback("state=s&state=t&code=c").unwrap_err().code(),
            "validation_failed"
        );
        assert_eq!(
            parse_callback("state=s").unwrap_err().code(),
            "validation_failed"
        );
        assert!(parse_callback("state=s&error=access_denied").is_ok());
    }

    #[test]
    fn a_doubled_binding_cookie_is_not_trusted() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-bourse_oidc=bob_x"),
        );
        assert_eq!(cookie(&h, BROWSER_COOKIE), Some("bob_x"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-bourse_oidc=bob_y"),
        );
        assert_eq!(cookie(&h, BROWSER_COOKIE), None);
    }

    #[test]
    fn subjects_are_masked_to_their_last_four_characters() {
        assert_eq!(mask("110169484474386276334"), "…6334");
        assert_eq!(mask("ab"), "…ab");
    }
}
