//! Identity and behaviour rules: `new_ip_range`, `new_country`, `new_device`,
//! `unusual_api_usage`, `withdrawal_after_credential_change`, `failed_second_factor`;
//! and the per-user device/client/IP sets that link accounts for `wash_trading`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};

use rustc_hash::FxHashMap;

use crate::types::{
    AccountId, Alert, ClientId, Country, CredentialKind, DeviceId, Evidence, LinkKind, Rule, UserId,
};
use crate::{NS_PER_MS, NS_PER_SEC, Surveillance, ratio_score, secs};

/// Distinct route templates interned; later ones share the last id.
const MAX_ROUTES: usize = 1024;
/// Routes kept in one user's profile (the least used is dropped first).
const MAX_PROFILE_ROUTES: usize = 32;
/// Profile counts are halved once their total passes this, so old habits fade.
const PROFILE_AGE_TOTAL: u32 = 50_000;
/// Devices, clients and IPs remembered per user for linkage.
const MAX_LINK_IPS: usize = 8;
const MAX_LINK_DEVICES: usize = 8;
const MAX_LINK_CLIENTS: usize = 4;
/// A linkage timestamp is refreshed (and the shared index touched) at most this often.
const LINK_REFRESH_NS: u64 = 60 * NS_PER_SEC;
const MINUTE_NS: u64 = 60 * NS_PER_SEC;
/// Intervals a finished minute needs before it teaches the timing baseline.
const TIMING_LEARN_MIN_INTERVALS: u32 = 5;

pub(crate) type SharedKey = (LinkKind, u128);

/// Users seen with one device, client or IP (at most `max_users_per_link + 1` kept:
/// one more than the limit is enough to know it is crowded).
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedUsers {
    users: Vec<(UserId, u64)>,
}

impl SharedUsers {
    pub(crate) fn fresh_users(&self, horizon: u64) -> usize {
        self.users.iter().filter(|(_, t)| *t >= horizon).count()
    }

    /// Drops stale users; whether any is left.
    pub(crate) fn retain_fresh(&mut self, horizon: u64) -> bool {
        self.users.retain(|(_, t)| *t >= horizon);
        !self.users.is_empty()
    }

    fn touch(&mut self, user: UserId, now: u64, horizon: u64, cap: usize) {
        if let Some(e) = self.users.iter_mut().find(|(u, _)| *u == user) {
            e.1 = now;
            return;
        }
        self.users.retain(|(_, t)| *t >= horizon);
        if self.users.len() >= cap {
            // Still crowded: replace the oldest.
            if let Some(i) = oldest(&self.users) {
                self.users.swap_remove(i);
            }
        }
        self.users.push((user, now));
    }
}

fn oldest<K>(v: &[(K, u64)]) -> Option<usize> {
    v.iter()
        .enumerate()
        .min_by_key(|(_, (_, t))| *t)
        .map(|(i, _)| i)
}

/// Route templates to small numbers.
#[derive(Clone, Debug, Default)]
pub(crate) struct RouteTable {
    ids: FxHashMap<Box<str>, u16>,
    names: Vec<Box<str>>,
}

impl RouteTable {
    fn intern(&mut self, route: &str) -> u16 {
        if let Some(&id) = self.ids.get(route) {
            return id;
        }
        if self.names.len() >= MAX_ROUTES {
            return u16::try_from(MAX_ROUTES - 1).unwrap_or(u16::MAX);
        }
        let id = u16::try_from(self.names.len()).unwrap_or(u16::MAX);
        self.names.push(route.into());
        self.ids.insert(route.into(), id);
        id
    }

