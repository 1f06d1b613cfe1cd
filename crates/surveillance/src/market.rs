//! Market rules: `wash_trading`, `spoofing`, `layering`, `order_to_trade_ratio`,
//! `momentum_ignition`.

use std::collections::VecDeque;

use crate::types::{
    AccountId, Alert, Evidence, InstrumentId, LinkKind, OrderId, Rule, Side, UserId,
};
use crate::{Surveillance, account_subject, millis, ratio_score, secs};

/// Buckets in the order-to-trade window.
const OTR_BUCKETS: usize = 20;
/// Quick cancels kept per account for spoofing/layering (oldest dropped first).
const MAX_CANCELS: usize = 64;
/// Linked trades kept per pair.
const MAX_PAIR_TRADES: usize = 256;
/// Orders and trades quoted in one alert's evidence.
const MAX_EVIDENCE_ITEMS: usize = 10;

/// A trade as stored for evidence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TradeRec {
    pub ts: u64,
    pub instrument: InstrumentId,
    pub price: i64,
    pub qty: u64,
    pub maker_account: AccountId,
    pub taker_account: AccountId,
    pub maker_order: OrderId,
    pub taker_order: OrderId,
    pub aggressor: Side,
}

impl TradeRec {
    fn evidence(&self) -> Evidence {
        Evidence::Trade {
            ts_ns: self.ts,
            instrument: self.instrument,
            price_ticks: self.price,
            qty_lots: self.qty,
            maker_account: self.maker_account,
            taker_account: self.taker_account,
            maker_order_id: self.maker_order,
            taker_order_id: self.taker_order,
            aggressor_side: self.aggressor,
        }
    }
}

/// Orders, cancels and trades of one account over a window of [`OTR_BUCKETS`] buckets.
#[derive(Clone, Debug)]
struct OtrWindow {
    head: u64,
    cells: [[u32; 3]; OTR_BUCKETS],
    sums: [u32; 3],
}

const ORDERS: usize = 0;
const CANCELS: usize = 1;
const TRADES: usize = 2;

impl OtrWindow {
    fn new() -> Self {
        Self {
            head: 0,
            cells: [[0; 3]; OTR_BUCKETS],
            sums: [0; 3],
        }
    }

    fn add(&mut self, bucket: u64, what: usize) {
        if bucket > self.head {
            let steps = (bucket - self.head).min(OTR_BUCKETS as u64);
            for i in 1..=steps {
                let cell = &mut self.cells[((self.head + i) % OTR_BUCKETS as u64) as usize];
                for (sum, c) in self.sums.iter_mut().zip(cell.iter_mut()) {
                    *sum -= *c;
                    *c = 0;
                }
            }
            self.head = bucket;
        }
        let cell = &mut self.cells[(self.head % OTR_BUCKETS as u64) as usize][what];
        *cell = cell.saturating_add(1);
        // Sums stay equal to the cells' total: a saturated cell stops both.
        if *cell != u32::MAX {
            self.sums[what] += 1;
        }
    }
}

/// A cancelled order that qualified for spoofing or layering.
#[derive(Clone, Copy, Debug)]
struct CancelRec {
    order_id: OrderId,
    instrument: InstrumentId,
    side: Side,
    price: i64,
    qty: u64,
    ticks_away: i64,
    placed: u64,
    canceled: u64,
    size_multiple: Option<f64>,
    spoof: bool,
    layer: bool,
}

impl CancelRec {
    fn evidence(&self) -> Evidence {
        Evidence::Order {
            order_id: self.order_id,
            instrument: self.instrument,
            side: self.side,
            price_ticks: self.price,
            qty_lots: self.qty,
            ticks_from_touch: self.ticks_away,
            placed_ts_ns: self.placed,
            canceled_ts_ns: Some(self.canceled),
        }
    }
}

/// Per-account market state.
#[derive(Clone, Debug)]
pub(crate) struct AccountState {
    pub last_ts: u64,
    otr: OtrWindow,
    /// The account's latest trade on each side (by [`Side::index`]).
    last_trade: [Option<TradeRec>; 2],
    cancels: Vec<CancelRec>,
    /// An ignited momentum burst may still be followed until then.
    momentum_until: u64,
}

