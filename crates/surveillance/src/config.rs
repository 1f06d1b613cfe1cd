//! Thresholds for every rule. Every struct deserializes with serde, fills missing fields
//! from its `Default` and refuses unknown fields. docs/risk-detection.md gives the
//! reasoning behind each default.

use serde::{Deserialize, Serialize};

use crate::types::Action;

/// The whole configuration. `SurveillanceConfig::default()` is the documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SurveillanceConfig {
    /// Market state of an account (windows, candidate orders, bursts) is dropped after
    /// this long without an event for it. Raised to the longest market window if lower.
    /// Default 6 hours.
    pub account_idle_evict_secs: u64,
    /// A user's learned profile (IP ranges, devices, countries, API baseline, credential
    /// changes) is dropped after this long without an event for the user. Raised to the
    /// longest identity window if lower. Default 30 days.
    pub user_idle_evict_secs: u64,
    /// How often (in event time) idle state is swept. Default 60 s.
    pub sweep_interval_secs: u64,
    /// How an instrument's typical order size is learned (spoofing, layering).
    pub order_size: OrderSizeConfig,
    /// `wash_trading`.
    pub wash_trading: WashTradingConfig,
    /// `spoofing`.
    pub spoofing: SpoofingConfig,
    /// `layering`.
    pub layering: LayeringConfig,
    /// `order_to_trade_ratio`.
    pub order_to_trade_ratio: OrderToTradeRatioConfig,
    /// `momentum_ignition`.
    pub momentum_ignition: MomentumIgnitionConfig,
    /// `new_ip_range`.
    pub new_ip_range: NewIpRangeConfig,
    /// `new_country`.
    pub new_country: NoveltyConfig,
    /// `new_device`.
    pub new_device: NoveltyConfig,
    /// `unusual_api_usage`.
    pub unusual_api_usage: UnusualApiUsageConfig,
    /// `withdrawal_after_credential_change`.
    pub withdrawal_after_credential_change: WithdrawalAfterCredentialChangeConfig,
    /// `failed_second_factor`.
    pub failed_second_factor: FailedSecondFactorConfig,
}

impl Default for SurveillanceConfig {
    fn default() -> Self {
        Self {
            account_idle_evict_secs: 6 * 3600,
            user_idle_evict_secs: 30 * 86_400,
            sweep_interval_secs: 60,
            order_size: OrderSizeConfig::default(),
            wash_trading: WashTradingConfig::default(),
            spoofing: SpoofingConfig::default(),
            layering: LayeringConfig::default(),
            order_to_trade_ratio: OrderToTradeRatioConfig::default(),
            momentum_ignition: MomentumIgnitionConfig::default(),
            new_ip_range: NewIpRangeConfig::default(),
            new_country: NoveltyConfig {
                action: Action::StepUp,
                ..NoveltyConfig::default()
            },
            new_device: NoveltyConfig {
                action: Action::StepUp,
                max_remembered: 16,
                ..NoveltyConfig::default()
            },
            unusual_api_usage: UnusualApiUsageConfig::default(),
            withdrawal_after_credential_change: WithdrawalAfterCredentialChangeConfig::default(),
            failed_second_factor: FailedSecondFactorConfig::default(),
        }
    }
}

