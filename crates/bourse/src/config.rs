//! Layered configuration: defaults → TOML file → `BOURSE_*` environment → flags.
//!
//! Every value is checked once here; a wrong value stops the program with a message
//! naming the key and exit code 2 (see `main.rs`). Secrets are `SecretString` and are
//! redacted by [`Config::redacted_toml`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The effective configuration of a bourse process.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Folder for the SQLite database, the generated certificate and other local state.
    pub data_dir: PathBuf,
    /// Public HTTPS listener.
    pub public_addr: SocketAddr,
    /// Internal admin HTTPS listener (keep it on a private interface).
    pub admin_addr: SocketAddr,
    /// `sqlite://…` or `postgres://…`; empty means SQLite in `data_dir`.
    #[serde(serialize_with = "ser_secret_opt")]
    pub database_url: Option<SecretString>,
    /// Shared rate limits: `redis://…` (empty or absent: limits in this process only).
    #[serde(serialize_with = "ser_secret_opt")]
    pub redis_url: Option<SecretString>,
    /// PEM certificate chain; with `tls_key`. Unset: a self-signed one in `data_dir`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1); with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Public base URL; the `iss` of access tokens.
    pub public_url: String,
    /// Master keys encrypting secrets at rest, `id:base64` per line, current first
    /// (normally from `BOURSE_MASTER_KEY`). Unset: `master_key_file`.
    #[serde(serialize_with = "ser_secret_opt")]
    pub master_key: Option<SecretString>,
    /// Master key file; created with a fresh key (mode 0600) when missing. Unset:
    /// `data_dir/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Logging.
    pub log: LogConfig,
    /// Transport and request limits.
    pub http: HttpConfig,
    /// Wallet rules.
    pub wallet: WalletConfig,
    /// The exchange engine: journal, queue, snapshots.
    pub engine: EngineSettings,
    /// The audit trail.
    pub audit: AuditSettings,
    /// Rate limits, bans and load shedding.
    pub rate_limit: RateLimitConfig,
    /// Anomaly detection on the event stream (docs/risk-detection.md).
    pub surveillance: SurveillanceSettings,
    /// Sign in with external OpenID Connect providers (Google or any compliant one).
    pub oidc: OidcSettings,
}

/// External sign-in providers (bourse is the OpenID Connect relying party).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Providers by name (`a-z 0-9 - _`, at most 32; the name is in the routes:
    /// `/v1/auth/oidc/{name}/start`). None by default.
    pub providers: std::collections::BTreeMap<String, OidcProviderConfig>,
}

/// One OpenID Connect provider, e.g. `[oidc.providers.google]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// The issuer (`https://accounts.google.com`); discovery is at
    /// `{issuer_url}/.well-known/openid-configuration`. `http://` only on a loopback
    /// address.
    pub issuer_url: String,
    /// bourse's client id at the provider.
    pub client_id: String,
    /// bourse's client secret at the provider (a secret: normally from
    /// `BOURSE_OIDC__PROVIDERS__<NAME>__CLIENT_SECRET`; never logged or shown).
    #[serde(serialize_with = "ser_secret")]
    pub client_secret: SecretString,
    /// Where the provider sends the browser back. Unset:
    /// `{public_url}/v1/auth/oidc/{name}/callback` (register that URL at the provider).
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Scopes asked for; must include `openid`. Default `openid email profile`.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The name shown to people. Unset: the provider's name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// A PEM file of extra root certificates trusted for this provider only (a
    /// provider behind a private CA), besides the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn ser_secret<S: serde::Serializer>(v: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.expose_secret())
}

/// The surveillance pipeline: which rules, with which thresholds and actions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SurveillanceSettings {
    /// Run the pipeline (on by default).
    pub enabled: bool,
    /// Event batches and audit records queued for it before new ones are dropped
    /// (counted; trading is never slowed for it).
    pub queue_capacity: usize,
    /// The rules: thresholds, cool-downs and actions (defaults and reasons in
    /// docs/risk-detection.md).
    pub rules: bourse_surveillance::SurveillanceConfig,
    /// Where client addresses are, for `new_country`: CIDR ranges with an ISO 3166
    /// alpha-2 code, first match wins (bourse ships no geolocation database; feed this
    /// from the operator's). Empty: `new_country` never fires.
    pub countries: Vec<CountryRange>,
}

