//! One scripted stream per rule that must trigger it (with the expected rule, subjects,
//! action and evidence) and a near miss that must not. Default configuration unless a
//! test says otherwise.

mod support;

use bourse_surveillance::*;
use support::*;

const U1: u128 = 0xAAAA_0001;
const U2: u128 = 0xAAAA_0002;

fn det() -> Surveillance {
    Surveillance::new(SurveillanceConfig::default())
}

fn only(alerts: &[Alert], rule: Rule) -> &Alert {
    assert_eq!(
        alerts.len(),
        1,
        "expected exactly one alert, got {alerts:#?}"
    );
    assert_eq!(alerts[0].rule, rule, "{alerts:#?}");
    &alerts[0]
}

fn metric(alert: &Alert, name: &str) -> f64 {
    alert
        .evidence
        .iter()
        .find_map(|e| match e {
            Evidence::Metric { name: n, value } if *n == name => Some(*value),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no metric {name} in {alert:#?}"))
}

/// 300 orders of 10 lots at the touch from a background account, each cancelled: the
/// instrument's typical size becomes 10 lots. Returns the time after it.
fn warm_sizes(s: &mut Surveillance, mut ts: u64) -> u64 {
    for i in 0..300 {
        ts += 100 * MS;
        let _ = s.observe(&place(
            ts,
            900,
            1_000_000 + i,
            Side::Buy,
            19_999,
            10,
            19_999,
            20_001,
        ));
        ts += 100 * MS;
        let _ = s.observe(&cancel(ts, 900, 1_000_000 + i));
    }
    ts
}

// --- spoofing -------------------------------------------------------------------

fn spoof_script(s: &mut Surveillance, cancel_after: u64, ticks_away: i64) -> Vec<Alert> {
    let ts = warm_sizes(s, T0);
    let _ = s.observe(&linked(1, U1));
    let placed = ts + SEC;
    // 200 lots (20x typical) on the ask, `ticks_away` behind the best ask.
    let mut stream = vec![
        place(
            placed,
            1,
            7,
            Side::Sell,
            20_001 + ticks_away,
            200,
            19_999,
            20_001,
        ),
        // Meanwhile account 1 buys from account 2 at the ask.
        trade(placed + 2 * SEC, 20_001, 5, 2, 1, Side::Buy, 55, 8),
        cancel(placed + cancel_after, 1, 7),
    ];
    stream.sort_by_key(|o| o.ts_ns());
    run(s, &stream)
}

#[test]
fn spoofing_fires_on_large_quickly_cancelled_order_with_opposite_trade() {
    let mut s = det();
    let alerts = spoof_script(&mut s, 4 * SEC, 5);
    let a = only(&alerts, Rule::Spoofing);
    assert_eq!(a.accounts, vec![AccountId(1)]);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::Notify);
    assert!(a.evidence.iter().any(|e| matches!(
        e,
        Evidence::Order {
            order_id: OrderId(7),
            side: Side::Sell,
            qty_lots: 200,
            ticks_from_touch: 5,
            canceled_ts_ns: Some(_),
            ..
        }
    )));
    assert!(a.evidence.iter().any(|e| matches!(
        e,
        Evidence::Trade {
            taker_account: AccountId(1),
            aggressor_side: Side::Buy,
            ..
        }
    )));
    assert!((metric(a, "size_multiple") - 20.0).abs() < 0.5);
    assert!(a.score >= 90, "{}", a.score);
}

#[test]
fn spoofing_near_misses() {
    // Cancelled after 15 s: too slow for the 10 s default.
    assert!(spoof_script(&mut det(), 15 * SEC, 5).is_empty());
    // Two ticks from the touch: not away enough (3).
    assert!(spoof_script(&mut det(), 4 * SEC, 2).is_empty());
    // Same order and cancel, but no opposite trade.
    let mut s = det();
    let ts = warm_sizes(&mut s, T0);
    let stream = [
        place(ts + SEC, 1, 7, Side::Sell, 20_006, 200, 19_999, 20_001),
        cancel(ts + 3 * SEC, 1, 7),
    ];
    assert!(run(&mut s, &stream).is_empty());
}

#[test]
fn spoofing_fires_when_the_trade_follows_the_cancel() {
    let mut s = det();
    let ts = warm_sizes(&mut s, T0);
    let stream = [
        place(ts + SEC, 1, 7, Side::Buy, 19_990, 150, 19_999, 20_001),
        cancel(ts + 2 * SEC, 1, 7),
        // Sells 20 s after the cancel (window 30 s).
        trade(ts + 22 * SEC, 19_999, 5, 2, 1, Side::Sell, 56, 9),
    ];
    let alerts = run(&mut s, &stream);
    let a = only(&alerts, Rule::Spoofing);
    assert_eq!(a.accounts, vec![AccountId(1)]);
    assert!(a.users.is_empty(), "owner unknown");
}

// --- layering -------------------------------------------------------------------

fn layering_script(levels: [i64; 3]) -> Vec<Alert> {
    let mut s = det();
    let ts = warm_sizes(&mut s, T0);
    let _ = s.observe(&linked(3, U1));
    let t = ts + SEC;
    let mut stream = Vec::new();
    for (i, off) in levels.into_iter().enumerate() {
        // 40 lots (4x typical) on the ask, behind the touch.
        stream.push(place(
            t + i as u64 * 100 * MS,
            3,
            30 + i as u64,
            Side::Sell,
            20_001 + off,
            40,
            19_999,
            20_001,
        ));
    }
    stream.push(trade(t + SEC, 20_001, 5, 2, 3, Side::Buy, 57, 10));
    for i in 0..3 {
        stream.push(cancel(t + 3 * SEC + i * 100 * MS, 3, 30 + i));
    }
    run(&mut s, &stream)
}

#[test]
fn layering_fires_on_three_levels() {
    let alerts = layering_script([2, 3, 4]);
    let a = only(&alerts, Rule::Layering);
    assert_eq!(a.accounts, vec![AccountId(3)]);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::Notify);
    let orders = a
        .evidence
        .iter()
        .filter(|e| {
            matches!(
                e,
                Evidence::Order {
                    side: Side::Sell,
                    qty_lots: 40,
                    ..
                }
            )
        })
        .count();
    assert_eq!(orders, 3);
    assert!((metric(a, "price_levels") - 3.0).abs() < f64::EPSILON);
}

#[test]
fn layering_near_miss_two_levels() {
    assert!(layering_script([2, 2, 3]).is_empty());
}

// --- order_to_trade_ratio -------------------------------------------------------

fn otr_script(trades: u64) -> Vec<Alert> {
    let mut s = det();
    let _ = s.observe(&linked(5, U2));
    let mut stream = Vec::new();
    let mut ts = T0;
    for k in 0..trades {
        stream.push(trade(
            ts + k * MS,
            20_001,
            1,
            6,
            5,
            Side::Buy,
            500_000 + k,
            600_000 + k,
        ));
    }
    ts += SEC;
    // 1100 orders, each cancelled, within five minutes.
    for i in 0..1100 {
        ts += 130 * MS;
        stream.push(place(ts, 5, i, Side::Buy, 19_999, 1, 19_999, 20_001));
        ts += 130 * MS;
        stream.push(cancel(ts, 5, i));
    }
    run(&mut s, &stream)
}

#[test]
fn order_to_trade_ratio_fires_once() {
    let alerts = otr_script(2);
    let a = only(&alerts, Rule::OrderToTradeRatio);
    assert_eq!(a.accounts, vec![AccountId(5)]);
    assert_eq!(a.users, vec![UserId(U2)]);
    assert_eq!(a.action, Action::Notify);
    assert!((metric(a, "orders") - 1000.0).abs() < f64::EPSILON);
    assert!((metric(a, "trades") - 2.0).abs() < f64::EPSILON);
    assert!(metric(a, "ratio") > 200.0);
    assert_eq!(a.score, 100);
}

#[test]
fn order_to_trade_ratio_near_miss() {
    // (1100 + 1100) / 20 = 110 < 200.
    assert!(otr_script(20).is_empty());
}

// --- momentum_ignition ----------------------------------------------------------

fn momentum_script(step: i64) -> Vec<Alert> {
    let mut s = det();
    let _ = s.observe(&linked(7, U1));
    let mut stream = vec![trade(T0, 20_000, 1, 8, 9, Side::Buy, 1, 2)];
    let mut ts = T0 + SEC;
    let mut price = 20_000;
    // Six aggressive buy orders within five seconds, each lifting the price.
    for k in 0..6 {
        price += step;
        ts += 800 * MS;
        stream.push(trade(ts, price, 3, 8, 7, Side::Buy, 100 + k, 200 + k));
    }
    // Twenty seconds later account 7 sells into the move.
    stream.push(trade(
        ts + 20 * SEC,
        price - 10,
        18,
        8,
        7,
        Side::Sell,
        300,
        301,
    ));
    run(&mut s, &stream)
}

#[test]
fn momentum_ignition_fires() {
    // 6 x 20 ticks = 120 ticks on 20 000 = 60 bps.
    let alerts = momentum_script(20);
    let a = only(&alerts, Rule::MomentumIgnition);
    assert_eq!(a.accounts, vec![AccountId(7)]);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::Notify);
    assert!((metric(a, "move_bps") - 60.0).abs() < f64::EPSILON);
    assert!((metric(a, "aggressive_orders") - 6.0).abs() < f64::EPSILON);
    assert!(a.evidence.iter().any(|e| matches!(
        e,
        Evidence::Trade {
            taker_order_id: OrderId(301),
            aggressor_side: Side::Sell,
            ..
        }
    )));
}

