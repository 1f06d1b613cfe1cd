//! Rate limits, temporary bans and load shedding at the gateway.
//!
//! Every request is charged against one or more named GCRA policies (quota `q` per
//! window `w`, a burst of up to `q`):
//!
//! | class | policies | keyed by |
//! |---|---|---|
//! | credential endpoints (register, login, 2FA, refresh, step-up, password, external sign-in start and callback) | `auth` | source IP |
//! | a request with a valid access token | `default` (+ `orders_second`, `orders_minute` on order entry) | user, or OAuth client + user |
//! | anything else on the public listener | `anonymous` | source IP |
//! | the admin listener | `admin` | source IP |
//!
//! A route costs its configured weight (history and cancel-all cost more than a
//! ticker). Every answer carries the IETF `RateLimit-Policy` and `RateLimit` headers
//! (draft-ietf-httpapi-ratelimit-headers: `"default";q=600;w=60` and
//! `"default";r=599;t=1`). A refusal is 429 `rate_limited` with `Retry-After`. A
//! subject refused `ban_after` times inside `ban_window` is banned for `ban_for`: 429
//! `temporarily_banned`, its end time in the detail and in `Retry-After`.
//!
//! In-process, the limits are `governor` keyed limiters. With a Redis URL they live in
//! Redis, one Lua script per request that checks the ban, runs GCRA for every policy at
//! once on Redis's clock and counts strikes, so that any number of `bourse` processes
//! enforce one limit together. When Redis does not answer in time the process falls
//! back to its own limiters (degraded, never unlimited) and logs it.
//!
//! Health probes (`/healthz`, `/readyz`) are neither limited nor shed.
//!
//! Load shedding: at most `max_in_flight` requests run at once; one that waits longer
//! than `queue_timeout` for a slot gets 503 `overloaded` with `Retry-After`. Cancels
//! (`DELETE /v1/orders`, `DELETE /v1/orders/{id}`) never wait for a slot, so a client
//! can always pull its orders while new ones are being shed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// One named limit: `quota` requests (weight units) per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Units per window; also the burst.
    pub quota: u32,
    /// The window.
    pub window: Duration,
}

impl Policy {
    /// `quota` per `secs` seconds.
    pub const fn per(quota: u32, secs: u64) -> Self {
        Self {
            quota,
            window: Duration::from_secs(secs),
        }
    }

    /// The GCRA emission interval: one unit every `window / quota`.
    fn period(&self) -> Duration {
        self.window / self.quota.max(1)
    }
}

/// The policies by name. The names are what the headers carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyName {
    /// Authenticated calls, per user (or OAuth client and user).
    Default,
    /// Unauthenticated calls, per IP.
    Anonymous,
    /// Credential endpoints, per IP.
    Auth,
    /// New and amended orders per second, per user.
    OrdersSecond,
    /// New and amended orders per minute, per user.
    OrdersMinute,
    /// The admin listener, per IP.
    Admin,
}

