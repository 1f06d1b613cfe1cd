//! Test and benchmark support: a seeded RNG, observation builders and the benign stream
//! generator. Shared by the integration tests and `benches/detect.rs` (by `#[path]`).
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use bourse_surveillance::*;

pub const SEC: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;
pub const MIN: u64 = 60 * SEC;
pub const HOUR: u64 = 3600 * SEC;
pub const DAY: u64 = 24 * HOUR;
/// 2023-11-14T22:13:00Z: every stream starts on a minute boundary, so scripted minutes
/// line up with the detector's epoch-aligned one-minute API windows.
pub const T0: u64 = 1_699_999_980 * SEC;

/// SplitMix64: small, fast, seeded, good enough for workloads.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// Observation builders for scripted scenarios.
pub fn linked(account: u64, owner: u128) -> Observation<'static> {
    Observation::AccountLinked {
        account: AccountId(account),
        owner: UserId(owner),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn place(
    ts_ns: u64,
    account: u64,
    order_id: u64,
    side: Side,
    price_ticks: i64,
    qty_lots: u64,
    best_bid: i64,
    best_ask: i64,
) -> Observation<'static> {
    Observation::OrderPlaced {
        ts_ns,
        account: AccountId(account),
        order_id: OrderId(order_id),
        instrument: InstrumentId(1),
        side,
        price_ticks,
        qty_lots,
        best_bid: Some(best_bid),
        best_ask: Some(best_ask),
    }
}

pub fn cancel(ts_ns: u64, account: u64, order_id: u64) -> Observation<'static> {
    Observation::OrderCanceled {
        ts_ns,
        account: AccountId(account),
        order_id: OrderId(order_id),
        instrument: InstrumentId(1),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn trade(
    ts_ns: u64,
    price_ticks: i64,
    qty_lots: u64,
    maker: u64,
    taker: u64,
    aggressor: Side,
    maker_order: u64,
    taker_order: u64,
) -> Observation<'static> {
    Observation::Trade {
        ts_ns,
        instrument: InstrumentId(1),
        price_ticks,
        qty_lots,
        maker_account: AccountId(maker),
        taker_account: AccountId(taker),
        aggressor_side: aggressor,
        maker_order_id: OrderId(maker_order),
        taker_order_id: OrderId(taker_order),
    }
}

pub fn request(
    ts_ns: u64,
    user: u128,
    ip: IpAddr,
    device: Option<u64>,
    client: Option<u64>,
    route: &'static str,
) -> Observation<'static> {
    Observation::Request {
        ts_ns,
        user: UserId(user),
        account: None,
        oauth_client: client.map(ClientId),
        ip,
        device: device.map(DeviceId),
        route,
        status: 200,
    }
}

pub fn login(
    ts_ns: u64,
    user: u128,
    ip: IpAddr,
    device: Option<u64>,
    country: &str,
    success: bool,
) -> Observation<'static> {
    Observation::Login {
        ts_ns,
        user: UserId(user),
        ip,
        device: device.map(DeviceId),
        country: Country::new(country),
        success,
    }
}