    fn name(&self, id: u16) -> &str {
        self.names.get(usize::from(id)).map_or("", |n| n)
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// One user's API profile: the current minute and the learned baselines.
#[derive(Clone, Debug, Default)]
struct ApiProfile {
    minute: u64,
    count: u32,
    rare: u32,
    last_req: Option<u64>,
    intervals: u32,
    dt_sum: f64,
    dt_sq: f64,
    current: Vec<(u16, u32)>,
    profile: Vec<(u16, u32)>,
    profile_total: u32,
    active_minutes: u32,
    rate_ewma: f64,
    timing_minutes: u32,
    cv_ewma: f64,
    /// Share of learned minutes that already looked machine-like.
    machine_ewma: f64,
}

impl ApiProfile {
    fn share(&self, route: u16) -> f64 {
        if self.profile_total == 0 {
            return 0.0;
        }
        let n = self
            .profile
            .iter()
            .find(|(r, _)| *r == route)
            .map_or(0, |e| e.1);
        f64::from(n) / f64::from(self.profile_total)
    }

    fn cv(&self) -> Option<f64> {
        if self.intervals == 0 {
            return None;
        }
        let n = f64::from(self.intervals);
        let mean = self.dt_sum / n;
        if mean <= 0.0 {
            return Some(0.0);
        }
        let var = (self.dt_sq / n - mean * mean).max(0.0);
        Some(var.sqrt() / mean)
    }

    /// Folds the finished minute into the baselines.
    fn finish_minute(&mut self, alpha: f64, machine_max_cv: f64) {
        if self.count == 0 {
            return;
        }
        let count = f64::from(self.count);
        self.rate_ewma = if self.active_minutes == 0 {
            count
        } else {
            self.rate_ewma + alpha * (count - self.rate_ewma)
        };
        self.active_minutes = self.active_minutes.saturating_add(1);
        if self.intervals >= TIMING_LEARN_MIN_INTERVALS
            && let Some(cv) = self.cv()
        {
            let machine = if cv < machine_max_cv { 1.0 } else { 0.0 };
            if self.timing_minutes == 0 {
                self.cv_ewma = cv;
                self.machine_ewma = machine;
            } else {
                self.cv_ewma += alpha * (cv - self.cv_ewma);
                self.machine_ewma += alpha * (machine - self.machine_ewma);
            }
            self.timing_minutes = self.timing_minutes.saturating_add(1);
        }
        for &(route, n) in &self.current {
            if let Some(e) = self.profile.iter_mut().find(|(r, _)| *r == route) {
                e.1 = e.1.saturating_add(n);
            } else {
                if self.profile.len() >= MAX_PROFILE_ROUTES
                    && let Some(i) = self
                        .profile
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.1)
                        .map(|(i, _)| i)
                {
                    let gone = self.profile.swap_remove(i);
                    self.profile_total -= gone.1;
                }
                self.profile.push((route, n));
            }
            self.profile_total = self.profile_total.saturating_add(n);
        }
        if self.profile_total > PROFILE_AGE_TOTAL {
            for e in &mut self.profile {
                e.1 /= 2;
            }
            self.profile.retain(|e| e.1 > 0);
            self.profile_total = self.profile.iter().map(|e| e.1).sum();
        }
        self.count = 0;
        self.rare = 0;
        self.last_req = None;
        self.intervals = 0;
        self.dt_sum = 0.0;
        self.dt_sq = 0.0;
        self.current.clear();
    }
}

/// Per-user identity state.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserState {
    pub last_ts: u64,
    logins: u32,
    ranges: Vec<(u128, u64)>,
    countries: Vec<(Country, u64)>,
    devices: Vec<(DeviceId, u64)>,
    link_ips: Vec<(u128, u64)>,
    link_devices: Vec<(u128, u64)>,
    link_clients: Vec<(u128, u64)>,
    failures: VecDeque<u64>,
    changes: [Option<u64>; 2],
    api: Option<Box<ApiProfile>>,
}

impl UserState {
    pub(crate) fn link_set(&self, kind: LinkKind) -> &[(u128, u64)] {
        match kind {
            LinkKind::SameIp => &self.link_ips,
            LinkKind::SameDevice => &self.link_devices,
            LinkKind::SameOauthClient => &self.link_clients,
            LinkKind::SameAccount | LinkKind::SameOwner => &[],
        }
    }
}

/// An IP address as 128 bits (IPv4 as IPv4-mapped IPv6).
pub(crate) fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub(crate) fn ip_from_key(key: u128) -> IpAddr {
    Ipv6Addr::from(key).to_canonical()
}