#[test]
fn momentum_ignition_near_miss() {
    // 6 x 13 = 78 ticks = 39 bps < 50.
    assert!(momentum_script(13).is_empty());
}

// --- wash_trading ---------------------------------------------------------------

#[test]
fn wash_trading_fires_between_accounts_of_one_owner() {
    let mut s = det();
    let stream = [
        linked(11, U1),
        linked(12, U1),
        trade(T0, 20_000, 4, 11, 12, Side::Buy, 1, 2),
        trade(T0 + 3 * MIN, 20_001, 4, 12, 11, Side::Sell, 3, 4),
        trade(T0 + 6 * MIN, 20_000, 4, 11, 12, Side::Buy, 5, 6),
    ];
    let alerts = run(&mut s, &stream);
    let a = only(&alerts, Rule::WashTrading);
    assert_eq!(a.accounts, vec![AccountId(11), AccountId(12)]);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::Notify);
    assert!(a.evidence.contains(&Evidence::Link {
        link: LinkKind::SameOwner,
        value: None
    }));
    assert_eq!(
        a.evidence
            .iter()
            .filter(|e| matches!(e, Evidence::Trade { .. }))
            .count(),
        3
    );
    assert!((metric(a, "volume_lots") - 12.0).abs() < f64::EPSILON);
}