/// One address range of [`SurveillanceSettings::countries`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CountryRange {
    /// `203.0.113.0/24` or `2001:db8::/32`.
    pub cidr: String,
    /// `DE`, `AE`, …
    pub country: String,
}

impl CountryRange {
    /// The network address, prefix length and country, or why not.
    pub fn parse(
        &self,
    ) -> Result<(std::net::IpAddr, u8, bourse_surveillance::Country), &'static str> {
        let (addr, len) = self.cidr.split_once('/').ok_or("must be ADDRESS/PREFIX")?;
        let addr: std::net::IpAddr = addr.parse().map_err(|_| "not an IP address")?;
        let len: u8 = len.parse().map_err(|_| "prefix must be a number")?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err("prefix too long for the address family");
        }
        let country = bourse_surveillance::Country::new(&self.country)
            .ok_or("country must be two letters A-Z")?;
        Ok((addr, len, country))
    }
}

/// The audit trail (one hash-chained record per request; see docs/ARCHITECTURE.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Record every request on both listeners. Off only for benchmarks.
    pub enabled: bool,
    /// Records queued for the writer before requests wait for room.
    pub queue_capacity: usize,
}

/// One rate-limit policy: `quota` units per `window_secs`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Units per window; also the burst.
    pub quota: u32,
    /// The window in seconds.
    pub window_secs: u64,
}

/// The named policies (the names the `RateLimit` headers carry).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// Authenticated calls, per user (or OAuth client and user).
    pub default: PolicyConfig,
    /// Unauthenticated calls, per IP.
    pub anonymous: PolicyConfig,
    /// Register, login, 2FA, refresh, password and step-up, per IP.
    pub auth: PolicyConfig,
    /// New and amended orders per second, per user.
    pub orders_second: PolicyConfig,
    /// New and amended orders per minute, per user.
    pub orders_minute: PolicyConfig,
    /// The admin listener, per IP.
    pub admin: PolicyConfig,
}

/// Rate limits, bans and load shedding (see `bourse_api::ratelimit`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off: no limits and no `RateLimit` headers.
    pub enabled: bool,
    /// The policies.
    pub policies: PoliciesConfig,
    /// Route weights, `"METHOD /template"` → units; routes not listed cost 1.
    pub weights: std::collections::BTreeMap<String, u32>,
    /// Refusals inside `ban_window_secs` that earn a temporary ban.
    pub ban_after: u32,
    /// The window refusals are counted in.
    pub ban_window_secs: u64,
    /// How long a ban lasts.
    pub ban_secs: u64,
    /// Requests running at once per listener; more wait up to `queue_timeout_ms`.
    pub max_in_flight: usize,
    /// Longest wait for a slot before 503 `overloaded`.
    pub queue_timeout_ms: u64,
    /// Prefix of the Redis keys (shared mode).
    pub redis_prefix: String,
    /// Longest wait for Redis before this process falls back to its own limiters.
    pub redis_timeout_ms: u64,
}

