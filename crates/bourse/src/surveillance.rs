//! The surveillance pipeline: the engine's journaled events and the gateway's audit
//! records become `bourse_surveillance` observations; each alert is stored with the
//! users it concerns, and its configured action is applied (docs/risk-detection.md):
//! `step_up` and `freeze_withdrawals` become restrictions the API enforces,
//! `halt_trading` turns the account's kill switch on in the core (as an operator's, so
//! only an operator lifts it).
//!
//! Both feeds are bounded and fed with `try_send`: when the pipeline falls behind, the
//! engine and the gateway drop observations (and count them) rather than slow trading
//! down. The detector's state lives in memory and starts empty on every start.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bourse_engine::core::{self, Command, EventKind, Issuer};
use bourse_engine::{Engine, EventBatch, Meta};
use bourse_store::{AuditEntry, RiskAlertRecord, Store};
use bourse_surveillance as sv;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

/// Where the engine and the audit writer send what the pipeline observes.
#[derive(Debug, Clone)]
pub struct Feeds {
    /// Journaled commands and their events (the engine's tap).
    pub events: mpsc::Sender<EventBatch>,
    /// Audit records (the audit writer's tee).
    pub audit: mpsc::Sender<AuditEntry>,
    /// Audit records the pipeline was too far behind to take.
    pub audit_dropped: Arc<AtomicU64>,
}

/// The receiving ends, for [`run`].
#[derive(Debug)]
pub struct Receivers {
    events: mpsc::Receiver<EventBatch>,
    audit: mpsc::Receiver<AuditEntry>,
}

/// Bounded feeds of `capacity` batches / records each.
pub fn feeds(capacity: usize) -> (Feeds, Receivers) {
    let (events, events_rx) = mpsc::channel(capacity.max(1));
    let (audit, audit_rx) = mpsc::channel(capacity.max(1));
    (
        Feeds {
            events,
            audit,
            audit_dropped: Arc::default(),
        },
        Receivers {
            events: events_rx,
            audit: audit_rx,
        },
    )
}

/// Address ranges and their countries (first match wins).
pub type Countries = Vec<(IpAddr, u8, sv::Country)>;

/// The country of `ip` in `ranges`.
pub fn country_of(ranges: &Countries, ip: IpAddr) -> Option<sv::Country> {
    fn bits(ip: IpAddr) -> (u128, u8) {
        match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }
    let (x, width) = bits(ip);
    ranges.iter().find_map(|&(net, len, country)| {
        let (n, w) = bits(net);
        if w != width {
            return None;
        }
        let shift = u32::from(width - len);
        let same = if len == 0 {
            true
        } else {
            x.checked_shr(shift) == n.checked_shr(shift)
        };
        same.then_some(country)
    })
}

/// Observes until `stop` flips or both feeds close.
pub async fn run(
    mut rx: Receivers,
    config: sv::SurveillanceConfig,
    countries: Countries,
    store: Store,
    engine: Engine,
    mut stop: watch::Receiver<bool>,
) {
    let mut p = Pipeline {
        detector: sv::Surveillance::new(config),
        mapper: Mapper::default(),
        countries,
        store,
        engine,
        alerts: Vec::new(),
    };
    loop {
        tokio::select! {
            () = crate::server::stopped(&mut stop) => return,
            batch = rx.events.recv() => match batch {
                Some(batch) => p.market(&batch).await,
                None => return,
            },
            entry = rx.audit.recv() => match entry {
                Some(entry) => p.audit(&entry).await,
                None => return,
            },
        }
    }
}

struct Pipeline {
    detector: sv::Surveillance,
    mapper: Mapper,
    countries: Countries,
    store: Store,
    engine: Engine,
    alerts: Vec<sv::Alert>,
}

/// One resting order as the pipeline's view of the book knows it.
#[derive(Debug, Clone, Copy)]
struct Resting {
    instrument: u32,
    side: sv::Side,
    price: i64,
    leaves: u64,
}

/// Per-instrument price levels (aggregate lots), enough to know the touch when an
/// order arrives.
#[derive(Debug, Default)]
struct Levels {
    bids: BTreeMap<i64, u64>,
    asks: BTreeMap<i64, u64>,
}

impl Levels {
    fn side(&mut self, side: sv::Side) -> &mut BTreeMap<i64, u64> {
        match side {
            sv::Side::Buy => &mut self.bids,
            sv::Side::Sell => &mut self.asks,
        }
    }