#[test]
fn wash_trading_near_miss_spread_out_and_single_self_match() {
    let mut s = det();
    let stream = [
        linked(11, U1),
        linked(12, U1),
        // One accidental self-match and one cross trade, then a third 40 min later.
        trade(T0, 20_000, 4, 11, 11, Side::Buy, 1, 2),
        trade(T0 + MIN, 20_000, 4, 11, 12, Side::Buy, 3, 4),
        trade(T0 + 41 * MIN, 20_000, 4, 12, 11, Side::Buy, 5, 6),
    ];
    assert!(run(&mut s, &stream).is_empty());
}

#[test]
fn wash_trading_single_self_match_when_configured() {
    let mut cfg = SurveillanceConfig::default();
    cfg.wash_trading.min_trades = 1;
    let mut s = Surveillance::new(cfg);
    let alerts = run(&mut s, &[trade(T0, 20_000, 4, 11, 11, Side::Buy, 1, 2)]);
    let a = only(&alerts, Rule::WashTrading);
    assert_eq!(a.accounts, vec![AccountId(11)]);
    assert!(a.evidence.contains(&Evidence::Link {
        link: LinkKind::SameAccount,
        value: None
    }));
}

fn shared_device_script(extra_users_on_device: u128) -> Vec<Alert> {
    let mut s = det();
    let ip1 = v4(81, 2, 3, 4);
    let ip2 = v4(92, 7, 1, 1);
    let mut stream = vec![linked(21, U1), linked(22, U2)];
    stream.push(request(T0, U1, ip1, Some(0xD0D0), None, "/v1/orders"));
    stream.push(request(T0 + MIN, U2, ip2, Some(0xD0D0), None, "/v1/orders"));
    for k in 0..extra_users_on_device {
        stream.push(request(
            T0 + 2 * MIN,
            0xBEEF_0000 + k,
            v4(10, 0, 0, k as u8),
            Some(0xD0D0),
            None,
            "/v1/orders",
        ));
    }
    for k in 0..3 {
        stream.push(trade(
            T0 + 10 * MIN + k * MIN,
            20_000,
            2,
            21,
            22,
            Side::Buy,
            10 + k,
            20 + k,
        ));
    }
    run(&mut s, &stream)
}