/// A configuration value that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, as a dotted path (`spoofing.min_size_multiple`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: &'static str,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl SurveillanceConfig {
    /// Checks values that would make a rule meaningless (a zero window, a fraction
    /// outside 0..=1). [`crate::Surveillance::new`] does not call this: it clamps
    /// instead, so an operator path should call `validate` when loading the file.
    ///
    /// # Errors
    /// The first field found wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn check(ok: bool, field: &'static str, message: &'static str) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError { field, message })
            }
        }
        check(
            self.sweep_interval_secs > 0,
            "sweep_interval_secs",
            "must be positive",
        )?;
        check(
            self.order_size.ewma_alpha > 0.0 && self.order_size.ewma_alpha <= 1.0,
            "order_size.ewma_alpha",
            "must be in (0, 1]",
        )?;
        check(
            self.wash_trading.window_secs > 0,
            "wash_trading.window_secs",
            "must be positive",
        )?;
        check(
            self.wash_trading.min_trades > 0,
            "wash_trading.min_trades",
            "must be positive",
        )?;
        check(
            self.spoofing.min_size_multiple > 0.0,
            "spoofing.min_size_multiple",
            "must be positive",
        )?;
        check(
            self.layering.min_size_multiple > 0.0,
            "layering.min_size_multiple",
            "must be positive",
        )?;
        check(
            self.layering.min_levels >= 2,
            "layering.min_levels",
            "must be at least 2",
        )?;
        check(
            self.order_to_trade_ratio.window_secs > 0,
            "order_to_trade_ratio.window_secs",
            "must be positive",
        )?;
        check(
            self.momentum_ignition.min_aggressive_orders > 0,
            "momentum_ignition.min_aggressive_orders",
            "must be positive",
        )?;
        check(
            (1..=32).contains(&self.new_ip_range.ipv4_prefix),
            "new_ip_range.ipv4_prefix",
            "must be 1..=32",
        )?;
        check(
            (1..=128).contains(&self.new_ip_range.ipv6_prefix),
            "new_ip_range.ipv6_prefix",
            "must be 1..=128",
        )?;
        let api = &self.unusual_api_usage;
        check(
            api.ewma_alpha > 0.0 && api.ewma_alpha <= 1.0,
            "unusual_api_usage.ewma_alpha",
            "must be in (0, 1]",
        )?;
        check(
            (0.0..=1.0).contains(&api.mix_rare_share),
            "unusual_api_usage.mix_rare_share",
            "must be in [0, 1]",
        )?;
        check(
            (0.0..=1.0).contains(&api.mix_min_rare_fraction),
            "unusual_api_usage.mix_min_rare_fraction",
            "must be in [0, 1]",
        )?;
        check(
            self.failed_second_factor.min_failures > 0,
            "failed_second_factor.min_failures",
            "must be positive",
        )?;
        Ok(())
    }
}

/// Typical order size per instrument: an exponentially weighted mean of placed orders'
/// sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderSizeConfig {
    /// Weight of each new order. Default 0.01 (a memory of roughly 100 orders).
    pub ewma_alpha: f64,
    /// Orders an instrument needs before its typical size is trusted; until then only
    /// the absolute `min_notional` tests can make an order "large". Default 200.
    pub warmup_orders: u64,
}

impl Default for OrderSizeConfig {
    fn default() -> Self {
        Self {
            ewma_alpha: 0.01,
            warmup_orders: 200,
        }
    }
}

/// `wash_trading`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WashTradingConfig {
    /// Run the rule. Default true.
    pub enabled: bool,
    /// Default `notify`.
    pub action: Action,
    /// Linked trades are counted over this window. Default 1800 s.
    pub window_secs: u64,
    /// Linked trades between one pair needed. Default 3 (1 alerts on any self-match).
    pub min_trades: u32,
    /// Lots those trades must add up to. Default 1.
    pub min_volume_lots: u64,
    /// A shared device, client or IP links two users if both used it within this long.
    /// Default 86400 s.
    pub link_window_secs: u64,
    /// A device, client or IP used by more users than this within the link window is
    /// shared infrastructure (carrier NAT, a VPN exit, a popular third-party app) and
    /// links nobody. Default 4.
    pub max_users_per_link: u32,
    /// Link by shared device. Default true.
    pub link_by_device: bool,
    /// Link by shared OAuth client. Default true.
    pub link_by_oauth_client: bool,
    /// Link by shared IP address. Default true.
    pub link_by_ip: bool,
    /// After firing for a pair, stay quiet for that pair this long. Default 3600 s.
    pub cooldown_secs: u64,
}

impl Default for WashTradingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::Notify,
            window_secs: 1800,
            min_trades: 3,
            min_volume_lots: 1,
            link_window_secs: 86_400,
            max_users_per_link: 4,
            link_by_device: true,
            link_by_oauth_client: true,
            link_by_ip: true,
            cooldown_secs: 3600,
        }
    }
}

