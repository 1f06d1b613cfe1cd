//! bourse as an OpenID Connect relying party ("Sign in with Google", or any compliant
//! provider): discovery, the authorization request (code flow with PKCE S256, `state`
//! and `nonce`), the code exchange and ID-token verification, through the
//! `openidconnect` crate.
//!
//! The crate's HTTP client is ours ([`RelyingParty::send`]): reqwest 0.13 over rustls
//! with aws-lc-rs, no redirects followed (an issuer that redirects could point the
//! server anywhere), bounded time and response size. Discovery (with the JWKS) happens
//! on first use and is cached for [`METADATA_TTL`]; a provider that cannot be reached
//! makes its routes answer `oidc_provider_unavailable` while the rest of the service
//! runs. The provider's tokens establish who the person is and are dropped at the end of
//! [`RelyingParty::exchange`]: they are never stored and never accepted by bourse.

use std::sync::Arc;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};
use tokio::sync::RwLock;

use crate::IdentityError;

/// How long discovered metadata (endpoints and the JWKS) is used before it is fetched
/// again.
pub const METADATA_TTL: Duration = Duration::hours(1);
/// Longest wait for one request to a provider.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Largest response body read from a provider.
const MAX_RESPONSE_BYTES: usize = 512 * 1024;
/// How long a login may take between the redirect to the provider and its callback.
pub const PENDING_LOGIN_TTL: Duration = Duration::minutes(10);

/// One configured provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The configured name, used in routes (`/v1/auth/oidc/{name}/…`).
    pub name: String,
    /// Shown to people ("Google"); the name when unset.
    pub display_name: String,
    /// The issuer URL (`https://accounts.google.com`); discovery is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer_url: String,
    /// The client id bourse is registered with at the provider.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: SecretString,
    /// Where the provider sends the browser back (`…/v1/auth/oidc/{name}/callback`).
    pub redirect_url: String,
    /// Scopes asked for (`openid` is always among them).
    pub scopes: Vec<String>,
    /// An extra root certificate (PEM) trusted for this provider only, besides the
    /// system's roots (for a provider behind a private CA).
    pub extra_root_pem: Option<Vec<u8>>,
}

/// Why a provider's HTTP call failed (never carries a token or a body).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be sent or answered in time.
    #[error("the provider could not be reached")]
    Transport,
    /// The response was larger than we read.
    #[error("the provider's response is too large")]
    TooLarge,
    /// The response could not be turned into an HTTP response.
    #[error("the provider's response is malformed")]
    Malformed,
}

/// What a provider said about the person, after every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalClaims {
    /// The configured provider name.
    pub provider: String,
    /// `iss` of the ID token (equal to the configured issuer).
    pub issuer: String,
    /// `sub`: the provider's stable id of the person.
    pub subject: String,
    /// `email`, normalised, if the provider gave a plausible one.
    pub email: Option<String>,
    /// `email_verified` (absent counts as false).
    pub email_verified: bool,
    /// `name`, if given (not stored; for the audit detail only as a length-bounded text).
    pub name: Option<String>,
}

/// The start of a login: where to send the browser, and what to remember.
#[derive(Debug)]
pub struct Authorization {
    /// The provider's authorization URL with every parameter.
    pub url: String,
    /// The `state` value (also in `url`).
    pub state: SecretString,
    /// The `nonce` value (also in `url`).
    pub nonce: String,
    /// The PKCE verifier (its S256 challenge is in `url`).
    pub pkce_verifier: SecretString,
}

struct Discovered {
    metadata: CoreProviderMetadata,
    fetched_at: OffsetDateTime,
}

/// A configured provider and its cached metadata. Cheap to clone.
#[derive(Clone)]
pub struct RelyingParty {
    inner: Arc<RpInner>,
}

struct RpInner {
    settings: ProviderSettings,
    http: reqwest::Client,
    discovered: RwLock<Option<Discovered>>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("name", &self.inner.settings.name)
            .field("issuer_url", &self.inner.settings.issuer_url)
            .finish_non_exhaustive()
    }
}