impl RateLimitConfig {
    /// The gateway's settings, with the Redis URL given.
    pub fn settings(&self, redis_url: Option<String>) -> bourse_api::ratelimit::RateLimitSettings {
        use bourse_api::ratelimit::Policy;
        let p = |c: PolicyConfig| Policy::per(c.quota, c.window_secs);
        let q = &self.policies;
        bourse_api::ratelimit::RateLimitSettings {
            enabled: self.enabled,
            policies: [
                p(q.default),
                p(q.anonymous),
                p(q.auth),
                p(q.orders_second),
                p(q.orders_minute),
                p(q.admin),
            ],
            weights: self.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ban_after: self.ban_after,
            ban_window: std::time::Duration::from_secs(self.ban_window_secs),
            ban_for: std::time::Duration::from_secs(self.ban_secs),
            max_in_flight: self.max_in_flight,
            queue_timeout: std::time::Duration::from_millis(self.queue_timeout_ms),
            redis_url,
            redis_prefix: self.redis_prefix.clone(),
            redis_timeout: std::time::Duration::from_millis(self.redis_timeout_ms),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let d = bourse_api::ratelimit::RateLimitSettings::default();
        let c = |name| {
            let p = d.policy(name);
            PolicyConfig {
                quota: p.quota,
                window_secs: p.window.as_secs(),
            }
        };
        use bourse_api::ratelimit::PolicyName as N;
        Self {
            enabled: d.enabled,
            policies: PoliciesConfig {
                default: c(N::Default),
                anonymous: c(N::Anonymous),
                auth: c(N::Auth),
                orders_second: c(N::OrdersSecond),
                orders_minute: c(N::OrdersMinute),
                admin: c(N::Admin),
            },
            weights: d.weights.into_iter().collect(),
            ban_after: d.ban_after,
            ban_window_secs: d.ban_window.as_secs(),
            ban_secs: d.ban_for.as_secs(),
            max_in_flight: d.max_in_flight,
            queue_timeout_ms: d.queue_timeout.as_millis() as u64,
            redis_prefix: d.redis_prefix,
            redis_timeout_ms: d.redis_timeout.as_millis() as u64,
        }
    }
}

/// Wallet rules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// Seconds a new withdrawal address waits before it can receive withdrawals.
    pub address_cooldown_secs: u64,
    /// Withdrawals above this amount (a decimal string, in the settlement asset) need
    /// two different admin keys to approve.
    pub dual_approval_above: String,
}

/// The exchange engine.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// Journal and snapshot folder. Unset: `data_dir/journal`.
    pub journal_dir: Option<PathBuf>,
    /// Commands each queue lane holds before new ones get 503 (cancels have their own lane).
    pub queue_capacity: usize,
    /// Most commands one journal commit (fsync) covers.
    pub max_batch: usize,
    /// Journaled commands between snapshots.
    pub snapshot_every: u64,
    /// The settlement (collateral) asset.
    pub settlement_asset: String,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `bourse=debug,info`.
    pub level: String,
    /// `json` (default) or `pretty`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Transport and request limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body in bytes (413 above).
    pub body_limit_bytes: usize,
    /// Seconds from request start to response before 504.
    pub request_timeout_secs: u64,
    /// Seconds a client has to send a complete header block (also the idle keep-alive
    /// limit between HTTP/1.1 requests).
    pub header_read_timeout_secs: u64,
    /// Seconds a client has, once the header block is in, to send the whole request body
    /// (408 `body_timeout` after that): a body trickled byte by byte is cut off.
    pub body_read_timeout_secs: u64,
    /// Seconds a client has to complete the TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Open connections per listener; further connections are closed at once.
    pub max_connections: usize,
    /// Open connections per listener from one peer address; further connections from
    /// it are closed at once, so one address cannot take every slot. 0 turns the bound
    /// off (only behind a proxy that hides client addresses, which bourse does not
    /// expect: it terminates TLS itself).
    pub max_connections_per_ip: usize,
    /// Concurrent HTTP/2 streams per connection; more are refused (`REFUSED_STREAM`).
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client may open and reset before the server has accepted them;
    /// beyond this the connection is closed with `GOAWAY ENHANCE_YOUR_CALM` (the "rapid
    /// reset" attack, CVE-2023-44487).
    pub http2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server may reset for a client's protocol errors before it
    /// closes the connection with `GOAWAY ENHANCE_YOUR_CALM` (CVE-2025-8671).
    pub http2_max_local_error_reset_streams: usize,
    /// Largest request header block in bytes (431 above).
    pub max_header_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            public_addr: SocketAddr::from(([0, 0, 0, 0], 8443)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9443)),
            database_url: None,
            redis_url: None,
            tls_cert: None,
            tls_key: None,
            public_url: "https://localhost:8443".into(),
            master_key: None,
            master_key_file: None,
            log: LogConfig {
                level: "info".into(),
                format: LogFormat::Json,
            },
            http: HttpConfig {
                body_limit_bytes: 64 * 1024,
                request_timeout_secs: 30,
                header_read_timeout_secs: 10,
                body_read_timeout_secs: 10,
                tls_handshake_timeout_secs: 10,
                max_connections: 10_000,
                max_connections_per_ip: 256,
                max_concurrent_streams: 100,
                http2_max_pending_accept_reset_streams: 20,
                http2_max_local_error_reset_streams: 100,
                max_header_bytes: 16 * 1024,
                shutdown_grace_secs: 30,
            },
            wallet: WalletConfig {
                address_cooldown_secs: 24 * 3600,
                dual_approval_above: "10000".into(),
            },
            engine: EngineSettings {
                journal_dir: None,
                queue_capacity: 4096,
                max_batch: 1024,
                snapshot_every: 100_000,
                settlement_asset: "USDC".into(),
            },
            audit: AuditSettings {
                enabled: true,
                queue_capacity: 8192,
            },
            rate_limit: RateLimitConfig::default(),
            surveillance: SurveillanceSettings {
                enabled: true,
                queue_capacity: 65_536,
                rules: bourse_surveillance::SurveillanceConfig::default(),
                countries: Vec::new(),
            },
            oidc: OidcSettings::default(),
        }
    }
}