/// `spoofing`: one large order away from the touch, cancelled quickly, while the account
/// trades the other side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoofingConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `notify`.
    pub action: Action,
    /// Large = at least this many times the instrument's typical size. Default 10.
    pub min_size_multiple: f64,
    /// Or, independently of the typical size, at least this notional in ticks × lots.
    /// Default none.
    pub min_notional: Option<u64>,
    /// Ticks behind the best price on the order's own side. Default 3.
    pub min_ticks_from_touch: i64,
    /// Cancelled within this long of being placed. Default 10 000 ms.
    pub max_lifetime_ms: u64,
    /// An opposite-side trade by the account between placement and this long after the
    /// cancel. Default 30 000 ms.
    pub opposite_trade_window_ms: u64,
    /// Default 600 s.
    pub cooldown_secs: u64,
}

impl Default for SpoofingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::Notify,
            min_size_multiple: 10.0,
            min_notional: None,
            min_ticks_from_touch: 3,
            max_lifetime_ms: 10_000,
            opposite_trade_window_ms: 30_000,
            cooldown_secs: 600,
        }
    }
}

/// `layering`: several quickly cancelled orders at different levels on one side while
/// the account trades the other side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayeringConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `notify`.
    pub action: Action,
    /// Distinct price levels needed. Default 3.
    pub min_levels: u32,
    /// Each order at least this many times the typical size. Default 3.
    pub min_size_multiple: f64,
    /// Or at least this notional (ticks × lots). Default none.
    pub min_notional: Option<u64>,
    /// Ticks behind the best price on the order's own side. Default 2.
    pub min_ticks_from_touch: i64,
    /// Default 10 000 ms.
    pub max_lifetime_ms: u64,
    /// Default 30 000 ms.
    pub opposite_trade_window_ms: u64,
    /// Default 600 s.
    pub cooldown_secs: u64,
}

impl Default for LayeringConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::Notify,
            min_levels: 3,
            min_size_multiple: 3.0,
            min_notional: None,
            min_ticks_from_touch: 2,
            max_lifetime_ms: 10_000,
            opposite_trade_window_ms: 30_000,
            cooldown_secs: 600,
        }
    }
}

/// `order_to_trade_ratio`: (orders + cancels) / max(trades, 1) per account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderToTradeRatioConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `notify`.
    pub action: Action,
    /// Window (20 buckets, so counts are exact to a twentieth of it). Default 600 s.
    pub window_secs: u64,
    /// Orders placed in the window before the ratio counts. Default 1000.
    pub min_orders: u32,
    /// Alert above this ratio. Default 200.
    pub max_ratio: f64,
    /// Default 1800 s.
    pub cooldown_secs: u64,
}

impl Default for OrderToTradeRatioConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::Notify,
            window_secs: 600,
            min_orders: 1000,
            max_ratio: 200.0,
            cooldown_secs: 1800,
        }
    }
}

/// `momentum_ignition`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MomentumIgnitionConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `notify`.
    pub action: Action,
    /// The burst's aggressive orders all fall within this long of its first. Default
    /// 10 000 ms.
    pub burst_window_ms: u64,
    /// Distinct aggressive (taker) orders in the burst. Default 5.
    pub min_aggressive_orders: u32,
    /// Price move in the burst's direction, from the last trade before it to its last
    /// fill, in basis points. Default 50.
    pub min_move_bps: u32,
    /// An opposite-side trade by the account within this long after the burst's last
    /// aggressive fill. Default 60 000 ms.
    pub follow_window_ms: u64,
    /// Default 600 s.
    pub cooldown_secs: u64,
}

impl Default for MomentumIgnitionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::Notify,
            burst_window_ms: 10_000,
            min_aggressive_orders: 5,
            min_move_bps: 50,
            follow_window_ms: 60_000,
            cooldown_secs: 600,
        }
    }
}

/// `new_ip_range`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewIpRangeConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `notify`.
    pub action: Action,
    /// IPv4 range prefix length. Default 16.
    pub ipv4_prefix: u8,
    /// IPv6 range prefix length. Default 48.
    pub ipv6_prefix: u8,
    /// Ranges remembered per user (least recently used forgotten first). Default 16.
    pub max_remembered: usize,
    /// Default 3600 s.
    pub cooldown_secs: u64,
}