#[test]
fn wash_trading_fires_between_users_sharing_a_device() {
    let alerts = shared_device_script(0);
    let a = only(&alerts, Rule::WashTrading);
    assert_eq!(a.accounts, vec![AccountId(21), AccountId(22)]);
    assert_eq!(a.users, vec![UserId(U1), UserId(U2)]);
    assert!(a.evidence.contains(&Evidence::Link {
        link: LinkKind::SameDevice,
        value: Some(0xD0D0u64.to_string())
    }));
}

#[test]
fn wash_trading_near_miss_crowded_device() {
    // Seven users on one fingerprint (a kiosk, a shared office image) link nobody.
    assert!(shared_device_script(5).is_empty());
}

#[test]
fn wash_trading_near_miss_unlinked_owners() {
    let mut s = det();
    let stream = [
        linked(21, U1),
        linked(22, U2),
        request(T0, U1, v4(81, 2, 3, 4), Some(1), None, "/v1/orders"),
        request(T0, U2, v4(92, 7, 1, 1), Some(2), None, "/v1/orders"),
        trade(T0 + MIN, 20_000, 2, 21, 22, Side::Buy, 1, 2),
        trade(T0 + 2 * MIN, 20_000, 2, 21, 22, Side::Buy, 3, 4),
        trade(T0 + 3 * MIN, 20_000, 2, 22, 21, Side::Buy, 5, 6),
    ];
    assert!(run(&mut s, &stream).is_empty());
}

// --- new_ip_range / new_country / new_device --------------------------------------

#[test]
fn new_ip_range_fires_on_unknown_range_only_after_first_login() {
    let mut s = det();
    let stream = [
        login(T0, U1, v4(81, 2, 3, 4), Some(1), "DE", true),
        // Same /16: fine.
        login(T0 + HOUR, U1, v4(81, 2, 200, 9), Some(1), "DE", true),
        // A failed attempt from elsewhere teaches and alerts nothing.
        login(T0 + 2 * HOUR, U1, v4(198, 51, 100, 7), Some(1), "DE", false),
    ];
    assert!(run(&mut s, &stream).is_empty());
    let alerts = s.observe(&login(
        T0 + 3 * HOUR,
        U1,
        v4(203, 0, 113, 9),
        Some(1),
        "DE",
        true,
    ));
    let a = only(&alerts, Rule::NewIpRange);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert!(a.accounts.is_empty());
    assert_eq!(a.action, Action::Notify);
    assert_eq!(
        a.evidence[0],
        Evidence::Ip {
            ip: v4(203, 0, 113, 9),
            range: "203.0.0.0/16".into()
        }
    );
}

#[test]
fn new_ip_range_ipv6_uses_48_bit_prefix() {
    let mut s = det();
    let ip = |t: &str| t.parse::<std::net::IpAddr>().unwrap();
    assert!(
        s.observe(&login(T0, U1, ip("2001:db8:1:1::5"), None, "DE", true))
            .is_empty()
    );
    assert!(
        s.observe(&login(
            T0 + MIN,
            U1,
            ip("2001:db8:1:ffff::9"),
            None,
            "DE",
            true
        ))
        .is_empty()
    );
    let alerts = s.observe(&login(
        T0 + 2 * MIN,
        U1,
        ip("2001:db8:2::1"),
        None,
        "DE",
        true,
    ));
    let a = only(&alerts, Rule::NewIpRange);
    assert_eq!(
        a.evidence[0],
        Evidence::Ip {
            ip: ip("2001:db8:2::1"),
            range: "2001:db8:2::/48".into()
        }
    );
}

#[test]
fn new_country_fires_on_unknown_country() {
    let mut s = det();
    let stream = [
        login(T0, U1, v4(81, 2, 3, 4), Some(1), "DE", true),
        login(T0 + HOUR, U1, v4(81, 2, 3, 5), Some(1), "DE", true),
    ];
    assert!(run(&mut s, &stream).is_empty());
    // Same range, same device, different country (a GeoIP re-mapping or a VPN).
    let alerts = s.observe(&login(
        T0 + 2 * HOUR,
        U1,
        v4(81, 2, 3, 6),
        Some(1),
        "FR",
        true,
    ));
    let a = only(&alerts, Rule::NewCountry);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::StepUp);
    assert_eq!(
        a.evidence[0],
        Evidence::Country {
            country: Country::new("fr").unwrap()
        }
    );
}