/// The range `ip` belongs to, as a masked key, and its display (`10.1.0.0/16`).
fn ip_range(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> (u128, IpAddr, u8) {
    let (key, prefix) = match ip {
        IpAddr::V4(_) => (ip_key(ip), 96 + u32::from(v4_prefix)),
        IpAddr::V6(_) => (ip_key(ip), u32::from(v6_prefix)),
    };
    let mask = if prefix >= 128 {
        u128::MAX
    } else {
        !(u128::MAX >> prefix)
    };
    let masked = key & mask;
    let shown = match ip {
        IpAddr::V4(_) => v4_prefix,
        IpAddr::V6(_) => v6_prefix,
    };
    (masked, ip_from_key(masked), shown)
}

/// Refreshes `key` in a per-user set; whether the shared index should be touched.
fn touch_set<K: PartialEq + Copy>(set: &mut Vec<(K, u64)>, key: K, now: u64, cap: usize) -> bool {
    if let Some(e) = set.iter_mut().find(|(k, _)| *k == key) {
        if now.saturating_sub(e.1) >= LINK_REFRESH_NS {
            e.1 = now;
            return true;
        }
        return false;
    }
    if set.len() >= cap
        && let Some(i) = oldest(set)
    {
        set.swap_remove(i);
    }
    set.push((key, now));
    true
}

/// Whether `key` was already known; remembers it either way.
fn remember<K: PartialEq + Copy>(set: &mut Vec<(K, u64)>, key: K, now: u64, cap: usize) -> bool {
    if let Some(e) = set.iter_mut().find(|(k, _)| *k == key) {
        e.1 = now;
        return true;
    }
    if set.len() >= cap
        && let Some(i) = oldest(set)
    {
        set.swap_remove(i);
    }
    set.push((key, now));
    false
}

impl Surveillance {
    fn user_entry(&mut self, user: UserId) -> &mut UserState {
        let now = self.now;
        let u = self.users.entry(user).or_default();
        u.last_ts = now;
        u
    }

    /// Records that `user` used `ip`, `device` and `client` now (for linkage).
    fn touch_links(
        &mut self,
        user: UserId,
        ip: IpAddr,
        device: Option<DeviceId>,
        client: Option<ClientId>,
    ) {
        let now = self.now;
        let cfg = &self.cfg.wash_trading;
        if !cfg.enabled {
            return;
        }
        let cap = cfg.max_users_per_link as usize + 1;
        let horizon = now.saturating_sub(secs(cfg.link_window_secs));
        let (by_ip, by_device, by_client) =
            (cfg.link_by_ip, cfg.link_by_device, cfg.link_by_oauth_client);
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let mut touched: [Option<SharedKey>; 3] = [None; 3];
        if by_ip {
            let k = ip_key(ip);
            if touch_set(&mut u.link_ips, k, now, MAX_LINK_IPS) {
                touched[0] = Some((LinkKind::SameIp, k));
            }
        }
        if by_device && let Some(d) = device {
            let k = u128::from(d.0);
            if touch_set(&mut u.link_devices, k, now, MAX_LINK_DEVICES) {
                touched[1] = Some((LinkKind::SameDevice, k));
            }
        }
        if by_client && let Some(c) = client {
            let k = u128::from(c.0);
            if touch_set(&mut u.link_clients, k, now, MAX_LINK_CLIENTS) {
                touched[2] = Some((LinkKind::SameOauthClient, k));
            }
        }
        for key in touched.into_iter().flatten() {
            self.shared
                .entry(key)
                .or_default()
                .touch(user, now, horizon, cap);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_request(
        &mut self,
        user: UserId,
        account: Option<AccountId>,
        client: Option<ClientId>,
        ip: IpAddr,
        device: Option<DeviceId>,
        route: &str,
        out: &mut Vec<Alert>,
    ) {
        if let Some(a) = account {
            self.owners.entry(a).or_insert(user);
        }
        self.user_entry(user);
        self.touch_links(user, ip, device, client);
        if !self.cfg.unusual_api_usage.enabled {
            return;
        }
        let route_id = self.routes.intern(route);
        let now = self.now;
        let cfg = &self.cfg.unusual_api_usage;
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let api = u.api.get_or_insert_with(Box::default);
        let minute = now / MINUTE_NS;
        if minute != api.minute {
            api.finish_minute(cfg.ewma_alpha, cfg.timing_machine_max_cv);
            api.minute = minute;
        }
        if let Some(last) = api.last_req {
            #[allow(clippy::cast_precision_loss)]
            let dt = (now - last) as f64 / NS_PER_MS as f64;
            api.intervals += 1;
            api.dt_sum += dt;
            api.dt_sq += dt * dt;
        }
        api.last_req = Some(now);
        api.count = api.count.saturating_add(1);
        if api.share(route_id) < cfg.mix_rare_share {
            api.rare += 1;
        }
        if let Some(e) = api.current.iter_mut().find(|(r, _)| *r == route_id) {
            e.1 += 1;
        } else if api.current.len() < MAX_PROFILE_ROUTES {
            api.current.push((route_id, 1));
        }

        let count = f64::from(api.count);
        let signal: Option<(&'static str, u8)> = if api.active_minutes >= cfg.warmup_minutes
            && api.count >= cfg.volume_min_per_minute
            && count >= cfg.volume_multiple * api.rate_ewma
        {
            Some((
                "volume",
                ratio_score(count, cfg.volume_multiple * api.rate_ewma.max(1.0)),
            ))
        } else if api.profile_total >= cfg.mix_warmup_requests
            && api.count >= cfg.mix_min_requests
            && f64::from(api.rare) >= cfg.mix_min_rare_fraction * count
        {
            Some((
                "endpoint_mix",
                ratio_score(f64::from(api.rare) / count, cfg.mix_min_rare_fraction),
            ))
        } else if api.timing_minutes >= cfg.timing_warmup_minutes
            && api.cv_ewma >= cfg.timing_human_min_cv
            && api.machine_ewma <= cfg.timing_max_machine_share
            && api.intervals >= cfg.timing_min_intervals
            && api.cv().is_some_and(|cv| cv < cfg.timing_machine_max_cv)
        {
            let cv = api.cv().unwrap_or(0.0);
            let closeness = 1.0 - cv / cfg.timing_machine_max_cv.max(f64::MIN_POSITIVE);
            Some(("timing", ratio_score(1.0 + closeness, 1.0)))
        } else {
            None
        };
        let Some((name, score)) = signal else {
            return;
        };
        let (action, cooldown) = (cfg.action, cfg.cooldown_secs);
        if !self.may_fire(Rule::UnusualApiUsage, user.0, cooldown) {
            return;
        }
        let Some(api) = self.users.get(&user).and_then(|u| u.api.as_deref()) else {
            return;
        };
        let metric = |name, value: f64| Evidence::Metric { name, value };
        let mut evidence = vec![Evidence::Signal { name }];
        match name {
            "volume" => evidence.extend([
                metric("requests_this_minute", f64::from(api.count)),
                metric("baseline_per_minute", api.rate_ewma),
                metric("learned_minutes", f64::from(api.active_minutes)),
            ]),
            "endpoint_mix" => {
                let rare_share = self.cfg.unusual_api_usage.mix_rare_share;
                let mut rare: Vec<(u16, u32, f64)> = api
                    .current
                    .iter()
                    .map(|&(r, n)| (r, n, api.share(r)))
                    .filter(|&(_, _, s)| s < rare_share)
                    .collect();
                rare.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                evidence.extend(rare.iter().take(5).map(|&(r, n, s)| Evidence::Route {
                    route: self.routes.name(r).to_owned(),
                    requests: u64::from(n),
                    profile_share: s,
                }));
                evidence.extend([
                    metric("requests_this_minute", f64::from(api.count)),
                    metric("rare_requests", f64::from(api.rare)),
                    metric("profile_requests", f64::from(api.profile_total)),
                ]);
            }
            _ => evidence.extend([
                metric("interval_cv", api.cv().unwrap_or(0.0)),
                metric("baseline_interval_cv", api.cv_ewma),
                metric("baseline_machine_share", api.machine_ewma),
                metric("intervals", f64::from(api.intervals)),
            ]),
        }
        let accounts = account.into_iter().collect();
        out.push(Alert {
            rule: Rule::UnusualApiUsage,
            ts_ns: now,
            action,
            score,
            accounts,
            users: vec![user],
            evidence,
        });
    }

    pub(crate) fn on_login(
        &mut self,
        user: UserId,
        ip: IpAddr,
        device: Option<DeviceId>,
        country: Option<Country>,
        success: bool,
        out: &mut Vec<Alert>,
    ) {
        self.user_entry(user);
        if !success {
            return;
        }
        self.touch_links(user, ip, device, None);
        let now = self.now;
        let ipc = self.cfg.new_ip_range.clone();
        let cc = self.cfg.new_country.clone();
        let dc = self.cfg.new_device.clone();
        let (range, range_ip, prefix) = ip_range(ip, ipc.ipv4_prefix, ipc.ipv6_prefix);
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let first = u.logins == 0;
        u.logins = u.logins.saturating_add(1);
        let mut fire: Vec<(Rule, Evidence)> = Vec::new();
        if ipc.enabled {
            let known = remember(&mut u.ranges, range, now, ipc.max_remembered);
            if !known && !first {
                fire.push((
                    Rule::NewIpRange,
                    Evidence::Ip {
                        ip,
                        range: format!("{range_ip}/{prefix}"),
                    },
                ));
            }
        }
        if cc.enabled
            && let Some(c) = country
        {
            let had_any = !u.countries.is_empty();
            let known = remember(&mut u.countries, c, now, cc.max_remembered);
            if !known && had_any && !first {
                fire.push((Rule::NewCountry, Evidence::Country { country: c }));
            }
        }
        if dc.enabled
            && let Some(d) = device
        {
            let had_any = !u.devices.is_empty();
            let known = remember(&mut u.devices, d, now, dc.max_remembered);
            if !known && had_any && !first {
                fire.push((Rule::NewDevice, Evidence::Device { device: d }));
            }
        }
        let logins = u.logins;
        for (rule, ev) in fire {
            let (action, cooldown, score) = match rule {
                Rule::NewIpRange => (ipc.action, ipc.cooldown_secs, 50),
                Rule::NewCountry => (cc.action, cc.cooldown_secs, 70),
                _ => (dc.action, dc.cooldown_secs, 60),
            };
            if !self.may_fire(rule, user.0, cooldown) {
                continue;
            }
            let mut evidence = vec![ev];
            if rule != Rule::NewIpRange {
                evidence.push(Evidence::Ip {
                    ip,
                    range: format!("{range_ip}/{prefix}"),
                });
            }
            evidence.push(Evidence::Metric {
                name: "successful_logins",
                value: f64::from(logins),
            });
            out.push(Alert {
                rule,
                ts_ns: now,
                action,
                score,
                accounts: Vec::new(),
                users: vec![user],
                evidence,
            });
        }
    }

    pub(crate) fn on_second_factor_failed(&mut self, user: UserId, out: &mut Vec<Alert>) {
        let now = self.now;
        let cfg = &self.cfg.failed_second_factor;
        let (enabled, window, min, action, cooldown) = (
            cfg.enabled,
            secs(cfg.window_secs),
            cfg.min_failures as usize,
            cfg.action,
            cfg.cooldown_secs,
        );
        let u = self.user_entry(user);
        if !enabled {
            return;
        }
        u.failures.push_back(now);
        while u.failures.len() > min
            || u.failures
                .front()
                .is_some_and(|&t| t.saturating_add(window) < now)
        {
            u.failures.pop_front();
        }
        if u.failures.len() < min {
            return;
        }
        let failures: Vec<u64> = u.failures.iter().copied().collect();
        if !self.may_fire(Rule::FailedSecondFactor, user.0, cooldown) {
            return;
        }
        let mut evidence: Vec<Evidence> = failures
            .iter()
            .map(|&ts_ns| Evidence::SecondFactorFailure { ts_ns })
            .collect();
        #[allow(clippy::cast_precision_loss)]
        evidence.push(Evidence::Metric {
            name: "window_secs",
            value: (window / NS_PER_SEC) as f64,
        });
        out.push(Alert {
            rule: Rule::FailedSecondFactor,
            ts_ns: now,
            action,
            score: 50,
            accounts: Vec::new(),
            users: vec![user],
            evidence,
        });
    }

    pub(crate) fn on_credential_changed(&mut self, user: UserId, kind: CredentialKind) {
        let now = self.now;
        let u = self.user_entry(user);
        u.changes[kind_index(kind)] = Some(now);
    }

    pub(crate) fn on_withdrawal(&mut self, user: UserId, amount: u64, out: &mut Vec<Alert>) {
        let now = self.now;
        let cfg = &self.cfg.withdrawal_after_credential_change;
        let (enabled, window, action, cooldown) = (
            cfg.enabled,
            secs(cfg.window_secs),
            cfg.action,
            cfg.cooldown_secs,
        );
        let u = self.user_entry(user);
        if !enabled {
            return;
        }
        let latest = [CredentialKind::Password, CredentialKind::TwoFactor]
            .into_iter()
            .filter_map(|k| u.changes[kind_index(k)].map(|t| (t, k)))
            .filter(|&(t, _)| t.saturating_add(window) >= now)
            .max_by_key(|&(t, _)| t);
        let Some((changed, kind)) = latest else {
            return;
        };
        if !self.may_fire(Rule::WithdrawalAfterCredentialChange, user.0, cooldown) {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let elapsed = (now - changed) as f64;
        #[allow(clippy::cast_precision_loss)]
        let window_f = window.max(1) as f64;
        out.push(Alert {
            rule: Rule::WithdrawalAfterCredentialChange,
            ts_ns: now,
            action,
            // 100 right after the change, 50 at the end of the window.
            score: ratio_score(2.0 - elapsed / window_f, 1.0),
            accounts: Vec::new(),
            users: vec![user],
            evidence: vec![
                Evidence::CredentialChange {
                    credential: kind,
                    ts_ns: changed,
                },
                Evidence::Withdrawal { ts_ns: now, amount },
                Evidence::Metric {
                    name: "hours_since_change",
                    value: elapsed / 3.6e12,
                },
            ],
        });
    }
}

const fn kind_index(kind: CredentialKind) -> usize {
    match kind {
        CredentialKind::Password => 0,
        CredentialKind::TwoFactor => 1,
    }
}