    fn add(&mut self, side: sv::Side, price: i64, lots: u64) {
        *self.side(side).entry(price).or_insert(0) += lots;
    }

    fn remove(&mut self, side: sv::Side, price: i64, lots: u64) {
        let levels = self.side(side);
        if let Some(q) = levels.get_mut(&price) {
            *q = q.saturating_sub(lots);
            if *q == 0 {
                levels.remove(&price);
            }
        }
    }

    fn touch(&self) -> (Option<i64>, Option<i64>) {
        (
            self.bids.keys().next_back().copied(),
            self.asks.keys().next().copied(),
        )
    }
}

/// Turns events and audit records into observations.
#[derive(Debug, Default)]
struct Mapper {
    instruments: HashMap<core::Symbol, u32>,
    books: HashMap<u32, Levels>,
    /// Open orders: accepted (leaves 0 until they rest) or resting.
    orders: HashMap<u64, Resting>,
    /// Accounts whose owner the detector has been told.
    linked: HashMap<u64, sv::UserId>,
    /// The reverse, for requests.
    accounts_of: HashMap<sv::UserId, u64>,
}

fn side(s: core::Side) -> sv::Side {
    match s {
        core::Side::Buy => sv::Side::Buy,
        core::Side::Sell => sv::Side::Sell,
    }
}

/// A user id (UUID text) as the detector's number.
fn user_id(text: &str) -> Option<sv::UserId> {
    uuid::Uuid::parse_str(text)
        .ok()
        .map(|u| sv::UserId(u.as_u128()))
}

fn user_text(u: sv::UserId) -> String {
    uuid::Uuid::from_u128(u.0).to_string()
}