impl AccountState {
    fn new(now: u64) -> Self {
        Self {
            last_ts: now,
            otr: OtrWindow::new(),
            last_trade: [None, None],
            cancels: Vec::new(),
            momentum_until: 0,
        }
    }
}

/// Per-instrument learned values (never evicted: the catalog is small).
#[derive(Clone, Debug, Default)]
pub(crate) struct InstrumentState {
    orders: u64,
    mean_qty: f64,
    last_price: Option<i64>,
}

/// An open order that is large and away from the touch: it becomes evidence if it is
/// cancelled quickly.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    account: AccountId,
    instrument: InstrumentId,
    side: Side,
    price: i64,
    qty: u64,
    ticks_away: i64,
    placed: u64,
    size_multiple: Option<f64>,
    spoof: bool,
    layer: bool,
}

/// Linked trades between one pair of accounts within the wash window.
#[derive(Clone, Debug, Default)]
pub(crate) struct PairState {
    pub last_ts: u64,
    trades: VecDeque<TradeRec>,
    volume: u64,
}

#[derive(Clone, Copy, Debug)]
struct Burst {
    side: Side,
    start_ts: u64,
    ref_price: i64,
    last_price: i64,
    orders: u32,
    last_taker_order: OrderId,
    first: TradeRec,
    last: TradeRec,
}

impl Burst {
    /// Signed move in the burst's direction, in basis points of the reference price.
    fn move_bps(&self) -> i64 {
        if self.ref_price <= 0 {
            return 0;
        }
        let diff = i128::from(self.last_price) - i128::from(self.ref_price);
        let signed = match self.side {
            Side::Buy => diff,
            Side::Sell => -diff,
        };
        i64::try_from(signed * 10_000 / i128::from(self.ref_price)).unwrap_or(i64::MAX)
    }
}

/// Momentum tracking for one (account, instrument).
#[derive(Clone, Debug)]
pub(crate) struct MomentumState {
    pub last_ts: u64,
    burst: Option<Burst>,
    /// The latest burst that met the thresholds, until its follow window ends.
    ignited: Option<Burst>,
}

/// Evaluates an account's quick cancels on `side_x` against an opposite-side trade.
struct SpoofHit {
    rule: Rule,
    orders: Vec<CancelRec>,
    score: u8,
    metric: (&'static str, f64),
}

/// What links two accounts, with the shared value when it is not ownership.
#[derive(Clone, Copy, Debug)]
enum Link {
    SameAccount,
    SameOwner,
    Shared(LinkKind, u128),
}

impl Link {
    fn evidence(self) -> Evidence {
        match self {
            Self::SameAccount => Evidence::Link {
                link: LinkKind::SameAccount,
                value: None,
            },
            Self::SameOwner => Evidence::Link {
                link: LinkKind::SameOwner,
                value: None,
            },
            Self::Shared(kind, key) => Evidence::Link {
                link: kind,
                value: Some(match kind {
                    LinkKind::SameIp => crate::identity::ip_from_key(key).to_string(),
                    _ => key.to_string(),
                }),
            },
        }
    }
}

impl Surveillance {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_order_placed(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        instrument: InstrumentId,
        side: Side,
        price: i64,
        qty: u64,
        best_bid: Option<i64>,
        best_ask: Option<i64>,
        out: &mut Vec<Alert>,
    ) {
        let now = self.now;
        self.prune_candidates();

        // Typical size before this order counts toward it.
        let size_cfg = &self.cfg.order_size;
        let inst = self.instruments.entry(instrument).or_default();
        let typical =
            (inst.orders >= size_cfg.warmup_orders && inst.mean_qty > 0.0).then_some(inst.mean_qty);
        #[allow(clippy::cast_precision_loss)]
        let q = qty as f64;
        inst.mean_qty = if inst.orders == 0 {
            q
        } else {
            inst.mean_qty + size_cfg.ewma_alpha * (q - inst.mean_qty)
        };
        inst.orders += 1;

        let touch = match side {
            Side::Buy => best_bid,
            Side::Sell => best_ask,
        };
        if let Some(touch) = touch {
            let away = match side {
                Side::Buy => touch.saturating_sub(price),
                Side::Sell => price.saturating_sub(touch),
            };
            let size_multiple = typical.map(|t| q / t);
            let notional = price.unsigned_abs().saturating_mul(qty);
            let sp = &self.cfg.spoofing;
            let ly = &self.cfg.layering;
            let large = |mult: f64, min_notional: Option<u64>| {
                size_multiple.is_some_and(|m| m >= mult)
                    || min_notional.is_some_and(|n| notional >= n)
            };
            let spoof = sp.enabled
                && away >= sp.min_ticks_from_touch
                && large(sp.min_size_multiple, sp.min_notional);
            let layer = ly.enabled
                && away >= ly.min_ticks_from_touch
                && large(ly.min_size_multiple, ly.min_notional);
            if spoof || layer {
                self.candidates.insert(
                    order_id,
                    Candidate {
                        account,
                        instrument,
                        side,
                        price,
                        qty,
                        ticks_away: away,
                        placed: now,
                        size_multiple,
                        spoof,
                        layer,
                    },
                );
                self.candidate_queue.push_back((now, order_id));
            }
        }

        self.count_otr(account, ORDERS, out);
    }

