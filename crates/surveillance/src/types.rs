//! The input ([`Observation`]) and output ([`Alert`]) of the detector, and the small id
//! types both use.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A trading account: the exchange core's `AccountId` (a `u64`) as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub u64);

/// A user (a person or company that logs in and owns accounts). The identity service's
/// user ids are UUIDs; a UUID's 128 bits fit here losslessly (`Uuid::as_u128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u128);

/// An order, as the exchange core numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

/// An instrument. The caller maps the core's symbols onto small numbers once (the
/// instrument catalog is small and stable); the detector never sees symbol strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstrumentId(pub u32);

/// A device fingerprint: a stable 64-bit hash the gateway computes (for example of a
/// device cookie and the user-agent). The detector never sees the raw user-agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub u64);

/// An OAuth client, as a 64-bit number the caller derives from the client id (the
/// exchange issues client ids, so a plain hash of the id string is enough).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u64);

/// An ISO 3166-1 alpha-2 country code in upper case, as a GeoIP lookup gives it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Two ASCII letters, case-insensitive; anything else is `None`.
    #[must_use]
    pub fn new(code: &str) -> Option<Self> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code, for example `"DE"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Bid.
    Buy,
    /// Ask.
    Sell,
}

impl Side {
    /// The other side.
    #[must_use]
    pub const fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Buy => 0,
            Self::Sell => 1,
        }
    }
}

/// Which credential changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// The password was changed or reset.
    Password,
    /// A second factor (TOTP secret, recovery codes) was enrolled, replaced or removed.
    TwoFactor,
}

/// One thing that happened, with the time it happened. Timestamps are nanoseconds since
/// the Unix epoch from the event itself (the detector has no clock); they should not go
/// backwards, and one that does is treated as happening at the latest time already seen.
///
/// Borrowed (`'a`) only for the route template of a request, so that the gateway can
/// pass the template it already holds without copying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation<'a> {
    /// `account` belongs to `owner`. Authoritative; without it the owner is learned from
    /// the first [`Observation::Request`] that names the account.
    AccountLinked {
        /// The trading account.
        account: AccountId,
        /// Its owner.
        owner: UserId,
    },
    /// An order was accepted into the book (or executed on arrival).
    OrderPlaced {
        /// When.
        ts_ns: u64,
        /// Whose.
        account: AccountId,
        /// Its id.
        order_id: OrderId,
        /// Where.
        instrument: InstrumentId,
        /// Which side.
        side: Side,
        /// Limit price in ticks (for a market order, the price it is willing to reach).
        price_ticks: i64,
        /// Size in lots.
        qty_lots: u64,
        /// Best bid just before the order arrived, if the book had one.
        best_bid: Option<i64>,
        /// Best ask just before the order arrived, if the book had one.
        best_ask: Option<i64>,
    },
    /// A resting order was cancelled (by its owner; the caller leaves out cancels the
    /// exchange makes itself, such as expiry or self-trade prevention).
    OrderCanceled {
        /// When.
        ts_ns: u64,
        /// Whose.
        account: AccountId,
        /// Which.
        order_id: OrderId,
        /// Where.
        instrument: InstrumentId,
    },
    /// A fill between a resting (maker) and an incoming (taker) order.
    Trade {
        /// When.
        ts_ns: u64,
        /// Where.
        instrument: InstrumentId,
        /// Price in ticks.
        price_ticks: i64,
        /// Size in lots.
        qty_lots: u64,
        /// The resting order's account.
        maker_account: AccountId,
        /// The incoming order's account.
        taker_account: AccountId,
        /// The taker's side.
        aggressor_side: Side,
        /// The resting order.
        maker_order_id: OrderId,
        /// The incoming order.
        taker_order_id: OrderId,
    },
    /// One authenticated API request (the gateway's audit record).
    Request {
        /// When.
        ts_ns: u64,
        /// Who.
        user: UserId,
        /// The trading account it acted on, if any.
        account: Option<AccountId>,
        /// The OAuth client the token was issued to, if it was a delegated token.
        oauth_client: Option<ClientId>,
        /// Client address.
        ip: IpAddr,
        /// Device fingerprint, if the gateway has one.
        device: Option<DeviceId>,
        /// The route template (`/v1/orders/{id}`), never the raw path.
        route: &'a str,
        /// HTTP status answered.
        status: u16,
    },
    /// A login attempt (password step; `success` once every factor passed).
    Login {
        /// When.
        ts_ns: u64,
        /// Who.
        user: UserId,
        /// Client address.
        ip: IpAddr,
        /// Device fingerprint, if any.
        device: Option<DeviceId>,
        /// Country of `ip`, when a GeoIP mapping supplied one.
        country: Option<Country>,
        /// Whether the user ended up logged in.
        success: bool,
    },
    /// A second-factor code was wrong.
    SecondFactorFailed {
        /// When.
        ts_ns: u64,
        /// Who.
        user: UserId,
    },
    /// A credential changed.
    CredentialChanged {
        /// When.
        ts_ns: u64,
        /// Whose.
        user: UserId,
        /// Which.
        kind: CredentialKind,
    },
    /// A withdrawal was requested.
    WithdrawalRequested {
        /// When.
        ts_ns: u64,
        /// Who.
        user: UserId,
        /// Amount in the asset's minor units.
        amount: u64,
    },
}