#[test]
fn new_country_near_misses() {
    let mut s = det();
    let stream = [
        // First login: nothing to compare with.
        login(T0, U1, v4(81, 2, 3, 4), Some(1), "FR", true),
        // No country from the mapping.
        Observation::Login {
            ts_ns: T0 + HOUR,
            user: UserId(U1),
            ip: v4(81, 2, 3, 4),
            device: Some(DeviceId(1)),
            country: None,
            success: true,
        },
        login(T0 + 2 * HOUR, U1, v4(81, 2, 3, 4), Some(1), "FR", true),
    ];
    assert!(run(&mut s, &stream).is_empty());
}

#[test]
fn new_device_fires_on_unknown_device() {
    let mut s = det();
    let stream = [
        login(T0, U1, v4(81, 2, 3, 4), Some(1), "DE", true),
        login(T0 + HOUR, U1, v4(81, 2, 3, 4), Some(1), "DE", true),
    ];
    assert!(run(&mut s, &stream).is_empty());
    let alerts = s.observe(&login(
        T0 + 2 * HOUR,
        U1,
        v4(81, 2, 3, 4),
        Some(99),
        "DE",
        true,
    ));
    let a = only(&alerts, Rule::NewDevice);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::StepUp);
    assert_eq!(
        a.evidence[0],
        Evidence::Device {
            device: DeviceId(99)
        }
    );
}

#[test]
fn new_device_near_miss_first_login_and_known_device() {
    let mut s = det();
    let stream = [
        login(T0, U1, v4(81, 2, 3, 4), Some(5), "DE", true),
        login(T0 + DAY, U1, v4(81, 2, 3, 4), Some(5), "DE", true),
        // A failed login from a new device is not a login from it.
        login(T0 + DAY + HOUR, U1, v4(81, 2, 3, 4), Some(6), "DE", false),
    ];
    assert!(run(&mut s, &stream).is_empty());
}

// --- unusual_api_usage ----------------------------------------------------------

/// `minutes` active minutes of human-like traffic: `per_minute` requests at random
/// (exponential-ish) times, mostly to four routes.
fn human_profile(
    s: &mut Surveillance,
    user: u128,
    minutes: u64,
    per_minute: u64,
    seed: u64,
) -> u64 {
    let mut rng = Rng::new(seed);
    let ip = v4(81, 2, 3, 4);
    let mut alerts = Vec::new();
    for m in 0..minutes {
        let start = T0 + m * MIN;
        let mut offsets: Vec<u64> = (0..per_minute).map(|_| rng.below(59_000) * MS).collect();
        offsets.sort_unstable();
        for off in offsets {
            let route = ROUTES[rng.below(4) as usize];
            s.observe_into(
                &request(start + off, user, ip, Some(1), None, route),
                &mut alerts,
            );
        }
    }
    assert!(alerts.is_empty(), "profile itself alerted: {alerts:#?}");
    T0 + minutes * MIN
}

#[test]
fn unusual_api_usage_volume_spike() {
    let mut s = det();
    let t = human_profile(&mut s, U1, 40, 10, 1);
    let mut alerts = Vec::new();
    for k in 0..200 {
        s.observe_into(
            &request(
                t + k * 250 * MS + (k % 7) * 31 * MS,
                U1,
                v4(81, 2, 3, 4),
                Some(1),
                None,
                ROUTES[0],
            ),
            &mut alerts,
        );
    }
    let a = only(&alerts, Rule::UnusualApiUsage);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::Notify);
    assert_eq!(a.evidence[0], Evidence::Signal { name: "volume" });
    assert!((metric(a, "requests_this_minute") - 120.0).abs() < f64::EPSILON);
    assert!(metric(a, "baseline_per_minute") < 12.0);
}