    pub(crate) fn on_order_canceled(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        out: &mut Vec<Alert>,
    ) {
        let now = self.now;
        self.count_otr(account, CANCELS, out);
        let Some(c) = self.candidates.remove(&order_id) else {
            return;
        };
        if c.account != account {
            return;
        }
        let life = now - c.placed;
        let spoof = c.spoof && life <= millis(self.cfg.spoofing.max_lifetime_ms);
        let layer = c.layer && life <= millis(self.cfg.layering.max_lifetime_ms);
        if !(spoof || layer) {
            return;
        }
        let keep_ns = millis(
            self.cfg
                .spoofing
                .opposite_trade_window_ms
                .max(self.cfg.layering.opposite_trade_window_ms),
        );
        let Some(acct) = self.accounts.get_mut(&account) else {
            return;
        };
        acct.cancels
            .retain(|r| r.canceled.saturating_add(keep_ns) >= now);
        if acct.cancels.len() >= MAX_CANCELS {
            acct.cancels.remove(0);
        }
        acct.cancels.push(CancelRec {
            order_id,
            instrument: c.instrument,
            side: c.side,
            price: c.price,
            qty: c.qty,
            ticks_away: c.ticks_away,
            placed: c.placed,
            canceled: now,
            size_multiple: c.size_multiple,
            spoof,
            layer,
        });
        if let Some(trade) = acct.last_trade[c.side.opposite().index()]
            && trade.ts >= c.placed
            && trade.instrument == c.instrument
        {
            self.check_spoofing(account, c.side, trade, out);
        }
    }

    pub(crate) fn on_trade(&mut self, t: TradeRec, out: &mut Vec<Alert>) {
        let now = self.now;
        let sides = [
            (t.taker_account, t.aggressor, true),
            (t.maker_account, t.aggressor.opposite(), false),
        ];
        let n = if t.maker_account == t.taker_account {
            1
        } else {
            2
        };
        for &(account, side, taker) in &sides[..n] {
            self.count_otr(account, TRADES, out);
            let Some(acct) = self.accounts.get_mut(&account) else {
                continue;
            };
            acct.last_trade[side.index()] = Some(t);
            let has_cancels = !acct.cancels.is_empty();
            let following = acct.momentum_until >= now;
            if has_cancels {
                self.check_spoofing(account, side.opposite(), t, out);
            }
            if self.cfg.momentum_ignition.enabled && (taker || following) {
                self.track_momentum(account, side, taker, t, out);
            }
        }
        if self.cfg.wash_trading.enabled {
            self.check_wash(t, out);
        }
        self.instruments.entry(t.instrument).or_default().last_price = Some(t.price);
    }