impl Observation<'_> {
    /// The event's timestamp (`None` for [`Observation::AccountLinked`], which has none).
    #[must_use]
    pub fn ts_ns(&self) -> Option<u64> {
        match *self {
            Self::AccountLinked { .. } => None,
            Self::OrderPlaced { ts_ns, .. }
            | Self::OrderCanceled { ts_ns, .. }
            | Self::Trade { ts_ns, .. }
            | Self::Request { ts_ns, .. }
            | Self::Login { ts_ns, .. }
            | Self::SecondFactorFailed { ts_ns, .. }
            | Self::CredentialChanged { ts_ns, .. }
            | Self::WithdrawalRequested { ts_ns, .. } => Some(ts_ns),
        }
    }
}

/// A detection rule. [`Rule::as_str`] is its stable name (also its serde form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Trades between linked accounts.
    WashTrading,
    /// A large order away from the touch, cancelled quickly, while trading the other side.
    Spoofing,
    /// Several such orders at different price levels.
    Layering,
    /// Too many orders and cancels per trade.
    OrderToTradeRatio,
    /// An aggressive burst that moves the price, then a trade the other way.
    MomentumIgnition,
    /// A login from an IP range the user never logged in from.
    NewIpRange,
    /// A login from a country the user never logged in from.
    NewCountry,
    /// A login from a device the user never logged in from.
    NewDevice,
    /// API usage far from the user's own profile.
    UnusualApiUsage,
    /// A withdrawal soon after a password or second-factor change.
    WithdrawalAfterCredentialChange,
    /// Many wrong second-factor codes.
    FailedSecondFactor,
}

impl Rule {
    /// Every rule, in declaration order.
    pub const ALL: [Self; 11] = [
        Self::WashTrading,
        Self::Spoofing,
        Self::Layering,
        Self::OrderToTradeRatio,
        Self::MomentumIgnition,
        Self::NewIpRange,
        Self::NewCountry,
        Self::NewDevice,
        Self::UnusualApiUsage,
        Self::WithdrawalAfterCredentialChange,
        Self::FailedSecondFactor,
    ];

    /// The stable snake_case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WashTrading => "wash_trading",
            Self::Spoofing => "spoofing",
            Self::Layering => "layering",
            Self::OrderToTradeRatio => "order_to_trade_ratio",
            Self::MomentumIgnition => "momentum_ignition",
            Self::NewIpRange => "new_ip_range",
            Self::NewCountry => "new_country",
            Self::NewDevice => "new_device",
            Self::UnusualApiUsage => "unusual_api_usage",
            Self::WithdrawalAfterCredentialChange => "withdrawal_after_credential_change",
            Self::FailedSecondFactor => "failed_second_factor",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the caller should do about an alert. The detector only recommends; enforcing is
/// the caller's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Tell the risk desk; change nothing.
    Notify,
    /// Require a fresh second factor before the user's next sensitive operation.
    StepUp,
    /// Hold the user's withdrawals until the desk clears them.
    FreezeWithdrawals,
    /// Stop the account's order entry (cancel-only) until the desk clears it.
    HaltTrading,
}