impl PolicyName {
    const ALL: [PolicyName; 6] = [
        PolicyName::Default,
        PolicyName::Anonymous,
        PolicyName::Auth,
        PolicyName::OrdersSecond,
        PolicyName::OrdersMinute,
        PolicyName::Admin,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::Default => "default",
            PolicyName::Anonymous => "anonymous",
            PolicyName::Auth => "auth",
            PolicyName::OrdersSecond => "orders_second",
            PolicyName::OrdersMinute => "orders_minute",
            PolicyName::Admin => "admin",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Everything the gate needs, from the config file (see the README's table).
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Off: no limits, no headers (benchmarks and tests that need it).
    pub enabled: bool,
    /// The policies, indexed by [`PolicyName`].
    pub policies: [Policy; 6],
    /// Route weights, `"METHOD /template"` → units (1 when absent).
    pub weights: HashMap<String, u32>,
    /// Refusals inside `ban_window` that earn a ban.
    pub ban_after: u32,
    /// The window refusals are counted in.
    pub ban_window: Duration,
    /// How long a ban lasts.
    pub ban_for: Duration,
    /// Requests running at once (load shedding), per listener.
    pub max_in_flight: usize,
    /// Longest wait for a slot before 503.
    pub queue_timeout: Duration,
    /// Shared mode: the Redis URL (`None` = in-process).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (one per deployment, or per test).
    pub redis_prefix: String,
    /// Longest wait for Redis before falling back to the in-process limiters.
    pub redis_timeout: Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let weights = [
            ("GET /v1/orders", 5),
            ("GET /v1/fills", 5),
            ("GET /v1/account/ledger", 5),
            ("GET /v1/wallet/withdrawals", 5),
            ("GET /v1/wallet/deposits", 5),
            ("GET /v1/instruments/{symbol}/trades", 2),
            ("GET /v1/instruments/{symbol}/book", 2),
            ("DELETE /v1/orders", 10),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            enabled: true,
            policies: [
                Policy::per(1200, 60),
                Policy::per(300, 60),
                Policy::per(20, 60),
                Policy::per(50, 1),
                Policy::per(1500, 60),
                Policy::per(600, 60),
            ],
            weights,
            ban_after: 50,
            ban_window: Duration::from_secs(60),
            ban_for: Duration::from_secs(300),
            max_in_flight: 2048,
            queue_timeout: Duration::from_millis(200),
            redis_url: None,
            redis_prefix: "bourse:rl:".into(),
            redis_timeout: Duration::from_millis(250),
        }
    }
}

impl RateLimitSettings {
    /// The policy called `name`.
    pub fn policy(&self, name: PolicyName) -> Policy {
        self.policies[name.index()]
    }
}

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// In-process state: one governor limiter per policy, plus strikes and bans.
struct Local {
    clock: DefaultClock,
    limiters: Vec<Keyed>,
    strikes: Mutex<HashMap<String, (u32, Instant)>>,
    bans: Mutex<HashMap<String, Instant>>,
}

impl Local {
    fn new(settings: &RateLimitSettings) -> Self {
        let limiters = PolicyName::ALL
            .iter()
            .map(|&name| {
                let p = settings.policy(name);
                let burst = NonZeroU32::new(p.quota.max(1)).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(p.period().max(Duration::from_nanos(1)))
                    .unwrap_or_else(|| Quota::per_second(burst))
                    .allow_burst(burst);
                RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
            })
            .collect();
        Self {
            clock: DefaultClock::default(),
            limiters,
            strikes: Mutex::new(HashMap::new()),
            bans: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, settings: &RateLimitSettings, subject: &str, charges: &[Charge]) -> Verdict {
        let now = Instant::now();
        {
            let mut bans = lock(&self.bans);
            match bans.get(subject) {
                Some(&until) if until > now => return Verdict::Banned(until - now),
                Some(_) => {
                    bans.remove(subject);
                }
                None => {}
            }
        }
        let mut states = Vec::with_capacity(charges.len());
        let mut wait = Duration::ZERO;
        for c in charges {
            let policy = settings.policy(c.policy);
            let limiter = &self.limiters[c.policy.index()];
            let n =
                NonZeroU32::new(c.weight.clamp(1, policy.quota.max(1))).unwrap_or(NonZeroU32::MIN);
            match limiter.check_key_n(&subject.to_owned(), n) {
                Ok(Ok(snapshot)) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    states.push(PolicyState::new(c.policy, policy, remaining));
                }
                Ok(Err(not_until)) => {
                    let w = not_until.wait_time_from(self.clock.now());
                    wait = wait.max(w);
                    states.push(PolicyState::refused(c.policy, policy, w));
                }
                Err(_) => {
                    // Heavier than the whole burst: never fits.
                    wait = wait.max(policy.window);
                    states.push(PolicyState::refused(c.policy, policy, policy.window));
                }
            }
        }
        if wait.is_zero() {
            return Verdict::Allowed(states);
        }
        let mut strikes = lock(&self.strikes);
        let entry = strikes.entry(subject.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) > settings.ban_window {
            *entry = (0, now);
        }
        entry.0 += 1;
        if entry.0 >= settings.ban_after {
            strikes.remove(subject);
            lock(&self.bans).insert(subject.to_owned(), now + settings.ban_for);
            return Verdict::Banned(settings.ban_for);
        }
        Verdict::Refused(wait.max(Duration::from_millis(1)), states)
    }