/// Feeds `stream` and returns every alert.
pub fn run(s: &mut Surveillance, stream: &[Observation<'_>]) -> Vec<Alert> {
    let mut out = Vec::new();
    for o in stream {
        s.observe_into(o, &mut out);
    }
    out
}

pub const ROUTES: [&str; 16] = [
    "/v1/orders",
    "/v1/orders/{id}",
    "/v1/account",
    "/v1/positions",
    "/v1/fills",
    "/v1/markets/{symbol}/book",
    "/v1/markets/{symbol}/trades",
    "/v1/markets",
    "/v1/account/balances",
    "/v1/account/activity",
    "/v1/account/sessions",
    "/v1/wallet/withdrawals",
    "/v1/wallet/deposits",
    "/v1/wallet/addresses",
    "/v1/account/api-keys",
    "/v1/account/security",
];

/// Route weights of a typical user: trading and market data dominate; account,
/// wallet and security pages are occasional (some below 1 % of a user's traffic).
const ROUTE_WEIGHTS: [u32; 16] = [220, 90, 60, 80, 60, 200, 100, 40, 40, 15, 6, 5, 5, 4, 3, 3];

struct GenUser {
    id: u128,
    ip_hi: [u8; 2],
    /// The low half of the current home address: renewed now and then (DHCP).
    ip_lo: [u8; 2],
    devices: Vec<Option<u64>>,
    country: &'static str,
    client: Option<u64>,
    weight: u32,
    /// No withdrawal before this time (set by a recent credential change).
    no_withdrawal_until: u64,
}

struct GenAccount {
    id: u64,
    open: Vec<(u64, Side, i64, u64, usize)>,
}

/// A benign workload: `ops` observations after a day-0 history (first logins, account
/// links, old credential changes), in non-decreasing time.
///
/// Several hundred users and accounts trade four instruments with each other at prices
/// near a mid that random-walks; six market makers quote and cancel heavily; humans
/// browse in bursts with a stable route mix; three API bots poll at fixed intervals from
/// the start; logins come from each user's home /16 and known devices; a few users
/// share popular third-party OAuth clients and a few households share an IP;
/// withdrawals happen long after credential changes.
pub fn benign_stream(seed: u64, ops: usize) -> Vec<Observation<'static>> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Observation<'static>> = Vec::with_capacity(ops + 4096);
    let countries = ["DE", "FR", "GB", "US", "JP", "SG", "BR", "ES"];
    let popular_clients = [0xC11E_0001, 0xC11E_0002, 0xC11E_0003];
    let n_users = 600usize;
    let mut users: Vec<GenUser> = (0..n_users)
        .map(|i| {
            // One fingerprinted device each (browser or app); some logins come from a
            // client that sends no fingerprint (`None`: a CLI, an old app).
            let devices = if rng.chance(0.3) {
                vec![Some(rng.next_u64()), None]
            } else {
                vec![Some(rng.next_u64())]
            };
            GenUser {
                id: 0x1000_0000 + i as u128,
                ip_hi: [rng.range(20, 220) as u8, rng.range(0, 255) as u8],
                ip_lo: [rng.below(256) as u8, rng.range(1, 254) as u8],
                devices,
                country: countries[rng.below(countries.len() as u64) as usize],
                client: rng.chance(0.08).then(|| *rng.pick(&popular_clients)),
                // Zipf-like activity: a few heavy users, a long tail.
                weight: (1000.0 / (1.0 + i as f64).powf(0.8)) as u32 + 1,
                no_withdrawal_until: 0,
            }
        })
        .collect();
    // Households: a few pairs share the home IP range and address.
    for h in 0..6 {
        let (a, b) = (50 + 2 * h, 51 + 2 * h);
        users[b].ip_hi = users[a].ip_hi;
    }
    let cumulative: Vec<u64> = users
        .iter()
        .scan(0u64, |acc, u| {
            *acc += u64::from(u.weight);
            Some(*acc)
        })
        .collect();
    let total_weight = *cumulative.last().unwrap_or(&1);
    let pick_user = |rng: &mut Rng| -> usize {
        let x = rng.below(total_weight);
        cumulative.partition_point(|&c| c <= x)
    };
    // The user's IP: the current home address (households share theirs).
    let user_ip = |u: &GenUser, i: usize| -> IpAddr {
        if (50..62).contains(&i) {
            v4(u.ip_hi[0], u.ip_hi[1], 7, 7)
        } else {
            v4(u.ip_hi[0], u.ip_hi[1], u.ip_lo[0], u.ip_lo[1])
        }
    };

    // Accounts: one per user, 10 % have a second; 6 market makers.
    let mut accounts: Vec<GenAccount> = Vec::new();
    for u in &users {
        let n = if rng.chance(0.1) { 2 } else { 1 };
        for _ in 0..n {
            let id = 10_000 + accounts.len() as u64;
            accounts.push(GenAccount {
                id,
                open: Vec::new(),
            });
            out.push(Observation::AccountLinked {
                account: AccountId(id),
                owner: UserId(u.id),
            });
        }
    }
    let mm: Vec<usize> = (0..6).collect();

    // Day 0 history: everyone's first logins (every device), some credential changes.
    let mut ts = T0;
    for (i, u) in users.iter().enumerate() {
        for &d in &u.devices {
            ts += rng.range(1, 2000) * MS;
            let ip = user_ip(u, i);
            out.push(Observation::Login {
                ts_ns: ts,
                user: UserId(u.id),
                ip,
                device: d.map(DeviceId),
                country: Country::new(u.country),
                success: true,
            });
        }
        if rng.chance(0.1) {
            ts += rng.range(1, 2000) * MS;
            out.push(Observation::CredentialChanged {
                ts_ns: ts,
                user: UserId(u.id),
                kind: if rng.chance(0.5) {
                    CredentialKind::Password
                } else {
                    CredentialKind::TwoFactor
                },
            });
        }
    }

    // The session: two days later.
    ts = T0 + 2 * DAY;
    let n_instruments = 4usize;
    let mut mids: Vec<i64> = vec![20_000, 150_000, 3_000, 60_000];
    let spread = 2i64;
    let mut next_order: u64 = 1;
    let mut bots: Vec<(usize, u64, u64)> = (0..3)
        .map(|b| (100 + b, ts + rng.range(0, 2000) * MS, 2 * SEC))
        .collect();
    let start_len = out.len();

    while out.len() - start_len < ops {
        ts += (rng.exp(40.0) * MS as f64) as u64 + 1;
        // Bots poll on their fixed timers.
        for bot in &mut bots {
            while bot.1 <= ts && out.len() - start_len < ops {
                let u = &users[bot.0];
                out.push(Observation::Request {
                    ts_ns: bot.1,
                    user: UserId(u.id),
                    account: None,
                    oauth_client: None,
                    ip: v4(u.ip_hi[0], u.ip_hi[1], 1, 1),
                    device: None,
                    route: if bot.1 / bot.2 % 2 == 0 {
                        ROUTES[5]
                    } else {
                        ROUTES[2]
                    },
                    status: 200,
                });
                bot.1 += bot.2 + rng.range(0, 2) * MS;
            }
        }
        if out.len() - start_len >= ops {
            break;
        }
        let inst = rng.below(n_instruments as u64) as usize;
        if rng.chance(0.3) {
            mids[inst] += if rng.chance(0.5) { 1 } else { -1 };
        }
        let mid = mids[inst];
        let (bid, ask) = (mid - spread / 2, mid + spread / 2);
        let roll = rng.unit();
        if roll < 0.25 {
            // Place a passive order.
            let a = if rng.chance(0.5) {
                *rng.pick(&mm)
            } else {
                rng.below(accounts.len() as u64) as usize
            };
            let side = if rng.chance(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let offset = rng.range(0, 8) as i64;
            let price = match side {
                Side::Buy => bid - offset,
                Side::Sell => ask + offset,
            };
            let qty = if a < 6 {
                rng.range(1, 10)
            } else if rng.chance(0.01) {
                rng.range(25, 40)
            } else {
                rng.range(1, 20)
            };
            let id = next_order;
            next_order += 1;
            let acc = &mut accounts[a];
            if acc.open.len() >= 64 {
                acc.open.remove(0);
            }
            acc.open.push((id, side, price, qty, inst));
            out.push(Observation::OrderPlaced {
                ts_ns: ts,
                account: AccountId(acc.id),
                order_id: OrderId(id),
                instrument: InstrumentId(inst as u32),
                side,
                price_ticks: price,
                qty_lots: qty,
                best_bid: Some(bid),
                best_ask: Some(ask),
            });
        } else if roll < 0.42 {
            // Cancel someone's open order (market makers most often).
            let a = if rng.chance(0.7) {
                *rng.pick(&mm)
            } else {
                rng.below(accounts.len() as u64) as usize
            };
            let acc = &mut accounts[a];
            if acc.open.is_empty() {
                continue;
            }
            // Market makers mostly pull their latest quote (requoting); others cancel
            // any of their orders.
            let k = if a < 6 && rng.chance(0.6) {
                acc.open.len() - 1
            } else {
                rng.below(acc.open.len() as u64) as usize
            };
            let (id, _, _, _, inst) = acc.open.remove(k);
            out.push(Observation::OrderCanceled {
                ts_ns: ts,
                account: AccountId(acc.id),
                order_id: OrderId(id),
                instrument: InstrumentId(inst as u32),
            });
        } else if roll < 0.60 {
            // A taker hits a resting order at the touch.
            let taker = 6 + rng.below(accounts.len() as u64 - 6) as usize;
            let maker = if rng.chance(0.6) {
                *rng.pick(&mm)
            } else {
                rng.below(accounts.len() as u64) as usize
            };
            if maker == taker {
                continue;
            }
            let aggressor = if rng.chance(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let price = match aggressor {
                Side::Buy => ask,
                Side::Sell => bid,
            };
            let maker_order = match accounts[maker].open.pop() {
                Some((id, ..)) => id,
                None => {
                    next_order += 1;
                    next_order - 1
                }
            };
            let taker_order = next_order;
            next_order += 1;
            out.push(Observation::Trade {
                ts_ns: ts,
                instrument: InstrumentId(inst as u32),
                price_ticks: price,
                qty_lots: rng.range(1, 10),
                maker_account: AccountId(accounts[maker].id),
                taker_account: AccountId(accounts[taker].id),
                aggressor_side: aggressor,
                maker_order_id: OrderId(maker_order),
                taker_order_id: OrderId(taker_order),
            });
        } else if roll < 0.985 {
            // A human's page load: a burst of one to four requests.
            let i = pick_user(&mut rng);
            let n = rng.range(1, 4);
            let ip = user_ip(&users[i], i);
            let device = users[i].devices[0];
            let device = device.map(DeviceId);
            let mut t = ts;
            for _ in 0..n {
                let mut x = rng.below(ROUTE_WEIGHTS.iter().map(|&w| u64::from(w)).sum());
                let mut r = 0;
                while x >= u64::from(ROUTE_WEIGHTS[r]) {
                    x -= u64::from(ROUTE_WEIGHTS[r]);
                    r += 1;
                }
                out.push(Observation::Request {
                    ts_ns: t,
                    user: UserId(users[i].id),
                    account: None,
                    oauth_client: users[i].client.map(ClientId),
                    ip,
                    device,
                    route: ROUTES[r],
                    status: 200,
                });
                t += rng.range(1, 80) * MS;
            }
            ts = t;
        } else if roll < 0.993 {
            // A login from home, sometimes a mistyped password or code first.
            let i = pick_user(&mut rng);
            if rng.chance(0.05) {
                // The ISP handed out a new address in the same range.
                users[i].ip_lo = [rng.below(256) as u8, rng.range(1, 254) as u8];
            }
            let u = &users[i];
            let ip = user_ip(u, i);
            let device = rng.pick(&u.devices).map(DeviceId);
            if rng.chance(0.1) {
                out.push(Observation::Login {
                    ts_ns: ts,
                    user: UserId(u.id),
                    ip,
                    device,
                    country: Country::new(u.country),
                    success: false,
                });
                ts += rng.range(2, 10) * SEC;
            }
            if rng.chance(0.1) {
                out.push(Observation::SecondFactorFailed {
                    ts_ns: ts,
                    user: UserId(u.id),
                });
                ts += rng.range(5, 20) * SEC;
            }
            out.push(Observation::Login {
                ts_ns: ts,
                user: UserId(u.id),
                ip,
                device,
                country: Country::new(u.country),
                success: true,
            });
        } else if roll < 0.9995 {
            // A withdrawal, never within a day of the user's last credential change.
            let i = pick_user(&mut rng);
            if users[i].no_withdrawal_until > ts {
                continue;
            }
            out.push(Observation::WithdrawalRequested {
                ts_ns: ts,
                user: UserId(users[i].id),
                amount: rng.range(1_000, 5_000_000),
            });
        } else {
            // A credential change (rare); that user withdraws nothing for a day.
            let i = pick_user(&mut rng);
            users[i].no_withdrawal_until = ts + DAY + HOUR;
            out.push(Observation::CredentialChanged {
                ts_ns: ts,
                user: UserId(users[i].id),
                kind: CredentialKind::Password,
            });
        }
    }
    // Bots' timers and humans' bursts overlap other events: order the session by time
    // (stable, so same-time events keep their generated order).
    out[start_len..].sort_by_key(|o| o.ts_ns());
    out
}
