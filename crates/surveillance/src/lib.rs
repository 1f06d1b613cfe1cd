//! Surveillance: market-abuse and account-takeover detection over the exchange's event
//! stream.
//!
//! A plain synchronous, deterministic library: no I/O, no async, no clock, no
//! randomness. Time comes from the events. [`Surveillance::observe`] takes one
//! [`Observation`] and returns the [`Alert`]s it completed (usually none; an empty `Vec`
//! does not allocate). The same observations in always give the same alerts out.
//!
//! Rules (docs/risk-detection.md gives each one's exact condition, defaults and known
//! false positives): `wash_trading`, `spoofing`, `layering`, `order_to_trade_ratio`,
//! `momentum_ignition` on the market side; `new_ip_range`, `new_country`, `new_device`,
//! `unusual_api_usage`, `withdrawal_after_credential_change`, `failed_second_factor` on
//! the identity side.
//!
//! Every rule has a cool-down per subject, so a condition that persists alerts once, not
//! on every event. State is bounded: windows are pruned by event time, and per-account
//! and per-user state is dropped after a configured time without events (see
//! [`SurveillanceConfig`]). The only state that is not evicted is the account → owner
//! map (one entry per account, like the exchange's own account table; see
//! [`Surveillance::forget_account`]) and the per-instrument typical order size.
//!
//! Ids: accounts are the core's `u64` ([`AccountId`]), users are `u128` ([`UserId`], a
//! UUID fits), devices and OAuth clients are 64-bit fingerprints the caller computes,
//! instruments are small numbers the caller assigns to symbols.
//!
//! ```
//! use bourse_surveillance::*;
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! let mut s = Surveillance::new(SurveillanceConfig::default());
//! let user = UserId(7);
//! let login = |ts_ns, ip| Observation::Login {
//!     ts_ns,
//!     user,
//!     ip: IpAddr::V4(ip),
//!     device: Some(DeviceId(1)),
//!     country: Country::new("DE"),
//!     success: true,
//! };
//! assert!(s.observe(&login(1_000_000_000, Ipv4Addr::new(81, 2, 3, 4))).is_empty());
//! let alerts = s.observe(&login(2_000_000_000, Ipv4Addr::new(203, 0, 113, 9)));
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].rule, Rule::NewIpRange);
//! assert_eq!(alerts[0].users, vec![user]);
//! ```

mod config;
mod identity;
mod market;
mod types;

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

pub use config::{
    ConfigError, FailedSecondFactorConfig, LayeringConfig, MomentumIgnitionConfig,
    NewIpRangeConfig, NoveltyConfig, OrderSizeConfig, OrderToTradeRatioConfig, SpoofingConfig,
    SurveillanceConfig, UnusualApiUsageConfig, WashTradingConfig,
    WithdrawalAfterCredentialChangeConfig,
};
pub use types::{
    AccountId, Action, Alert, ClientId, Country, CredentialKind, DeviceId, Evidence, InstrumentId,
    LinkKind, Observation, OrderId, Rule, Side, UserId,
};

use identity::{RouteTable, SharedKey, SharedUsers, UserState};
use market::{AccountState, Candidate, InstrumentState, MomentumState, PairState};

const NS_PER_MS: u64 = 1_000_000;
const NS_PER_SEC: u64 = 1_000_000_000;

const fn secs(s: u64) -> u64 {
    s.saturating_mul(NS_PER_SEC)
}

const fn millis(ms: u64) -> u64 {
    ms.saturating_mul(NS_PER_MS)
}

/// Sizes of the detector's state, for metrics and for checking that it stays bounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateStats {
    /// Accounts with market state.
    pub accounts: usize,
    /// Known account owners (not evicted by inactivity).
    pub owners: usize,
    /// Instruments with a learned typical size (not evicted).
    pub instruments: usize,
    /// Open orders that could still become spoofing or layering evidence.
    pub candidate_orders: usize,
    /// Linked account pairs with trades in the wash-trading window.
    pub linked_pairs: usize,
    /// (account, instrument) momentum trackers.
    pub momentum_trackers: usize,
    /// Users with a learned profile.
    pub users: usize,
    /// Devices, clients and IPs tracked for linkage.
    pub shared_identifiers: usize,
    /// Distinct route templates interned (at most 1024).
    pub routes: usize,
    /// Rule cool-downs in force.
    pub cooldowns: usize,
}