/// A 64-bit fingerprint of an identifier (OAuth client id, user agent).
pub fn fingerprint(text: &str) -> u64 {
    let d = Sha256::digest(text.as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Decimal text in micro-units (withdrawal amounts), truncated; 0 if unreadable.
fn micros(text: &str) -> u64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    let (Ok(i), Ok(f)) = (int.parse::<u64>(), frac.parse::<u64>()) else {
        return 0;
    };
    i.saturating_mul(1_000_000).saturating_add(f)
}

impl Mapper {
    fn instrument(&mut self, s: core::Symbol) -> u32 {
        let next = u32::try_from(self.instruments.len()).unwrap_or(u32::MAX);
        *self.instruments.entry(s).or_insert(next)
    }

    fn leave(&mut self, order: u64, lots: u64, gone: bool) {
        let Some(o) = self.orders.get_mut(&order) else {
            return;
        };
        let take = lots.min(o.leaves);
        o.leaves -= take;
        let o = *o;
        if take > 0 {
            self.books
                .entry(o.instrument)
                .or_default()
                .remove(o.side, o.price, take);
        }
        if gone || o.leaves == 0 && take > 0 {
            self.orders.remove(&order);
        }
    }
}

impl Pipeline {
    async fn market(&mut self, batch: &EventBatch) {
        let mut arrived: Vec<u64> = Vec::new();
        for (_, _, events) in batch {
            arrived.clear();
            for e in events.iter() {
                let ts_ns = e.ts.0;
                match &e.kind {
                    EventKind::OrderAccepted {
                        order_id,
                        account,
                        instrument,
                        side: s,
                        price,
                        quantity,
                        ..
                    } => {
                        self.link(account.0).await;
                        let inst = self.mapper.instrument(*instrument);
                        let (best_bid, best_ask) = self
                            .mapper
                            .books
                            .get(&inst)
                            .map_or((None, None), Levels::touch);
                        let price_ticks = price.map_or_else(
                            // A market order: at the touch it takes.
                            || match s {
                                core::Side::Buy => best_ask.unwrap_or(0),
                                core::Side::Sell => best_bid.unwrap_or(0),
                            },
                            |p| p.0,
                        );
                        self.mapper.orders.insert(
                            order_id.0,
                            Resting {
                                instrument: inst,
                                side: side(*s),
                                price: price_ticks,
                                leaves: 0,
                            },
                        );
                        arrived.push(order_id.0);
                        self.observe(&sv::Observation::OrderPlaced {
                            ts_ns,
                            account: sv::AccountId(account.0),
                            order_id: sv::OrderId(order_id.0),
                            instrument: sv::InstrumentId(inst),
                            side: side(*s),
                            price_ticks,
                            qty_lots: quantity.0,
                            best_bid,
                            best_ask,
                        });
                    }
                    EventKind::OrderRested {
                        order_id,
                        price,
                        quantity,
                    } => {
                        if let Some(o) = self.mapper.orders.get_mut(&order_id.0) {
                            o.price = price.0;
                            o.leaves = quantity.0;
                            let o = *o;
                            self.mapper
                                .books
                                .entry(o.instrument)
                                .or_default()
                                .add(o.side, o.price, o.leaves);
                        }
                    }
                    EventKind::OrderTraded {
                        instrument,
                        maker_order_id,
                        taker_order_id,
                        maker_account,
                        taker_account,
                        price,
                        quantity,
                        aggressor,
                        ..
                    } => {
                        self.link(maker_account.0).await;
                        self.link(taker_account.0).await;
                        let inst = self.mapper.instrument(*instrument);
                        self.mapper.leave(maker_order_id.0, quantity.0, false);
                        self.observe(&sv::Observation::Trade {
                            ts_ns,
                            instrument: sv::InstrumentId(inst),
                            price_ticks: price.0,
                            qty_lots: quantity.0,
                            maker_account: sv::AccountId(maker_account.0),
                            taker_account: sv::AccountId(taker_account.0),
                            aggressor_side: side(*aggressor),
                            maker_order_id: sv::OrderId(maker_order_id.0),
                            taker_order_id: sv::OrderId(taker_order_id.0),
                        });
                    }
                    EventKind::OrderCanceled {
                        order_id, account, ..
                    } => {
                        let inst = self.mapper.orders.get(&order_id.0).map(|o| o.instrument);
                        self.mapper.leave(order_id.0, u64::MAX, true);
                        if let Some(inst) = inst {
                            self.observe(&sv::Observation::OrderCanceled {
                                ts_ns,
                                account: sv::AccountId(account.0),
                                order_id: sv::OrderId(order_id.0),
                                instrument: sv::InstrumentId(inst),
                            });
                        }
                    }
                    EventKind::OrderExpired { order_id, .. } => {
                        self.mapper.leave(order_id.0, u64::MAX, true);
                    }
                    EventKind::OrderAmended {
                        order_id,
                        price,
                        quantity,
                        ..
                    } => {
                        if let Some(o) = self.mapper.orders.get(&order_id.0).copied() {
                            let levels = self.mapper.books.entry(o.instrument).or_default();
                            levels.remove(o.side, o.price, o.leaves);
                            levels.add(o.side, price.0, quantity.0);
                            self.mapper.orders.insert(
                                order_id.0,
                                Resting {
                                    price: price.0,
                                    leaves: quantity.0,
                                    ..o
                                },
                            );
                        }
                    }
                    _ => {}
                }
            }
            // An order of this command that did not rest (IOC, filled on arrival) is gone.
            for id in &arrived {
                if self.mapper.orders.get(id).is_some_and(|o| o.leaves == 0) {
                    self.mapper.orders.remove(id);
                }
            }
        }
        self.raise_pending().await;
    }

    /// Tells the detector who owns `account`, once.
    async fn link(&mut self, account: u64) {
        if account == core::FEE_ACCOUNT.0 || self.mapper.linked.contains_key(&account) {
            return;
        }
        let Ok(Some(owner)) = self
            .store
            .trading_account_user(i64::try_from(account).unwrap_or(i64::MAX))
            .await
        else {
            return;
        };
        let Some(owner) = user_id(&owner) else { return };
        self.mapper.linked.insert(account, owner);
        self.mapper.accounts_of.insert(owner, account);
        self.observe(&sv::Observation::AccountLinked {
            account: sv::AccountId(account),
            owner,
        });
    }

    async fn audit(&mut self, e: &AuditEntry) {
        let ts_ns = u64::try_from(e.ts_us).unwrap_or(0).saturating_mul(1_000);
        let ip: Option<IpAddr> = e.source_ip.as_deref().and_then(|s| s.parse().ok());
        let details: serde_json::Value = e
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let ok = (200..300).contains(&e.status);
        let user = e.user_id.as_deref().and_then(user_id);
        let subject = e.subject_user_id.as_deref().and_then(user_id);
        let device = details["device"]
            .as_str()
            .and_then(|d| u64::from_str_radix(d, 16).ok())
            .map(sv::DeviceId);
        if let (Some(user), Some(ip)) = (user, ip) {
            let account = self.mapper.accounts_of.get(&user).copied();
            self.observe(&sv::Observation::Request {
                ts_ns,
                user,
                account: account.map(sv::AccountId),
                oauth_client: e.client_id.as_deref().map(|c| sv::ClientId(fingerprint(c))),
                ip,
                device,
                route: &e.route,
                status: u16::try_from(e.status).unwrap_or(0),
            });
        }
        match e.action.as_deref() {
            // `mfa_required` is neither: the sign-in completes (or not) at login_mfa.
            Some("auth.login") if details["result"] != "mfa_required" => {
                let success = ok && details["result"] == "success";
                if let (Some(who), Some(ip)) = (if success { user } else { subject }, ip) {
                    self.observe(&sv::Observation::Login {
                        ts_ns,
                        user: who,
                        ip,
                        device,
                        country: country_of(&self.countries, ip),
                        success,
                    });
                }
            }
            // An external provider's sign-in (without two-factor) completes at its callback.
            Some("auth.oidc_login" | "auth.oidc_link") if ok && details["result"] == "success" => {
                if let (Some(who), Some(ip)) = (user, ip) {
                    self.observe(&sv::Observation::Login {
                        ts_ns,
                        user: who,
                        ip,
                        device,
                        country: country_of(&self.countries, ip),
                        success: true,
                    });
                }
            }
            // With two factors the sign-in completes here.
            Some("auth.login_mfa") if ok => {
                if let (Some(who), Some(ip)) = (user, ip) {
                    self.observe(&sv::Observation::Login {
                        ts_ns,
                        user: who,
                        ip,
                        device,
                        country: country_of(&self.countries, ip),
                        success: true,
                    });
                }
            }
            Some("auth.login_mfa") => {
                if let Some(who) = subject {
                    self.observe(&sv::Observation::SecondFactorFailed { ts_ns, user: who });
                }
            }
            Some("auth.step_up" | "auth.2fa_disable" | "auth.2fa_confirm")
                if !ok
                    && matches!(
                        e.problem_code.as_deref(),
                        Some("invalid_code" | "code_replayed")
                    ) =>
            {
                if let Some(who) = user {
                    self.observe(&sv::Observation::SecondFactorFailed { ts_ns, user: who });
                }
            }
            Some("auth.password_change") if ok => {
                if let Some(who) = user {
                    self.observe(&sv::Observation::CredentialChanged {
                        ts_ns,
                        user: who,
                        kind: sv::CredentialKind::Password,
                    });
                }
            }
            Some("auth.2fa_confirm" | "auth.2fa_disable") if ok => {
                if let Some(who) = user {
                    self.observe(&sv::Observation::CredentialChanged {
                        ts_ns,
                        user: who,
                        kind: sv::CredentialKind::TwoFactor,
                    });
                }
            }
            Some("wallet.withdrawal_request") if ok => {
                if let Some(who) = user {
                    self.observe(&sv::Observation::WithdrawalRequested {
                        ts_ns,
                        user: who,
                        amount: micros(details["amount"].as_str().unwrap_or("0")),
                    });
                }
            }
            _ => {}
        }
        self.raise_pending().await;
    }

    fn observe(&mut self, o: &sv::Observation<'_>) {
        self.detector.observe_into(o, &mut self.alerts);
    }

    async fn raise_pending(&mut self) {
        for alert in std::mem::take(&mut self.alerts) {
            self.raise(alert).await;
        }
    }

    /// Stores the alert and applies its action.
    async fn raise(&mut self, a: sv::Alert) {
        let id = uuid::Uuid::now_v7().to_string();
        let users: Vec<String> = a.users.iter().map(|u| user_text(*u)).collect();
        let (action, kind) = match a.action {
            sv::Action::Notify => ("notify", None),
            sv::Action::StepUp => ("step_up", Some("step_up")),
            sv::Action::FreezeWithdrawals => ("freeze_withdrawals", Some("freeze_withdrawals")),
            sv::Action::HaltTrading => ("halt_trading", None),
        };
        let restrictions: Vec<(String, &'static str)> = kind
            .map(|k| users.iter().map(|u| (u.clone(), k)).collect())
            .unwrap_or_default();
        // The accounts concerned: the rule's, or for a rule about users their trading
        // accounts (what `halt_trading` stops and the desk's lift restarts).
        let mut accounts: Vec<u64> = a.accounts.iter().map(|x| x.0).collect();
        if accounts.is_empty() {
            for (u, text) in a.users.iter().zip(&users) {
                match self.mapper.accounts_of.get(u) {
                    Some(&acct) => accounts.push(acct),
                    None => {
                        if let Ok(id) = self.store.trading_account_id(text).await
                            && let Ok(id) = u64::try_from(id)
                        {
                            accounts.push(id);
                        }
                    }
                }
            }
        }
        let record = RiskAlertRecord {
            id: id.clone(),
            created_at_us: i64::try_from(a.ts_ns / 1_000).unwrap_or(i64::MAX),
            rule: a.rule.as_str().to_owned(),
            score: i64::from(a.score),
            action: action.to_owned(),
            subjects: serde_json::json!({ "users": users, "accounts": accounts }).to_string(),
            evidence: serde_json::to_string(&a.evidence).unwrap_or_else(|_| "[]".into()),
            status: "open".into(),
            resolved_at_us: None,
            resolved_by: None,
            resolution: None,
            action_state: match a.action {
                sv::Action::Notify => "none".into(),
                sv::Action::HaltTrading => "pending".into(),
                _ => "applied".into(),
            },
            action_lifted_at_us: None,
            action_lifted_by: None,
        };
        if let Err(e) = self
            .store
            .insert_risk_alert(&record, &users, &restrictions)
            .await
        {
            tracing::error!(error = %e, rule = a.rule.as_str(), "risk alert could not be stored");
            return;
        }
        tracing::warn!(alert_id = %id, rule = a.rule.as_str(), score = a.score, action, users = ?users, "risk alert");
        if a.action == sv::Action::HaltTrading {
            let state = if halt(&self.engine, &accounts, true).await {
                "applied"
            } else {
                "failed"
            };
            if let Err(e) = self.store.set_risk_alert_action_state(&id, state).await {
                tracing::error!(error = %e, alert_id = %id, "risk alert action state not stored");
            }
        }
    }
}

/// Turns the accounts' kill switches on or off as an operator; true if the core took
/// every command (a switch already in that state counts as done).
pub async fn halt(engine: &Engine, accounts: &[u64], active: bool) -> bool {
    let mut all = !accounts.is_empty();
    for &account in accounts {
        let cmd = Command::SetAccountKillSwitch {
            account: core::AccountId(account),
            active,
            issued_by: Issuer::Admin,
            ts: bourse_api::trading::now_ts(),
        };
        match engine.submit(cmd, Meta::default()).await {
            Ok(o) => match o.rejection() {
                None | Some(core::RejectReason::KillSwitchUnchanged) => {}
                Some(r) => {
                    tracing::error!(account, reason = r.code(), "kill switch refused");
                    all = false;
                }
            },
            Err(e) => {
                tracing::error!(account, error = %e, "kill switch not submitted");
                all = false;
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_micro_units_without_floats() {
        assert_eq!(micros("1500.25"), 1_500_250_000);
        assert_eq!(micros("7"), 7_000_000);
        assert_eq!(micros("0.1234567"), 123_456);
        assert_eq!(micros("nonsense"), 0);
    }

    #[test]
    fn addresses_map_to_the_first_range_that_holds_them() {
        let de = sv::Country::new("DE").unwrap();
        let ae = sv::Country::new("AE").unwrap();
        let ranges: Countries = vec![
            ("203.0.113.0".parse().unwrap(), 24, ae),
            ("203.0.0.0".parse().unwrap(), 16, de),
            ("2001:db8::".parse().unwrap(), 32, de),
        ];
        assert_eq!(
            country_of(&ranges, "203.0.113.9".parse().unwrap()),
            Some(ae)
        );
        assert_eq!(country_of(&ranges, "203.0.7.1".parse().unwrap()), Some(de));
        assert_eq!(
            country_of(&ranges, "2001:db8::1".parse().unwrap()),
            Some(de)
        );
        assert_eq!(country_of(&ranges, "198.51.100.1".parse().unwrap()), None);
        assert_eq!(
            country_of(&ranges, "::ffff:203.0.113.9".parse().unwrap()),
            None
        );
    }

    #[test]
    fn user_ids_round_trip() {
        let id = uuid::Uuid::now_v7().to_string();
        assert_eq!(user_text(user_id(&id).unwrap()), id);
    }
}