impl Default for NewIpRangeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::Notify,
            ipv4_prefix: 16,
            ipv6_prefix: 48,
            max_remembered: 16,
            cooldown_secs: 3600,
        }
    }
}

/// `new_country` and `new_device`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoveltyConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `step_up` for both rules.
    pub action: Action,
    /// Values remembered per user. Default 8 countries, 16 devices.
    pub max_remembered: usize,
    /// Default 3600 s.
    pub cooldown_secs: u64,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::StepUp,
            max_remembered: 8,
            cooldown_secs: 3600,
        }
    }
}

/// `unusual_api_usage`: three signals against the user's own learned profile, over
/// one-minute (tumbling, aligned to the epoch) windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnusualApiUsageConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `notify`.
    pub action: Action,
    /// Weight of each finished active minute in the baselines. Default 0.1.
    pub ewma_alpha: f64,
    /// Volume: active minutes (minutes with at least one request) learned before the
    /// rate baseline is trusted. Default 30.
    pub warmup_minutes: u32,
    /// Volume: this minute's requests at least this many times the baseline. Default 8.
    pub volume_multiple: f64,
    /// Volume: and at least this many requests this minute. Default 120.
    pub volume_min_per_minute: u32,
    /// Endpoint mix: requests learned before the route profile is trusted. Default 500.
    pub mix_warmup_requests: u32,
    /// Endpoint mix: a route is rare below this share of the profile. Default 0.01.
    pub mix_rare_share: f64,
    /// Endpoint mix: requests this minute before the mix is judged. Default 30.
    pub mix_min_requests: u32,
    /// Endpoint mix: fraction of this minute's requests that went to rare routes.
    /// Default 0.5.
    pub mix_min_rare_fraction: f64,
    /// Timing: minutes with at least 5 intervals learned before the timing baseline is
    /// trusted. Default 10.
    pub timing_warmup_minutes: u32,
    /// Timing: intervals this minute before it is judged. Default 20.
    pub timing_min_intervals: u32,
    /// Timing: the profile is human when its learned coefficient of variation of
    /// inter-request intervals is at least this. Default 0.5.
    pub timing_human_min_cv: f64,
    /// Timing: this minute is machine-like below this coefficient of variation.
    /// Default 0.1.
    pub timing_machine_max_cv: f64,
    /// Timing: and the profile is human only while at most this share of its learned
    /// minutes (EWMA) were machine-like, so a user who runs a bot beside the browser is
    /// not "previously human". Default 0.05.
    pub timing_max_machine_share: f64,
    /// Default 3600 s.
    pub cooldown_secs: u64,
}

impl Default for UnusualApiUsageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::Notify,
            ewma_alpha: 0.1,
            warmup_minutes: 30,
            volume_multiple: 8.0,
            volume_min_per_minute: 120,
            mix_warmup_requests: 500,
            mix_rare_share: 0.01,
            mix_min_requests: 30,
            mix_min_rare_fraction: 0.5,
            timing_warmup_minutes: 10,
            timing_min_intervals: 20,
            timing_human_min_cv: 0.5,
            timing_machine_max_cv: 0.1,
            timing_max_machine_share: 0.05,
            cooldown_secs: 3600,
        }
    }
}

/// `withdrawal_after_credential_change`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WithdrawalAfterCredentialChangeConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `freeze_withdrawals`.
    pub action: Action,
    /// A withdrawal within this long after the change. Default 86 400 s (24 h).
    pub window_secs: u64,
    /// Default 3600 s (the first alert already recommends freezing withdrawals).
    pub cooldown_secs: u64,
}

impl Default for WithdrawalAfterCredentialChangeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::FreezeWithdrawals,
            window_secs: 86_400,
            cooldown_secs: 3600,
        }
    }
}

/// `failed_second_factor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailedSecondFactorConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `freeze_withdrawals`.
    pub action: Action,
    /// Failures counted over this window. Default 900 s.
    pub window_secs: u64,
    /// Failures needed. Default 5.
    pub min_failures: u32,
    /// Default 900 s.
    pub cooldown_secs: u64,
}

impl Default for FailedSecondFactorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Action::FreezeWithdrawals,
            window_secs: 900,
            min_failures: 5,
            cooldown_secs: 900,
        }
    }
}