#[test]
fn unusual_api_usage_volume_near_miss() {
    let mut s = det();
    let t = human_profile(&mut s, U1, 40, 10, 1);
    let mut alerts = Vec::new();
    // 100 requests: ten times the baseline but under the 120/min floor.
    for k in 0..100 {
        s.observe_into(
            &request(
                t + k * 500 * MS + (k % 5) * 77 * MS,
                U1,
                v4(81, 2, 3, 4),
                Some(1),
                None,
                ROUTES[0],
            ),
            &mut alerts,
        );
    }
    assert!(alerts.is_empty(), "{alerts:#?}");
    // And a warmed-down user: spike before the 30-minute warm-up.
    let mut s = det();
    let t = human_profile(&mut s, U2, 20, 10, 2);
    for k in 0..200 {
        s.observe_into(
            &request(
                t + k * 250 * MS + (k % 7) * 31 * MS,
                U2,
                v4(81, 2, 3, 4),
                Some(1),
                None,
                ROUTES[0],
            ),
            &mut alerts,
        );
    }
    assert!(alerts.is_empty(), "{alerts:#?}");
}

fn mix_script(rare_requests: u64) -> Vec<Alert> {
    let mut s = det();
    let t = human_profile(&mut s, U1, 25, 25, 3);
    let mut alerts = Vec::new();
    for k in 0..40u64 {
        let route = if k < rare_requests {
            if k % 2 == 0 {
                "/v1/wallet/addresses"
            } else {
                "/v1/account/api-keys"
            }
        } else {
            ROUTES[(k % 4) as usize]
        };
        s.observe_into(
            &request(
                t + k * 1_400 * MS + (k % 3) * 200 * MS,
                U1,
                v4(81, 2, 3, 4),
                Some(1),
                None,
                route,
            ),
            &mut alerts,
        );
    }
    alerts
}

#[test]
fn unusual_api_usage_endpoint_mix() {
    let alerts = mix_script(30);
    let a = only(&alerts, Rule::UnusualApiUsage);
    assert_eq!(
        a.evidence[0],
        Evidence::Signal {
            name: "endpoint_mix"
        }
    );
    assert!(a.evidence.iter().any(|e| matches!(
        e,
        Evidence::Route { route, profile_share, .. } if route == "/v1/wallet/addresses" && *profile_share == 0.0
    )));
    assert!(
        a.evidence
            .iter()
            .any(|e| matches!(e, Evidence::Route { route, .. } if route == "/v1/account/api-keys"))
    );
}

#[test]
fn unusual_api_usage_endpoint_mix_near_miss() {
    // 14 of 40 (35 %) to rare routes: under the 50 % default.
    assert!(mix_script(14).is_empty());
}

#[test]
fn unusual_api_usage_machine_timing_after_human_profile() {
    let mut s = det();
    let t = human_profile(&mut s, U1, 15, 30, 4);
    let mut alerts = Vec::new();
    // Exactly every 2 s, the same mix of routes.
    for k in 0..30 {
        s.observe_into(
            &request(
                t + k * 2 * SEC,
                U1,
                v4(81, 2, 3, 4),
                Some(1),
                None,
                ROUTES[(k % 4) as usize],
            ),
            &mut alerts,
        );
    }
    let a = only(&alerts, Rule::UnusualApiUsage);
    assert_eq!(a.evidence[0], Evidence::Signal { name: "timing" });
    assert!(metric(a, "interval_cv") < 0.01);
    assert!(metric(a, "baseline_interval_cv") > 0.5);
}

#[test]
fn unusual_api_usage_timing_near_miss_bot_from_the_start() {
    let mut s = det();
    let mut alerts = Vec::new();
    for k in 0..(40 * 30) {
        s.observe_into(
            &request(
                T0 + k * 2 * SEC,
                U1,
                v4(81, 2, 3, 4),
                None,
                None,
                ROUTES[(k % 4) as usize],
            ),
            &mut alerts,
        );
    }
    assert!(alerts.is_empty(), "{alerts:#?}");
}

// --- withdrawal_after_credential_change --------------------------------------------

fn withdrawal_script(after: u64, kind: CredentialKind) -> Vec<Alert> {
    let mut s = det();
    run(
        &mut s,
        &[
            Observation::CredentialChanged {
                ts_ns: T0,
                user: UserId(U1),
                kind,
            },
            Observation::WithdrawalRequested {
                ts_ns: T0 + after,
                user: UserId(U1),
                amount: 2_500_000,
            },
        ],
    )
}