fn ser_secret_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(v.expose_secret()),
        None => s.serialize_none(),
    }
}

/// A configuration error that names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--public-addr`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<String>,
    /// `--admin-addr`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_addr: Option<String>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--redis-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// `--tls-cert`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Loads the layers. `file` is the `--config` path (a missing file is an error only
    /// when it was given explicitly).
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "key `config`: file {} does not exist",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("BOURSE_")
            .split("__")
            // BOURSE_CONFIG names the file itself; BOURSE_TEST_* belong to the test suites.
            .filter(|k| k.as_str() != "config" && !k.as_str().starts_with("test_"));
        let cfg: Config = fig
            .merge(env)
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(|e| ConfigError(describe(e)))?;
        cfg.check()
    }

    fn check(self) -> Result<Self, ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("key `{key}`: {why}")));
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return bad("tls_key", "must be set when tls_cert is set"),
            (None, Some(_)) => return bad("tls_cert", "must be set when tls_key is set"),
            _ => {}
        }
        if let Some(url) = &self.database_url {
            let u = url.expose_secret();
            if !(u.is_empty()
                || u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                return bad(
                    "database_url",
                    "must start with sqlite:, postgres:// or postgresql://",
                );
            }
        }
        if let Some(url) = &self.redis_url {
            let u = url.expose_secret();
            if !(u.is_empty() || u.starts_with("redis://") || u.starts_with("rediss://")) {
                return bad("redis_url", "must start with redis:// or rediss://");
            }
        }
        let r = &self.rate_limit;
        for (key, p) in [
            ("rate_limit.policies.default", r.policies.default),
            ("rate_limit.policies.anonymous", r.policies.anonymous),
            ("rate_limit.policies.auth", r.policies.auth),
            (
                "rate_limit.policies.orders_second",
                r.policies.orders_second,
            ),
            (
                "rate_limit.policies.orders_minute",
                r.policies.orders_minute,
            ),
            ("rate_limit.policies.admin", r.policies.admin),
        ] {
            if p.quota == 0 || p.window_secs == 0 {
                return bad(key, "quota and window_secs must be greater than zero");
            }
        }
        for (key, v) in [
            ("rate_limit.ban_after", u64::from(r.ban_after)),
            ("rate_limit.ban_window_secs", r.ban_window_secs),
            ("rate_limit.ban_secs", r.ban_secs),
            ("rate_limit.max_in_flight", r.max_in_flight as u64),
            ("rate_limit.queue_timeout_ms", r.queue_timeout_ms),
            ("rate_limit.redis_timeout_ms", r.redis_timeout_ms),
        ] {
            if v == 0 {
                return bad(key, "must be greater than zero");
            }
        }
        if let Some((route, _)) = r.weights.iter().find(|(_, w)| **w == 0) {
            return bad(
                &format!("rate_limit.weights.{route}"),
                "must be greater than zero",
            );
        }
        if !(self.public_url.starts_with("https://") && self.public_url.len() > 8) {
            return bad("public_url", "must be an https:// URL");
        }
        if let Err(e) = self.surveillance.rules.validate() {
            return bad(&format!("surveillance.rules.{}", e.field), e.message);
        }
        for (i, r) in self.surveillance.countries.iter().enumerate() {
            if let Err(e) = r.parse() {
                return bad(&format!("surveillance.countries[{i}]"), e);
            }
        }
        if self.surveillance.queue_capacity == 0 {
            return bad("surveillance.queue_capacity", "must be greater than zero");
        }
        if self.public_addr == self.admin_addr && self.public_addr.port() != 0 {
            return bad("admin_addr", "must differ from public_addr");
        }
        let h = &self.http;
        for (key, v) in [
            ("http.body_limit_bytes", h.body_limit_bytes as u64),
            ("http.request_timeout_secs", h.request_timeout_secs),
            ("http.header_read_timeout_secs", h.header_read_timeout_secs),
            ("http.body_read_timeout_secs", h.body_read_timeout_secs),
            (
                "http.tls_handshake_timeout_secs",
                h.tls_handshake_timeout_secs,
            ),
            ("http.max_connections", h.max_connections as u64),
            (
                "http.max_concurrent_streams",
                u64::from(h.max_concurrent_streams),
            ),
            (
                "http.http2_max_pending_accept_reset_streams",
                h.http2_max_pending_accept_reset_streams as u64,
            ),
            (
                "http.http2_max_local_error_reset_streams",
                h.http2_max_local_error_reset_streams as u64,
            ),
        ] {
            if v == 0 {
                return bad(key, "must be greater than zero");
            }
        }
        if h.max_header_bytes < 1024 {
            return bad("http.max_header_bytes", "must be at least 1024");
        }
        let e = &self.engine;
        for (key, v) in [
            ("engine.queue_capacity", e.queue_capacity as u64),
            ("engine.max_batch", e.max_batch as u64),
            ("engine.snapshot_every", e.snapshot_every),
        ] {
            if v == 0 {
                return bad(key, "must be greater than zero");
            }
        }
        if bourse_engine::core::Asset::parse(&e.settlement_asset).is_none() {
            return bad(
                "engine.settlement_asset",
                "must be an asset code such as USDC",
            );
        }
        if self.dual_approval_micros().is_none() {
            return bad(
                "wallet.dual_approval_above",
                "must be a decimal string >= 0 with at most 6 decimals",
            );
        }
        for (name, p) in &self.oidc.providers {
            let key = |field: &str| format!("oidc.providers.{name}.{field}");
            if name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return bad(
                    &format!("oidc.providers.{name}"),
                    "the name must be 1 to 32 of a-z 0-9 - _",
                );
            }
            if !bourse_identity::oidc::issuer_allowed(&p.issuer_url) {
                return bad(
                    &key("issuer_url"),
                    "must be an https:// URL (http:// only on a loopback address)",
                );
            }
            if p.client_id.is_empty() {
                return bad(&key("client_id"), "must not be empty");
            }
            if p.client_secret.expose_secret().is_empty() {
                return bad(&key("client_secret"), "must not be empty");
            }
            if !p.scopes.iter().any(|s| s == "openid") {
                return bad(&key("scopes"), "must include openid");
            }
            if p.scopes.iter().any(|s| {
                s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            }) {
                return bad(
                    &key("scopes"),
                    "each scope must be printable ASCII without spaces",
                );
            }
            if let Some(r) = &p.redirect_url
                && !(r.starts_with("https://") && r.len() > 8)
            {
                return bad(&key("redirect_url"), "must be an https:// URL");
            }
            if let Some(f) = &p.ca_file
                && !f.is_file()
            {
                return bad(&key("ca_file"), "file does not exist");
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", "is not a valid tracing filter");
        }
        Ok(self)
    }

    /// This node's audit chain id: kept in `data_dir/audit-chain-id`, made (a UUIDv7)
    /// on first start, so a restarted node continues its own chain and nodes sharing a
    /// database keep separate ones.
    pub fn audit_chain_id(&self) -> std::io::Result<String> {
        let path = self.data_dir.join("audit-chain-id");
        match std::fs::read_to_string(&path) {
            Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
            Ok(_) => Err(std::io::Error::other("audit-chain-id is empty")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = uuid::Uuid::now_v7().to_string();
                std::fs::write(&path, format!("{id}\n"))?;
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    /// The journal folder in use.
    pub fn effective_journal_dir(&self) -> PathBuf {
        self.engine
            .journal_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("journal"))
    }

    /// `wallet.dual_approval_above` in micro-units.
    pub fn dual_approval_micros(&self) -> Option<i128> {
        let d = bourse_types::decimal::parse_decimal(&self.wallet.dual_approval_above).ok()?;
        let m = d.checked_mul(bourse_types::Decimal::from(1_000_000))?;
        if d.is_sign_negative() || !m.fract().is_zero() {
            return None;
        }
        let t = m.trunc();
        Some(t.mantissa() / 10i128.pow(t.scale()))
    }

    /// The master key file in use.
    pub fn effective_master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The database URL to use: the configured one, or SQLite in the data folder.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.expose_secret().is_empty() => u.expose_secret().to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("bourse.db").display()),
        }
    }

    /// The Redis URL for shared rate limits, if one is set.
    pub fn effective_redis_url(&self) -> Option<String> {
        self.redis_url
            .as_ref()
            .map(|u| u.expose_secret().to_owned())
            .filter(|u| !u.is_empty())
    }

    /// The external sign-in providers, with defaults filled in and CA files read.
    pub fn oidc_providers(
        &self,
    ) -> Result<Vec<bourse_identity::oidc::ProviderSettings>, ConfigError> {
        self.oidc
            .providers
            .iter()
            .map(|(name, p)| {
                let extra_root_pem = match &p.ca_file {
                    Some(f) => Some(std::fs::read(f).map_err(|e| {
                        ConfigError(format!(
                            "key `oidc.providers.{name}.ca_file`: cannot read {}: {e}",
                            f.display()
                        ))
                    })?),
                    None => None,
                };
                Ok(bourse_identity::oidc::ProviderSettings {
                    name: name.clone(),
                    display_name: p.display_name.clone().unwrap_or_else(|| name.clone()),
                    issuer_url: p.issuer_url.clone(),
                    client_id: p.client_id.clone(),
                    client_secret: p.client_secret.clone(),
                    redirect_url: p.redirect_url.clone().unwrap_or_else(|| {
                        format!(
                            "{}/v1/auth/oidc/{name}/callback",
                            self.public_url.trim_end_matches('/')
                        )
                    }),
                    scopes: p.scopes.clone(),
                    extra_root_pem,
                })
            })
            .collect()
    }

    /// The effective configuration as TOML with secrets redacted.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = self
            .database_url
            .as_ref()
            .map(|u| SecretString::from(redact_url(u.expose_secret())));
        shown.redis_url = self
            .redis_url
            .as_ref()
            .map(|u| SecretString::from(redact_url(u.expose_secret())));
        shown.master_key = self.master_key.as_ref().map(|_| SecretString::from("***"));
        for p in shown.oidc.providers.values_mut() {
            p.client_secret = SecretString::from("***");
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Replaces the password of a URL's userinfo with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let pass = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{pass}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Figment's error names the key and where the value came from; keep that, but never
/// the value of `database_url` (it may carry a password).
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(top level)".to_owned()
            } else {
                e.path.join(".")
            };
            let src = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            let what = if key == "database_url"
                || key == "redis_url"
                || key == "master_key"
                || key.ends_with(".client_secret")
            {
                "invalid value".to_owned()
            } else {
                e.kind.to_string()
            };
            format!("key `{key}`: {what}{src}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn flags_override_defaults_and_bad_values_name_the_key() {
        let flags = Overrides {
            public_addr: Some("127.0.0.1:1".into()),
            ..Default::default()
        };
        let c = Config::load(None, &flags).unwrap();
        assert_eq!(c.public_addr.port(), 1);
        let flags = Overrides {
            public_addr: Some("not-an-address".into()),
            ..Default::default()
        };
        let e = Config::load(None, &flags).unwrap_err().to_string();
        assert!(e.contains("public_addr"), "{e}");
        let flags = Overrides {
            tls_cert: Some("x.pem".into()),
            ..Default::default()
        };
        let e = Config::load(None, &flags).unwrap_err().to_string();
        assert!(e.contains("tls_key"), "{e}");
    }
}