    /// Drops state that no longer limits anyone (called every minute).
    fn sweep(&self, settings: &RateLimitSettings) {
        for l in &self.limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
        let now = Instant::now();
        lock(&self.bans).retain(|_, until| *until > now);
        lock(&self.strikes)
            .retain(|_, (_, since)| now.duration_since(*since) <= settings.ban_window);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shared-mode script. KEYS: ban, strikes, then one key per policy. ARGV: ban_after,
/// ban_window_ms, ban_ms, then per policy: period_us, window_us, weight. Returns
/// `{0, 0, r1, t1, …}` allowed, `{1, wait_us, r1, t1, …}` refused, `{2, ban_ms}` banned,
/// with `r` the units left and `t` the microseconds until the policy is full again.
const GCRA_LUA: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local ban = redis.call('PTTL', KEYS[1])
if ban > 0 then return {2, ban} end
local n = #KEYS - 2
local new, old = {}, {}
local wait = 0
for i = 1, n do
  local period = tonumber(ARGV[3 + 3 * i - 2])
  local window = tonumber(ARGV[3 + 3 * i - 1])
  local weight = tonumber(ARGV[3 + 3 * i])
  local tat = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
  if tat < now then tat = now end
  old[i] = tat
  new[i] = tat + weight * period
  if new[i] - now > window then
    local w = new[i] - window - now
    if w > wait then wait = w end
  end
end
local out
if wait > 0 then
  local strikes = redis.call('INCR', KEYS[2])
  if strikes == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
  if strikes >= tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
    redis.call('DEL', KEYS[2])
    return {2, tonumber(ARGV[3])}
  end
  out = {1, wait}
else
  out = {0, 0}
end
for i = 1, n do
  local period = tonumber(ARGV[3 + 3 * i - 2])
  local window = tonumber(ARGV[3 + 3 * i - 1])
  local tat = old[i]
  if wait == 0 then
    tat = new[i]
    redis.call('SET', KEYS[2 + i], tat, 'PX', math.floor((tat - now) / 1000) + 1)
  end
  local left = math.floor((window - (tat - now)) / period)
  if left < 0 then left = 0 end
  out[#out + 1] = left
  out[#out + 1] = tat - now
end
return out
";

/// Shared state in Redis, with the in-process limiters as the fallback.
struct Shared {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
}

impl Shared {
    async fn check(
        &self,
        settings: &RateLimitSettings,
        subject: &str,
        charges: &[Charge],
    ) -> Result<Verdict, redis::RedisError> {
        let prefix = &settings.redis_prefix;
        let mut inv = self.script.prepare_invoke();
        inv.key(format!("{prefix}ban:{subject}"));
        inv.key(format!("{prefix}strikes:{subject}"));
        inv.arg(settings.ban_after.max(1));
        inv.arg(settings.ban_window.as_millis().max(1) as u64);
        inv.arg(settings.ban_for.as_millis().max(1) as u64);
        for c in charges {
            let p = settings.policy(c.policy);
            inv.key(format!("{prefix}{}:{subject}", c.policy.as_str()));
            inv.arg(p.period().as_micros().max(1) as u64);
            inv.arg(p.window.as_micros() as u64);
            inv.arg(c.weight.clamp(1, p.quota.max(1)));
        }
        let mut conn = self.conn.clone();
        let out: Vec<i64> = inv.invoke_async(&mut conn).await?;
        let code = out.first().copied().unwrap_or(-1);
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        match code {
            2 => Ok(Verdict::Banned(Duration::from_millis(
                u64::try_from(out.get(1).copied().unwrap_or(0)).unwrap_or(0),
            ))),
            0 | 1 => {
                let mut states = Vec::with_capacity(charges.len());
                for (i, c) in charges.iter().enumerate() {
                    let left = out.get(2 + 2 * i).copied().unwrap_or(0);
                    let reset = out.get(3 + 2 * i).copied().unwrap_or(0);
                    states.push(PolicyState {
                        name: c.policy,
                        policy: settings.policy(c.policy),
                        remaining: u32::try_from(left.max(0)).unwrap_or(u32::MAX),
                        reset: us(reset),
                    });
                }
                if code == 0 {
                    Ok(Verdict::Allowed(states))
                } else {
                    let wait = us(out.get(1).copied().unwrap_or(0)).max(Duration::from_millis(1));
                    Ok(Verdict::Refused(wait, states))
                }
            }
            _ => Err(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected rate-limit script answer",
            ))),
        }
    }
}

/// One policy's charge for this request.
#[derive(Debug, Clone, Copy)]
struct Charge {
    policy: PolicyName,
    weight: u32,
}

/// Where one policy stands after a request.
#[derive(Debug, Clone, Copy)]
struct PolicyState {
    name: PolicyName,
    policy: Policy,
    remaining: u32,
    /// Until the policy is full again.
    reset: Duration,
}

impl PolicyState {
    fn new(name: PolicyName, policy: Policy, remaining: u32) -> Self {
        let used = policy.quota.saturating_sub(remaining);
        Self {
            name,
            policy,
            remaining,
            reset: policy.period() * used,
        }
    }

    fn refused(name: PolicyName, policy: Policy, wait: Duration) -> Self {
        Self {
            name,
            policy,
            remaining: 0,
            reset: wait.max(policy.period() * policy.quota.saturating_sub(1)),
        }
    }
}

enum Verdict {
    Allowed(Vec<PolicyState>),
    Refused(Duration, Vec<PolicyState>),
    Banned(Duration),
}

/// The gate of one listener: limits, bans and the in-flight bound.
pub struct Gate {
    settings: RateLimitSettings,
    admin: bool,
    local: Arc<Local>,
    shared: Option<Shared>,
    slots: Semaphore,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("enabled", &self.settings.enabled)
            .field("admin", &self.admin)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Gate {
    /// A gate for the public (`admin = false`) or the admin listener. With a Redis URL
    /// the limits are shared; the connection is made here (an unreachable Redis is an
    /// error at start, not a silent fallback).
    pub async fn new(settings: RateLimitSettings, admin: bool) -> Result<Arc<Self>, String> {
        let shared = match &settings.redis_url {
            Some(url) if settings.enabled => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| format!("rate_limit.redis_url: {e}"))?;
                let conn = tokio::time::timeout(
                    Duration::from_secs(5),
                    redis::aio::ConnectionManager::new(client),
                )
                .await
                .map_err(|_| "rate_limit.redis_url: Redis did not answer in 5 s".to_owned())?
                .map_err(|e| format!("rate_limit.redis_url: {e}"))?;
                Some(Shared {
                    conn,
                    script: redis::Script::new(GCRA_LUA),
                })
            }
            _ => None,
        };
        let local = Arc::new(Local::new(&settings));
        let gate = Arc::new(Self {
            slots: Semaphore::new(settings.max_in_flight.max(1)),
            settings,
            admin,
            local,
            shared,
        });
        let weak = Arc::downgrade(&gate);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(gate) = weak.upgrade() else { break };
                gate.local.sweep(&gate.settings);
            }
        });
        Ok(gate)
    }

    /// Whether limits are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn weight(&self, method: &Method, route: &str) -> u32 {
        self.settings
            .weights
            .get(&format!("{method} {route}"))
            .copied()
            .unwrap_or(1)
    }

    async fn verdict(&self, subject: &str, charges: &[Charge]) -> Verdict {
        if let Some(shared) = &self.shared {
            match tokio::time::timeout(
                self.settings.redis_timeout,
                shared.check(&self.settings, subject, charges),
            )
            .await
            {
                Ok(Ok(v)) => return v,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e.kind_name(), "shared rate limiter failed; using the local one");
                }
                Err(_) => {
                    tracing::warn!("shared rate limiter timed out; using the local one");
                }
            }
        }
        self.local.check(&self.settings, subject, charges)
    }
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for redis::RedisError {
    /// The error's kind only: a Redis error can quote the URL, and URLs carry passwords.
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

/// Routes with their own strict limit (credential endpoints), by template.
fn is_credential_route(method: &Method, route: &str) -> bool {
    // Turning 2FA off takes a code, so it can be used to guess codes too.
    (*method == Method::DELETE && route == "/v1/auth/2fa/totp")
        // External sign-in: each start writes a pending login and each callback may
        // create an account and calls the provider.
        || (*method == Method::GET
            && matches!(
                route,
                "/v1/auth/oidc/{provider}/start" | "/v1/auth/oidc/{provider}/callback"
            ))
        || *method == Method::POST
            && matches!(
                route,
                "/v1/auth/register"
                    | "/v1/auth/login"
                    | "/v1/auth/login/mfa"
                    | "/v1/auth/refresh"
                    | "/v1/auth/password"
                    | "/v1/auth/2fa/totp"
                    | "/v1/auth/2fa/totp/confirm"
                    | "/v1/auth/step-up"
            )
}

fn is_order_entry(method: &Method, route: &str) -> bool {
    (*method == Method::POST && route == "/v1/orders")
        || (*method == Method::PATCH && route == "/v1/orders/{id}")
}

/// Calls that only take risk off (cancels, the dead man's switch, the kill switch):
/// never shed, so a client can always get out of the market.
fn is_cancel(method: &Method, route: &str) -> bool {
    (*method == Method::DELETE && (route == "/v1/orders" || route == "/v1/orders/{id}"))
        || (*method == Method::POST
            && (route == "/v1/orders/cancel-after" || route == "/v1/account/kill-switch"))
}

fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The gateway middleware: rate limits and bans, then the in-flight bound.
pub async fn layer(
    State((gate, app)): State<(Arc<Gate>, Option<crate::AppState>)>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    // Health probes come from the load balancer's few addresses many times a second;
    // limiting or shedding them would take a healthy node out of rotation.
    if matches!(route.as_str(), "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    if !gate.settings.enabled {
        return shed(&gate, &route, req, next).await;
    }
    let method = req.method().clone();
    let ip = client_ip(&req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let weight = gate.weight(&method, &route);
    let (subject, charges): (String, Vec<Charge>) = if gate.admin {
        (
            format!("ip:{ip}"),
            vec![Charge {
                policy: PolicyName::Admin,
                weight,
            }],
        )
    } else if is_credential_route(&method, &route) {
        (
            format!("ip:{ip}"),
            vec![Charge {
                policy: PolicyName::Auth,
                weight,
            }],
        )
    } else {
        let claims = app.as_ref().and_then(|app| {
            bearer(req.headers()).and_then(|t| {
                app.identity
                    .verify_access_token(t, OffsetDateTime::now_utc())
                    .ok()
            })
        });
        match claims {
            Some(c) => {
                // The audit record of a refused request names the caller as well.
                crate::audit::set_user(&c.sub, &c.sid, c.client_id.as_deref());
                let subject = match &c.client_id {
                    Some(client) => format!("client:{client}:user:{}", c.sub),
                    None => format!("user:{}", c.sub),
                };
                let mut charges = vec![Charge {
                    policy: PolicyName::Default,
                    weight,
                }];
                if is_order_entry(&method, &route) {
                    charges.push(Charge {
                        policy: PolicyName::OrdersSecond,
                        weight: 1,
                    });
                    charges.push(Charge {
                        policy: PolicyName::OrdersMinute,
                        weight: 1,
                    });
                }
                (subject, charges)
            }
            None => (
                format!("ip:{ip}"),
                vec![Charge {
                    policy: PolicyName::Anonymous,
                    weight,
                }],
            ),
        }
    };
    match gate.verdict(&subject, &charges).await {
        Verdict::Allowed(states) => {
            let mut resp = shed(&gate, &route, req, next).await;
            set_headers(resp.headers_mut(), &states);
            resp
        }
        Verdict::Refused(wait, states) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "rate limit reached ({}); retry in {secs} s",
                    states
                        .iter()
                        .filter(|s| s.remaining == 0)
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
            .into_response();
            set_headers(resp.headers_mut(), &states);
            resp
        }
        Verdict::Banned(left) => {
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let until = OffsetDateTime::now_utc() + left;
            let until = until
                .replace_nanosecond(0)
                .unwrap_or(until)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_banned",
                format!("too many requests after being rate limited; banned until {until}"),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
            .into_response();
            // Nothing is available to a banned subject until the ban ends.
            let states: Vec<PolicyState> = charges
                .iter()
                .map(|c| PolicyState {
                    name: c.policy,
                    policy: gate.settings.policy(c.policy),
                    remaining: 0,
                    reset: left,
                })
                .collect();
            set_headers(resp.headers_mut(), &states);
            resp
        }
    }
}

/// Runs the request inside an in-flight slot (cancels skip the queue).
async fn shed(gate: &Gate, route: &str, req: Request, next: Next) -> Response {
    if is_cancel(req.method(), route) {
        return next.run(req).await;
    }
    match tokio::time::timeout(gate.settings.queue_timeout, gate.slots.acquire()).await {
        Ok(Ok(_permit)) => next.run(req).await,
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is at capacity; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        .into_response(),
    }
}

fn set_headers(headers: &mut HeaderMap, states: &[PolicyState]) {
    if states.is_empty() {
        return;
    }
    let policy = states
        .iter()
        .map(|s| {
            format!(
                "\"{}\";q={};w={}",
                s.name.as_str(),
                s.policy.quota,
                s.policy.window.as_secs().max(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let current = states
        .iter()
        .map(|s| {
            let t = s.reset.as_secs() + u64::from(s.reset.subsec_nanos() > 0);
            format!("\"{}\";r={};t={}", s.name.as_str(), s.remaining, t)
        })
        .collect::<Vec<_>>()
        .join(", ");
    if let (Ok(p), Ok(c)) = (
        HeaderValue::from_str(&policy),
        HeaderValue::from_str(&current),
    ) {
        headers.insert("ratelimit-policy", p);
        headers.insert("ratelimit", c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_draft_format() {
        let mut h = HeaderMap::new();
        set_headers(
            &mut h,
            &[PolicyState::new(
                PolicyName::Default,
                Policy::per(100, 60),
                42,
            )],
        );
        assert_eq!(h["ratelimit-policy"], "\"default\";q=100;w=60");
        // 58 used units at 0.6 s each: full again in 34.8 s.
        assert_eq!(h["ratelimit"], "\"default\";r=42;t=35");
    }

    #[test]
    fn local_limits_refuse_past_the_burst_and_then_ban() {
        let settings = RateLimitSettings {
            policies: [Policy::per(3, 60); 6],
            ban_after: 2,
            ..RateLimitSettings::default()
        };
        let local = Local::new(&settings);
        let charge = [Charge {
            policy: PolicyName::Anonymous,
            weight: 1,
        }];
        for left in [2, 1, 0] {
            match local.check(&settings, "ip:1", &charge) {
                Verdict::Allowed(s) => assert_eq!(s[0].remaining, left),
                _ => panic!("within the burst"),
            }
        }
        assert!(
            matches!(local.check(&settings, "ip:1", &charge), Verdict::Refused(w, _) if w > Duration::from_secs(10))
        );
        // Another subject is not affected.
        assert!(matches!(
            local.check(&settings, "ip:2", &charge),
            Verdict::Allowed(_)
        ));
        assert!(
            matches!(local.check(&settings, "ip:1", &charge), Verdict::Banned(d) if d == settings.ban_for)
        );
        assert!(matches!(
            local.check(&settings, "ip:1", &charge),
            Verdict::Banned(_)
        ));
    }

    #[test]
    fn a_weight_above_the_burst_is_capped_not_unlimited() {
        let settings = RateLimitSettings {
            policies: [Policy::per(5, 60); 6],
            ..RateLimitSettings::default()
        };
        let local = Local::new(&settings);
        let heavy = [Charge {
            policy: PolicyName::Default,
            weight: 50,
        }];
        assert!(matches!(
            local.check(&settings, "u", &heavy),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            local.check(&settings, "u", &heavy),
            Verdict::Refused(..)
        ));
    }
}