/// The detector. One instance sees one stream in order; it is `Send` and can be moved
/// to the thread that consumes the stream.
#[derive(Debug)]
pub struct Surveillance {
    cfg: SurveillanceConfig,
    now: u64,
    next_sweep: u64,
    sweeps: u64,
    owners: FxHashMap<AccountId, UserId>,
    accounts: FxHashMap<AccountId, AccountState>,
    instruments: FxHashMap<InstrumentId, InstrumentState>,
    candidates: FxHashMap<OrderId, Candidate>,
    candidate_queue: VecDeque<(u64, OrderId)>,
    pairs: FxHashMap<(AccountId, AccountId), PairState>,
    momentum: FxHashMap<(AccountId, InstrumentId), MomentumState>,
    users: FxHashMap<UserId, UserState>,
    shared: FxHashMap<SharedKey, SharedUsers>,
    routes: RouteTable,
    cooldowns: FxHashMap<(Rule, u128), u64>,
}

impl Surveillance {
    /// A detector with no history. Values that cannot work are clamped rather than
    /// refused (idle eviction is raised to the longest window it must outlive); call
    /// [`SurveillanceConfig::validate`] where the configuration is loaded to refuse them.
    #[must_use]
    pub fn new(mut config: SurveillanceConfig) -> Self {
        let market_window_secs = [
            config.wash_trading.window_secs,
            config.order_to_trade_ratio.window_secs,
            config.spoofing.max_lifetime_ms.div_ceil(1000)
                + config.spoofing.opposite_trade_window_ms.div_ceil(1000),
            config.layering.max_lifetime_ms.div_ceil(1000)
                + config.layering.opposite_trade_window_ms.div_ceil(1000),
            config.momentum_ignition.burst_window_ms.div_ceil(1000)
                + config.momentum_ignition.follow_window_ms.div_ceil(1000),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        config.account_idle_evict_secs = config.account_idle_evict_secs.max(market_window_secs);
        let identity_window_secs = [
            config.wash_trading.link_window_secs,
            config.withdrawal_after_credential_change.window_secs,
            config.failed_second_factor.window_secs,
            120,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        config.user_idle_evict_secs = config.user_idle_evict_secs.max(identity_window_secs);
        config.sweep_interval_secs = config.sweep_interval_secs.max(1);
        config.order_to_trade_ratio.window_secs = config.order_to_trade_ratio.window_secs.max(1);
        config.wash_trading.min_trades = config.wash_trading.min_trades.max(1);
        config.layering.min_levels = config.layering.min_levels.max(1);
        config.failed_second_factor.min_failures = config.failed_second_factor.min_failures.max(1);
        config.momentum_ignition.min_aggressive_orders =
            config.momentum_ignition.min_aggressive_orders.max(1);
        config.new_ip_range.ipv4_prefix = config.new_ip_range.ipv4_prefix.clamp(1, 32);
        config.new_ip_range.ipv6_prefix = config.new_ip_range.ipv6_prefix.clamp(1, 128);
        config.new_ip_range.max_remembered = config.new_ip_range.max_remembered.max(1);
        config.new_country.max_remembered = config.new_country.max_remembered.max(1);
        config.new_device.max_remembered = config.new_device.max_remembered.max(1);
        config.order_size.ewma_alpha = config.order_size.ewma_alpha.clamp(f64::MIN_POSITIVE, 1.0);
        config.unusual_api_usage.ewma_alpha = config
            .unusual_api_usage
            .ewma_alpha
            .clamp(f64::MIN_POSITIVE, 1.0);
        Self {
            cfg: config,
            now: 0,
            next_sweep: 0,
            sweeps: 0,
            owners: FxHashMap::default(),
            accounts: FxHashMap::default(),
            instruments: FxHashMap::default(),
            candidates: FxHashMap::default(),
            candidate_queue: VecDeque::new(),
            pairs: FxHashMap::default(),
            momentum: FxHashMap::default(),
            users: FxHashMap::default(),
            shared: FxHashMap::default(),
            routes: RouteTable::default(),
            cooldowns: FxHashMap::default(),
        }
    }

    /// The configuration in force (after clamping).
    #[must_use]
    pub fn config(&self) -> &SurveillanceConfig {
        &self.cfg
    }

    /// Observes one event and returns the alerts it completed.
    #[must_use = "alerts are returned, not stored"]
    pub fn observe(&mut self, observation: &Observation<'_>) -> Vec<Alert> {
        let mut out = Vec::new();
        self.observe_into(observation, &mut out);
        out
    }

    /// Observes one event and appends the alerts it completed to `out` (which is not
    /// cleared).
    pub fn observe_into(&mut self, observation: &Observation<'_>, out: &mut Vec<Alert>) {
        if let Some(ts) = observation.ts_ns() {
            self.now = self.now.max(ts);
            if self.now >= self.next_sweep {
                self.sweep();
                self.next_sweep = self.now.saturating_add(secs(self.cfg.sweep_interval_secs));
            }
        }
        match *observation {
            Observation::AccountLinked { account, owner } => {
                self.owners.insert(account, owner);
            }
            Observation::OrderPlaced {
                account,
                order_id,
                instrument,
                side,
                price_ticks,
                qty_lots,
                best_bid,
                best_ask,
                ..
            } => self.on_order_placed(
                account,
                order_id,
                instrument,
                side,
                price_ticks,
                qty_lots,
                best_bid,
                best_ask,
                out,
            ),
            Observation::OrderCanceled {
                account, order_id, ..
            } => self.on_order_canceled(account, order_id, out),
            Observation::Trade {
                instrument,
                price_ticks,
                qty_lots,
                maker_account,
                taker_account,
                aggressor_side,
                maker_order_id,
                taker_order_id,
                ..
            } => self.on_trade(
                market::TradeRec {
                    ts: self.now,
                    instrument,
                    price: price_ticks,
                    qty: qty_lots,
                    maker_account,
                    taker_account,
                    maker_order: maker_order_id,
                    taker_order: taker_order_id,
                    aggressor: aggressor_side,
                },
                out,
            ),
            Observation::Request {
                user,
                account,
                oauth_client,
                ip,
                device,
                route,
                ..
            } => self.on_request(user, account, oauth_client, ip, device, route, out),
            Observation::Login {
                user,
                ip,
                device,
                country,
                success,
                ..
            } => self.on_login(user, ip, device, country, success, out),
            Observation::SecondFactorFailed { user, .. } => self.on_second_factor_failed(user, out),
            Observation::CredentialChanged { user, kind, .. } => {
                self.on_credential_changed(user, kind);
            }
            Observation::WithdrawalRequested { user, amount, .. } => {
                self.on_withdrawal(user, amount, out);
            }
        }
    }

    /// Drops everything known about an account (when it is closed): its owner link and
    /// its market state.
    pub fn forget_account(&mut self, account: AccountId) {
        self.owners.remove(&account);
        self.accounts.remove(&account);
        self.momentum.retain(|(a, _), _| *a != account);
        self.pairs
            .retain(|(a, b), _| *a != account && *b != account);
    }

    /// Current state sizes.
    #[must_use]
    pub fn stats(&self) -> StateStats {
        StateStats {
            accounts: self.accounts.len(),
            owners: self.owners.len(),
            instruments: self.instruments.len(),
            candidate_orders: self.candidates.len(),
            linked_pairs: self.pairs.len(),
            momentum_trackers: self.momentum.len(),
            users: self.users.len(),
            shared_identifiers: self.shared.len(),
            routes: self.routes.len(),
            cooldowns: self.cooldowns.len(),
        }
    }

    /// Drops state that has been idle longer than its eviction time, and expired
    /// cool-downs. Users and shared identifiers, whose horizons are days, are swept
    /// every tenth time only.
    fn sweep(&mut self) {
        self.sweeps += 1;
        let slow = self.sweeps % 10 == 1;
        let now = self.now;
        let account_horizon = now.saturating_sub(secs(self.cfg.account_idle_evict_secs));
        let user_horizon = now.saturating_sub(secs(self.cfg.user_idle_evict_secs));
        let wash_horizon = now.saturating_sub(secs(self.cfg.wash_trading.window_secs));
        let link_horizon = now.saturating_sub(secs(self.cfg.wash_trading.link_window_secs));
        let momentum_horizon = now.saturating_sub(millis(
            self.cfg.momentum_ignition.burst_window_ms
                + self.cfg.momentum_ignition.follow_window_ms,
        ));
        self.accounts.retain(|_, a| a.last_ts >= account_horizon);
        self.momentum.retain(|_, m| m.last_ts >= momentum_horizon);
        self.pairs.retain(|_, p| p.last_ts >= wash_horizon);
        self.cooldowns.retain(|_, until| *until > now);
        if slow {
            self.users.retain(|_, u| u.last_ts >= user_horizon);
            self.shared.retain(|_, s| s.retain_fresh(link_horizon));
        }
    }

    /// Whether `rule` may fire for `subject` now; if so, starts its cool-down.
    fn may_fire(&mut self, rule: Rule, subject: u128, cooldown_secs: u64) -> bool {
        let now = self.now;
        match self.cooldowns.get_mut(&(rule, subject)) {
            Some(until) if now < *until => false,
            Some(until) => {
                *until = now.saturating_add(secs(cooldown_secs));
                true
            }
            None => {
                if cooldown_secs > 0 {
                    self.cooldowns
                        .insert((rule, subject), now.saturating_add(secs(cooldown_secs)));
                }
                true
            }
        }
    }

    fn owner_users(&self, accounts: &[AccountId]) -> Vec<UserId> {
        let mut users: Vec<UserId> = accounts
            .iter()
            .filter_map(|a| self.owners.get(a).copied())
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }
}

/// 50 at the threshold, 100 at twice it (or more), never below 1.
fn ratio_score(value: f64, threshold: f64) -> u8 {
    if threshold <= 0.0 || !value.is_finite() {
        return 100;
    }
    // Clamped to 1..=100 first, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let score = (50.0 * value / threshold).clamp(1.0, 100.0).round() as u8;
    score
}

fn account_subject(a: AccountId) -> u128 {
    u128::from(a.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_fifty_at_threshold() {
        assert_eq!(ratio_score(10.0, 10.0), 50);
        assert_eq!(ratio_score(20.0, 10.0), 100);
        assert_eq!(ratio_score(200.0, 10.0), 100);
        assert_eq!(ratio_score(0.0, 10.0), 1);
    }

    #[test]
    fn default_config_validates_and_roundtrips() {
        let cfg = SurveillanceConfig::default();
        cfg.validate().unwrap();
        let json = serde_json::to_string(&cfg).unwrap();
        let back: SurveillanceConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        let partial: SurveillanceConfig =
            serde_json::from_str(r#"{"spoofing":{"min_size_multiple":4.0}}"#).unwrap();
        assert!((partial.spoofing.min_size_multiple - 4.0).abs() < f64::EPSILON);
        assert_eq!(partial.spoofing.max_lifetime_ms, 10_000);
        assert!(serde_json::from_str::<SurveillanceConfig>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn rule_names_are_their_serde_form() {
        for rule in Rule::ALL {
            assert_eq!(
                serde_json::to_string(&rule).unwrap(),
                format!("\"{}\"", rule.as_str())
            );
        }
    }
}