/// Whether `url` may be a provider's issuer: `https://`, or `http://` on a loopback
/// address only (a provider run on this machine, as the tests do).
pub fn issuer_allowed(url: &str) -> bool {
    let Ok(u) = openidconnect::url::Url::parse(url) else {
        return false;
    };
    match (u.scheme(), u.host()) {
        ("https", Some(_)) => true,
        ("http", Some(openidconnect::url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(openidconnect::url::Host::Ipv6(ip))) => ip.is_loopback(),
        ("http", Some(openidconnect::url::Host::Domain(d))) => d == "localhost",
        _ => false,
    }
}

fn chrono_time(now: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(now.unix_timestamp(), now.nanosecond())
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

impl RelyingParty {
    /// A relying party for `settings`; fails only on settings the config check should
    /// have refused (an issuer that is not allowed, an unreadable extra root).
    pub fn new(settings: ProviderSettings) -> Result<Self, String> {
        if !issuer_allowed(&settings.issuer_url) {
            return Err("issuer_url must be https:// (or http:// on a loopback address)".into());
        }
        IssuerUrl::new(settings.issuer_url.clone()).map_err(|_| "issuer_url is not a URL")?;
        RedirectUrl::new(settings.redirect_url.clone()).map_err(|_| "redirect_url is not a URL")?;
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .user_agent("bourse-oidc-rp");
        if let Some(pem) = &settings.extra_root_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| "ca_file holds no PEM certificate")?;
            if certs.is_empty() {
                return Err("ca_file holds no PEM certificate".into());
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(|_| "cannot build the HTTP client")?;
        Ok(Self {
            inner: Arc::new(RpInner {
                settings,
                http,
                discovered: RwLock::new(None),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ProviderSettings {
        &self.inner.settings
    }

    /// One HTTP exchange for the `openidconnect` crate.
    async fn send(
        http: reqwest::Client,
        req: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let mut resp = http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|_| HttpError::Transport)?;
        let mut out = http::Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            out = out.header(k, v);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| HttpError::Transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        out.body(body).map_err(|_| HttpError::Malformed)
    }

    async fn fetch_metadata(&self) -> Result<CoreProviderMetadata, IdentityError> {
        let s = &self.inner.settings;
        let issuer = IssuerUrl::new(s.issuer_url.clone()).map_err(|_| IdentityError::Internal)?;
        let http = self.inner.http.clone();
        let client = move |req| Self::send(http.clone(), req);
        CoreProviderMetadata::discover_async(issuer, &client)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %s.name, error = %e, "OpenID Connect discovery failed");
                IdentityError::ProviderUnavailable
            })
    }

    /// The provider's metadata: cached, fetched when missing or older than
    /// [`METADATA_TTL`] (or always with `force`). When a refresh fails, metadata
    /// fetched before is used rather than refusing every login.
    async fn metadata(
        &self,
        now: OffsetDateTime,
        force: bool,
    ) -> Result<CoreProviderMetadata, IdentityError> {
        if !force
            && let Some(d) = self.inner.discovered.read().await.as_ref()
            && now - d.fetched_at < METADATA_TTL
        {
            return Ok(d.metadata.clone());
        }
        let mut slot = self.inner.discovered.write().await;
        if !force
            && let Some(d) = slot.as_ref()
            && now - d.fetched_at < METADATA_TTL
        {
            return Ok(d.metadata.clone());
        }
        match self.fetch_metadata().await {
            Ok(m) => {
                *slot = Some(Discovered {
                    metadata: m.clone(),
                    fetched_at: now,
                });
                Ok(m)
            }
            Err(e) => match slot.as_ref() {
                Some(d) => Ok(d.metadata.clone()),
                None => Err(e),
            },
        }
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        IdentityError,
    > {
        let s = &self.inner.settings;
        let redirect =
            RedirectUrl::new(s.redirect_url.clone()).map_err(|_| IdentityError::Internal)?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(s.client_id.clone()),
            Some(ClientSecret::new(
                s.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// Builds the authorization request: code flow, PKCE S256, fresh `state` and `nonce`.
    /// `state` is made by the caller (an opaque token whose hash keys the pending login).
    pub async fn authorize(
        &self,
        state: SecretString,
        now: OffsetDateTime,
    ) -> Result<Authorization, IdentityError> {
        let client = self.client(self.metadata(now, false).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state_for_url = state.expose_secret().to_owned();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state_for_url),
            Nonce::new_random,
        );
        for scope in &self.inner.settings.scopes {
            if scope != "openid" {
                req = req.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, _, nonce) = req.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url: url.to_string(),
            state,
            nonce: nonce.secret().clone(),
            pkce_verifier: SecretString::from(verifier.secret().clone()),
        })
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token:
    /// signature by the provider's JWKS (RS256 only), `iss`, `aud` (this client, and
    /// no untrusted other audience), `exp` at `now`, `nonce`, and `at_hash` when
    /// present. The provider's tokens are dropped here.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<ExternalClaims, IdentityError> {
        let s = &self.inner.settings;
        let client = self.client(self.metadata(now, false).await?)?;
        let http = self.inner.http.clone();
        let send = move |req| Self::send(http.clone(), req);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| IdentityError::ProviderUnavailable)?
            .set_pkce_verifier(PkceCodeVerifier::new(
                pkce_verifier.expose_secret().to_owned(),
            ))
            .request_async(&send)
            .await
            .map_err(|e| {
                use openidconnect::RequestTokenError as R;
                match e {
                    // The provider refused the code (used, expired, not for this
                    // verifier): the person has to start again.
                    R::ServerResponse(r) => {
                        tracing::info!(provider = %s.name, error = %r.error(), "the provider refused the code");
                        IdentityError::ExternalLoginFailed
                    }
                    other => {
                        tracing::warn!(provider = %s.name, error = %other, "code exchange failed");
                        IdentityError::ProviderUnavailable
                    }
                }
            })?;
        let id_token = tokens.id_token().ok_or_else(|| {
            tracing::warn!(provider = %s.name, "the token response has no ID token");
            IdentityError::ExternalLoginFailed
        })?;
        let at = chrono_time(now);
        // `Err(None)`: the signature did not verify (perhaps a key newer than our JWKS).
        let verify = |client: &CoreClient<_, _, _, _, _, _>| -> Result<ExternalClaims, Option<IdentityError>> {
            let verifier: CoreIdTokenVerifier<'_> = client.id_token_verifier().set_time_fn(move || at);
            let claims = id_token
                .claims(&verifier, &Nonce::new(nonce.to_owned()))
                .map_err(|e| {
                    tracing::info!(provider = %s.name, error = %e, "ID token refused");
                    match e {
                        openidconnect::ClaimsVerificationError::SignatureVerification(_) => None,
                        _ => Some(IdentityError::IdTokenInvalid),
                    }
                })?;
            let subject = claims.subject().as_str();
            if subject.is_empty() || subject.len() > 255 || claims.issuer().as_str().len() > 512 {
                tracing::info!(provider = %s.name, "ID token subject or issuer out of bounds");
                return Err(Some(IdentityError::IdTokenInvalid));
            }
            if let Some(expected) = claims.access_token_hash() {
                let invalid = |_| Some(IdentityError::IdTokenInvalid);
                let alg = id_token.signing_alg().map_err(invalid)?;
                let key = id_token.signing_key(&verifier).map_err(invalid)?;
                let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                    .map_err(|_| Some(IdentityError::IdTokenInvalid))?;
                if actual != *expected {
                    tracing::info!(provider = %s.name, "ID token at_hash does not match the access token");
                    return Err(Some(IdentityError::IdTokenInvalid));
                }
            }
            let email = claims
                .email()
                .and_then(|e| crate::normalise_email(e.as_str()).ok());
            Ok(ExternalClaims {
                provider: s.name.clone(),
                issuer: claims.issuer().as_str().to_owned(),
                subject: claims.subject().as_str().to_owned(),
                email_verified: email.is_some() && claims.email_verified() == Some(true),
                email,
                name: claims
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().chars().take(200).collect()),
            })
        };
        match verify(&client) {
            Ok(c) => Ok(c),
            // The provider may have rotated its keys since discovery: fetch the JWKS
            // once more and try again.
            Err(None) => {
                let fresh = self.client(self.metadata(now, true).await?)?;
                verify(&fresh).map_err(|e| e.unwrap_or(IdentityError::IdTokenInvalid))
            }
            Err(Some(e)) => Err(e),
        }
    }
}

/// The configured providers by name. Cheap to clone; empty when none is configured.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: Arc<std::collections::BTreeMap<String, RelyingParty>>,
}

impl Providers {
    /// The providers of `settings` (names must be unique; a later one replaces).
    pub fn new(settings: Vec<ProviderSettings>) -> Result<Self, String> {
        let mut by_name = std::collections::BTreeMap::new();
        for s in settings {
            let name = s.name.clone();
            let rp = RelyingParty::new(s).map_err(|e| format!("oidc.providers.{name}: {e}"))?;
            by_name.insert(name, rp);
        }
        Ok(Self {
            by_name: Arc::new(by_name),
        })
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&RelyingParty> {
        self.by_name.get(name)
    }

    /// Every provider, by name.
    pub fn all(&self) -> impl Iterator<Item = &RelyingParty> {
        self.by_name.values()
    }
}