    fn count_otr(&mut self, account: AccountId, what: usize, out: &mut Vec<Alert>) {
        let now = self.now;
        let cfg = &self.cfg.order_to_trade_ratio;
        let acct = self
            .accounts
            .entry(account)
            .or_insert_with(|| AccountState::new(now));
        acct.last_ts = now;
        if !cfg.enabled {
            return;
        }
        let width = (secs(cfg.window_secs) / OTR_BUCKETS as u64).max(1);
        acct.otr.add(now / width, what);
        if what == TRADES {
            return;
        }
        let [orders, cancels, trades] = acct.otr.sums;
        if orders < cfg.min_orders {
            return;
        }
        let ratio = f64::from(orders + cancels) / f64::from(trades.max(1));
        if ratio <= cfg.max_ratio {
            return;
        }
        let (action, max_ratio, min_orders, window, cooldown) = (
            cfg.action,
            cfg.max_ratio,
            cfg.min_orders,
            cfg.window_secs,
            cfg.cooldown_secs,
        );
        if !self.may_fire(Rule::OrderToTradeRatio, account_subject(account), cooldown) {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let metric = |name, value: u64| Evidence::Metric {
            name,
            value: value as f64,
        };
        out.push(Alert {
            rule: Rule::OrderToTradeRatio,
            ts_ns: now,
            action,
            score: ratio_score(ratio, max_ratio),
            accounts: vec![account],
            users: self.owner_users(&[account]),
            evidence: vec![
                metric("orders", u64::from(orders)),
                metric("cancels", u64::from(cancels)),
                metric("trades", u64::from(trades)),
                Evidence::Metric {
                    name: "ratio",
                    value: ratio,
                },
                Evidence::Metric {
                    name: "max_ratio",
                    value: max_ratio,
                },
                metric("min_orders", u64::from(min_orders)),
                metric("window_secs", window),
            ],
        });
    }

    fn prune_candidates(&mut self) {
        let keep = millis(
            self.cfg
                .spoofing
                .max_lifetime_ms
                .max(self.cfg.layering.max_lifetime_ms),
        );
        let horizon = self.now.saturating_sub(keep);
        while let Some(&(ts, id)) = self.candidate_queue.front() {
            if ts >= horizon {
                break;
            }
            self.candidate_queue.pop_front();
            if self.candidates.get(&id).is_some_and(|c| c.placed == ts) {
                self.candidates.remove(&id);
            }
        }
    }

    /// `account` traded `trade` on the side opposite `side_x`: do its quick cancels on
    /// `side_x` make spoofing or layering?
    fn check_spoofing(
        &mut self,
        account: AccountId,
        side_x: Side,
        trade: TradeRec,
        out: &mut Vec<Alert>,
    ) {
        let Some(acct) = self.accounts.get(&account) else {
            return;
        };
        let t = trade.ts;
        let sp = &self.cfg.spoofing;
        let ly = &self.cfg.layering;
        let spoof_fire = (sp.action, sp.cooldown_secs);
        let layer_fire = (ly.action, ly.cooldown_secs);
        let relevant = |r: &&CancelRec, window_ms: u64| {
            r.side == side_x
                && r.instrument == trade.instrument
                && r.placed <= t
                && t <= r.canceled.saturating_add(millis(window_ms))
        };
        let mut hits: Vec<SpoofHit> = Vec::new();
        if sp.enabled {
            let best = acct
                .cancels
                .iter()
                .filter(|r| r.spoof && relevant(r, sp.opposite_trade_window_ms))
                .max_by(|a, b| {
                    let ka = (a.size_multiple.unwrap_or(0.0), a.qty);
                    let kb = (b.size_multiple.unwrap_or(0.0), b.qty);
                    ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
                });
            if let Some(best) = best {
                let (score, metric) = match best.size_multiple {
                    Some(m) => (ratio_score(m, sp.min_size_multiple), ("size_multiple", m)),
                    None => (50, ("size_multiple", 0.0)),
                };
                hits.push(SpoofHit {
                    rule: Rule::Spoofing,
                    orders: vec![*best],
                    score,
                    metric,
                });
            }
        }
        if ly.enabled {
            let orders: Vec<CancelRec> = acct
                .cancels
                .iter()
                .filter(|r| r.layer && relevant(r, ly.opposite_trade_window_ms))
                .copied()
                .collect();
            let mut levels: Vec<i64> = orders.iter().map(|r| r.price).collect();
            levels.sort_unstable();
            levels.dedup();
            let n = u32::try_from(levels.len()).unwrap_or(u32::MAX);
            if n >= ly.min_levels {
                hits.push(SpoofHit {
                    rule: Rule::Layering,
                    orders,
                    score: ratio_score(f64::from(n), f64::from(ly.min_levels)),
                    metric: ("price_levels", f64::from(n)),
                });
            }
        }
        for hit in hits {
            let (action, cooldown) = match hit.rule {
                Rule::Spoofing => spoof_fire,
                _ => layer_fire,
            };
            if !self.may_fire(hit.rule, account_subject(account), cooldown) {
                continue;
            }
            let mut evidence: Vec<Evidence> = hit
                .orders
                .iter()
                .rev()
                .take(MAX_EVIDENCE_ITEMS)
                .rev()
                .map(CancelRec::evidence)
                .collect();
            evidence.push(trade.evidence());
            evidence.push(Evidence::Metric {
                name: hit.metric.0,
                value: hit.metric.1,
            });
            out.push(Alert {
                rule: hit.rule,
                ts_ns: self.now,
                action,
                score: hit.score,
                accounts: vec![account],
                users: self.owner_users(&[account]),
                evidence,
            });
        }
    }

    fn track_momentum(
        &mut self,
        account: AccountId,
        side: Side,
        taker: bool,
        t: TradeRec,
        out: &mut Vec<Alert>,
    ) {
        let now = self.now;
        let cfg = &self.cfg.momentum_ignition;
        let burst_ns = millis(cfg.burst_window_ms);
        let follow_ns = millis(cfg.follow_window_ms);
        let (min_orders, min_bps) = (cfg.min_aggressive_orders, i64::from(cfg.min_move_bps));
        let ref_price = self
            .instruments
            .get(&t.instrument)
            .and_then(|i| i.last_price)
            .unwrap_or(t.price);
        if !taker && !self.momentum.contains_key(&(account, t.instrument)) {
            return;
        }
        let m = self
            .momentum
            .entry((account, t.instrument))
            .or_insert(MomentumState {
                last_ts: now,
                burst: None,
                ignited: None,
            });
        m.last_ts = now;

        // A trade against an ignited burst completes the pattern.
        let mut fired: Option<Burst> = None;
        if let Some(ig) = m.ignited {
            if now > ig.last.ts.saturating_add(follow_ns) {
                m.ignited = None;
            } else if ig.side == side.opposite() {
                fired = Some(ig);
                m.ignited = None;
            }
        }

        let mut until = None;
        if taker {
            let continuing = m
                .burst
                .as_ref()
                .is_some_and(|b| b.side == side && now - b.start_ts <= burst_ns);
            if continuing {
                if let Some(b) = m.burst.as_mut() {
                    if b.last_taker_order != t.taker_order {
                        b.orders += 1;
                        b.last_taker_order = t.taker_order;
                    }
                    b.last_price = t.price;
                    b.last = t;
                }
            } else {
                m.burst = Some(Burst {
                    side,
                    start_ts: now,
                    ref_price,
                    last_price: t.price,
                    orders: 1,
                    last_taker_order: t.taker_order,
                    first: t,
                    last: t,
                });
            }
            if let Some(b) = m.burst
                && b.orders >= min_orders
                && b.move_bps() >= min_bps
            {
                m.ignited = Some(b);
                until = Some(now.saturating_add(follow_ns));
            }
        }
        if let Some(until) = until
            && let Some(acct) = self.accounts.get_mut(&account)
        {
            acct.momentum_until = until;
        }

        let Some(b) = fired else {
            return;
        };
        let (action, cooldown) = (
            self.cfg.momentum_ignition.action,
            self.cfg.momentum_ignition.cooldown_secs,
        );
        if !self.may_fire(Rule::MomentumIgnition, account_subject(account), cooldown) {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let bps = b.move_bps() as f64;
        out.push(Alert {
            rule: Rule::MomentumIgnition,
            ts_ns: now,
            action,
            score: ratio_score(bps, f64::from(self.cfg.momentum_ignition.min_move_bps)),
            accounts: vec![account],
            users: self.owner_users(&[account]),
            evidence: vec![
                b.first.evidence(),
                b.last.evidence(),
                t.evidence(),
                Evidence::Metric {
                    name: "aggressive_orders",
                    value: f64::from(b.orders),
                },
                Evidence::Metric {
                    name: "move_bps",
                    value: bps,
                },
                #[allow(clippy::cast_precision_loss)]
                Evidence::Metric {
                    name: "reference_price_ticks",
                    value: b.ref_price as f64,
                },
            ],
        });
    }

    fn link_between(&self, a: AccountId, b: AccountId) -> Option<Link> {
        if a == b {
            return Some(Link::SameAccount);
        }
        let ua = *self.owners.get(&a)?;
        let ub = *self.owners.get(&b)?;
        if ua == ub {
            return Some(Link::SameOwner);
        }
        let sa = self.users.get(&ua)?;
        let sb = self.users.get(&ub)?;
        let cfg = &self.cfg.wash_trading;
        let horizon = self.now.saturating_sub(secs(cfg.link_window_secs));
        let kinds = [
            (cfg.link_by_device, LinkKind::SameDevice),
            (cfg.link_by_oauth_client, LinkKind::SameOauthClient),
            (cfg.link_by_ip, LinkKind::SameIp),
        ];
        for (on, kind) in kinds {
            if !on {
                continue;
            }
            let (xa, xb) = (sa.link_set(kind), sb.link_set(kind));
            for &(key, ta) in xa {
                if ta < horizon {
                    continue;
                }
                if xb.iter().any(|&(k, tb)| k == key && tb >= horizon)
                    && !self.crowded(kind, key, horizon)
                {
                    return Some(Link::Shared(kind, key));
                }
            }
        }
        None
    }

    fn crowded(&self, kind: LinkKind, key: u128, horizon: u64) -> bool {
        self.shared.get(&(kind, key)).is_some_and(|s| {
            s.fresh_users(horizon) > self.cfg.wash_trading.max_users_per_link as usize
        })
    }

    fn check_wash(&mut self, t: TradeRec, out: &mut Vec<Alert>) {
        let Some(link) = self.link_between(t.maker_account, t.taker_account) else {
            return;
        };
        let now = self.now;
        let cfg = &self.cfg.wash_trading;
        let horizon = now.saturating_sub(secs(cfg.window_secs));
        let key = if t.maker_account <= t.taker_account {
            (t.maker_account, t.taker_account)
        } else {
            (t.taker_account, t.maker_account)
        };
        let pair = self.pairs.entry(key).or_default();
        pair.last_ts = now;
        while let Some(front) = pair.trades.front() {
            if front.ts >= horizon && pair.trades.len() < MAX_PAIR_TRADES {
                break;
            }
            pair.volume -= front.qty;
            pair.trades.pop_front();
        }
        pair.trades.push_back(t);
        pair.volume += t.qty;
        let count = u32::try_from(pair.trades.len()).unwrap_or(u32::MAX);
        if count < cfg.min_trades || pair.volume < cfg.min_volume_lots {
            return;
        }
        let volume = pair.volume;
        let (action, min_trades, window, cooldown) = (
            cfg.action,
            cfg.min_trades,
            cfg.window_secs,
            cfg.cooldown_secs,
        );
        let subject = (u128::from(key.0.0) << 64) | u128::from(key.1.0);
        if !self.may_fire(Rule::WashTrading, subject, cooldown) {
            return;
        }
        let mut evidence = vec![link.evidence()];
        if let Some(pair) = self.pairs.get(&key) {
            evidence.extend(
                pair.trades
                    .iter()
                    .rev()
                    .take(MAX_EVIDENCE_ITEMS)
                    .rev()
                    .map(TradeRec::evidence),
            );
        }
        #[allow(clippy::cast_precision_loss)]
        evidence.extend([
            Evidence::Metric {
                name: "trades",
                value: f64::from(count),
            },
            Evidence::Metric {
                name: "volume_lots",
                value: volume as f64,
            },
            Evidence::Metric {
                name: "window_secs",
                value: window as f64,
            },
        ]);
        let mut accounts = vec![key.0, key.1];
        accounts.dedup();
        let users: Vec<UserId> = self.owner_users(&accounts);
        out.push(Alert {
            rule: Rule::WashTrading,
            ts_ns: now,
            action,
            score: ratio_score(f64::from(count), f64::from(min_trades)),
            accounts,
            users,
            evidence,
        });
    }
}