/// How two accounts were found to be linked, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Both sides of the trade were the same account (a self-match).
    SameAccount,
    /// Both accounts belong to the same user.
    SameOwner,
    /// The owners used the same device within the link window.
    SameDevice,
    /// The owners used the same OAuth client within the link window.
    SameOauthClient,
    /// The owners used the same IP address within the link window.
    SameIp,
}

/// One piece of evidence: the events, ids and numbers behind an alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// A trade.
    Trade {
        /// When.
        ts_ns: u64,
        /// Where.
        instrument: InstrumentId,
        /// Price in ticks.
        price_ticks: i64,
        /// Size in lots.
        qty_lots: u64,
        /// Maker side's account.
        maker_account: AccountId,
        /// Taker side's account.
        taker_account: AccountId,
        /// Resting order.
        maker_order_id: OrderId,
        /// Incoming order.
        taker_order_id: OrderId,
        /// The taker's side.
        aggressor_side: Side,
    },
    /// An order (placed, and cancelled when `canceled_ts_ns` is set).
    Order {
        /// Its id.
        order_id: OrderId,
        /// Where.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Price in ticks.
        price_ticks: i64,
        /// Size in lots.
        qty_lots: u64,
        /// Ticks behind the best price on its own side when it was placed.
        ticks_from_touch: i64,
        /// When it was placed.
        placed_ts_ns: u64,
        /// When it was cancelled.
        canceled_ts_ns: Option<u64>,
    },
    /// How two accounts are linked; `value` names what they share (an IP, a device or
    /// client number) when the link is not ownership.
    Link {
        /// The link.
        link: LinkKind,
        /// The shared IP, device or client, displayed.
        value: Option<String>,
    },
    /// Which of a rule's signals fired (`unusual_api_usage`: `volume`, `endpoint_mix`
    /// or `timing`).
    Signal {
        /// Stable snake_case name.
        name: &'static str,
    },
    /// A number: a count, a ratio, a baseline, a threshold.
    Metric {
        /// Stable snake_case name, for example `orders` or `baseline_per_minute`.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// An IP address and the range it belongs to (`10.1.0.0/16`).
    Ip {
        /// The address.
        ip: IpAddr,
        /// Its range.
        range: String,
    },
    /// A country.
    Country {
        /// The country.
        country: Country,
    },
    /// A device.
    Device {
        /// The device.
        device: DeviceId,
    },
    /// A route and how often it was requested in the current minute, with its share of
    /// the user's learned profile.
    Route {
        /// The route template.
        route: String,
        /// Requests to it in the current minute.
        requests: u64,
        /// Its share of the learned profile (0 for a route never used).
        profile_share: f64,
    },
    /// A credential change.
    CredentialChange {
        /// Which credential.
        credential: CredentialKind,
        /// When.
        ts_ns: u64,
    },
    /// A withdrawal request.
    Withdrawal {
        /// When.
        ts_ns: u64,
        /// Amount in minor units.
        amount: u64,
    },
    /// A wrong second-factor code.
    SecondFactorFailure {
        /// When.
        ts_ns: u64,
    },
}

/// One detection. Alerts are rare; building one allocates, observing without one does
/// not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Which rule fired.
    pub rule: Rule,
    /// The time of the observation that completed the condition.
    pub ts_ns: u64,
    /// What the rule is configured to recommend.
    pub action: Action,
    /// Confidence/severity 0–100: 50 at the rule's threshold, growing with the excess.
    pub score: u8,
    /// Accounts involved (sorted, no duplicates; empty for the identity rules, which are
    /// about a user).
    pub accounts: Vec<AccountId>,
    /// Users involved (sorted, no duplicates; owners of `accounts` when known).
    pub users: Vec<UserId>,
    /// What triggered it.
    pub evidence: Vec<Evidence>,
}