#[test]
fn withdrawal_after_credential_change_fires() {
    let alerts = withdrawal_script(3 * HOUR, CredentialKind::TwoFactor);
    let a = only(&alerts, Rule::WithdrawalAfterCredentialChange);
    assert_eq!(a.users, vec![UserId(U1)]);
    assert_eq!(a.action, Action::FreezeWithdrawals);
    assert_eq!(
        a.evidence[0],
        Evidence::CredentialChange {
            credential: CredentialKind::TwoFactor,
            ts_ns: T0
        }
    );
    assert_eq!(
        a.evidence[1],
        Evidence::Withdrawal {
            ts_ns: T0 + 3 * HOUR,
            amount: 2_500_000
        }
    );
    assert!((metric(a, "hours_since_change") - 3.0).abs() < 1e-9);
    assert!(a.score > 90);
}

#[test]
fn withdrawal_after_credential_change_near_miss() {
    assert!(withdrawal_script(25 * HOUR, CredentialKind::Password).is_empty());
}

// --- failed_second_factor --------------------------------------------------------

#[test]
fn failed_second_factor_fires_on_five_in_window() {
    let mut s = det();
    let stream: Vec<_> = (0..5)
        .map(|k| Observation::SecondFactorFailed {
            ts_ns: T0 + k * 90 * SEC,
            user: UserId(U2),
        })
        .collect();
    let alerts = run(&mut s, &stream);
    let a = only(&alerts, Rule::FailedSecondFactor);
    assert_eq!(a.users, vec![UserId(U2)]);
    assert_eq!(a.action, Action::FreezeWithdrawals);
    assert_eq!(
        a.evidence
            .iter()
            .filter(|e| matches!(e, Evidence::SecondFactorFailure { .. }))
            .count(),
        5
    );
    // A sixth and seventh within the cool-down do not alert again.
    assert!(
        s.observe(&Observation::SecondFactorFailed {
            ts_ns: T0 + 7 * MIN,
            user: UserId(U2)
        })
        .is_empty()
    );
    assert!(
        s.observe(&Observation::SecondFactorFailed {
            ts_ns: T0 + 8 * MIN,
            user: UserId(U2)
        })
        .is_empty()
    );
}

#[test]
fn failed_second_factor_near_miss() {
    let mut s = det();
    let mut stream: Vec<_> = (0..4)
        .map(|k| Observation::SecondFactorFailed {
            ts_ns: T0 + k * MIN,
            user: UserId(U2),
        })
        .collect();
    // The fifth comes 20 minutes after the first: the window is 15.
    stream.push(Observation::SecondFactorFailed {
        ts_ns: T0 + 20 * MIN,
        user: UserId(U2),
    });
    assert!(run(&mut s, &stream).is_empty());
}

// --- cross-cutting ---------------------------------------------------------------

#[test]
fn disabled_rule_never_fires() {
    let mut cfg = SurveillanceConfig::default();
    cfg.failed_second_factor.enabled = false;
    let mut s = Surveillance::new(cfg);
    let stream: Vec<_> = (0..10)
        .map(|k| Observation::SecondFactorFailed {
            ts_ns: T0 + k * SEC,
            user: UserId(U2),
        })
        .collect();
    assert!(run(&mut s, &stream).is_empty());
}

#[test]
fn configured_action_is_reported() {
    let mut cfg = SurveillanceConfig::default();
    cfg.wash_trading.action = Action::HaltTrading;
    cfg.wash_trading.min_trades = 1;
    let mut s = Surveillance::new(cfg);
    let alerts = run(&mut s, &[trade(T0, 20_000, 4, 11, 11, Side::Buy, 1, 2)]);
    assert_eq!(only(&alerts, Rule::WashTrading).action, Action::HaltTrading);
}

#[test]
fn cooldown_expires_and_rule_can_fire_again() {
    let mut s = det();
    let fail = |ts_ns| Observation::SecondFactorFailed {
        ts_ns,
        user: UserId(U2),
    };
    let first: Vec<_> = (0..5).map(|k| fail(T0 + k * SEC)).collect();
    assert_eq!(run(&mut s, &first).len(), 1);
    let later: Vec<_> = (0..5).map(|k| fail(T0 + HOUR + k * SEC)).collect();
    assert_eq!(run(&mut s, &later).len(), 1);
}

#[test]
fn alerts_serialize_with_stable_names() {
    let alerts = withdrawal_script(HOUR, CredentialKind::Password);
    let json = serde_json::to_value(&alerts[0]).unwrap();
    assert_eq!(json["rule"], "withdrawal_after_credential_change");
    assert_eq!(json["action"], "freeze_withdrawals");
    assert_eq!(json["evidence"][0]["kind"], "credential_change");
    assert_eq!(json["evidence"][0]["credential"], "password");
}
