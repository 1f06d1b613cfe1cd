//! Read-only views of the risk configuration and state, for the API.

use crate::exchange::Exchange;
use crate::risk::{CircuitBreaker, Issuer, MmpConfig, OrderLimits};
use crate::types::{AccountId, Asset, ClientId, InstrumentStatus, Symbol, Timestamp};

/// An instrument's risk settings as the core has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentRiskView {
    /// Its own pre-trade limits.
    pub limits: OrderLimits,
    /// Its circuit breaker.
    pub breaker: Option<CircuitBreaker>,
    /// Halted by the breaker until then.
    pub breaker_halted_until: Option<Timestamp>,
    /// Its market-maker-protection group.
    pub group: Option<Asset>,
    /// Option greeks per lot, 10^-6 (delta, vega).
    pub greeks: Option<(i64, i64)>,
}

/// One account's market-maker protection on one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmpView {
    /// The group.
    pub group: Asset,
    /// The limits.
    pub config: MmpConfig,
    /// Lots traded by MMP orders in the current interval.
    pub quantity: i128,
    /// Net delta traded in the current interval, 10^-6.
    pub delta_e6: i128,
    /// Net vega traded in the current interval, 10^-6.
    pub vega_e6: i128,
    /// Frozen: `Some(None)` until a reset, `Some(Some(t))` until `t`.
    pub frozen: Option<Option<Timestamp>>,
}

/// One account's risk state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountRiskView {
    /// The account's kill switch, and who set it.
    pub kill_switch: Option<Issuer>,
    /// When its dead man's switch fires.
    pub cancel_after: Option<Timestamp>,
    /// Its market-maker protection, by group.
    pub mmp: Vec<MmpView>,
    /// Its overrides of instruments' limits.
    pub limits: Vec<(Symbol, OrderLimits)>,
    /// Its overrides per OAuth client.
    pub client_limits: Vec<(ClientId, Symbol, OrderLimits)>,
}

impl Exchange {
    /// The exchange-wide kill switch.
    pub fn kill_switch_active(&self) -> bool {
        self.risk.kill_switch
    }

    /// The earliest time at which a [`crate::Command::Tick`] would change something: a
    /// breaker's halt ending, an MMP freeze ending, or a dead man's switch due. The
    /// engine's clock sends a `Tick` only then, so an idle exchange journals nothing.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let halts = self
            .instruments
            .iter()
            .filter(|i| i.status == InstrumentStatus::Halted)
            .filter_map(|i| i.risk.halted_until);
        let freezes = self.risk.mmp.values().filter_map(|s| s.frozen.flatten());
        let due = self.risk.cancel_after_due.first().map(|&(t, _)| t);
        halts.chain(freezes).chain(due).min()
    }

    /// An instrument's risk settings, or `None` if it is not listed.
    pub fn instrument_risk(&self, symbol: &Symbol) -> Option<InstrumentRiskView> {
        let idx = *self.by_symbol.get(symbol)?;
        let r = &self.instruments[idx].risk;
        Some(InstrumentRiskView {
            limits: r.limits,
            breaker: r.breaker,
            breaker_halted_until: r.halted_until,
            group: r.group,
            greeks: r.greeks,
        })
    }

    /// An account's risk state (the default view for an account the core does not
    /// know yet).
    pub fn account_risk(&self, account: AccountId) -> AccountRiskView {
        let symbol = |idx: usize| self.instruments[idx].spec.symbol;
        let mut view = AccountRiskView {
            kill_switch: self.accounts.get(&account).and_then(|a| a.kill_switch),
            cancel_after: self.risk.cancel_after.get(&account).copied(),
            ..AccountRiskView::default()
        };
        for ((_, group), s) in self.risk.mmp.iter().filter(|((a, _), _)| *a == account) {
            view.mmp.push(MmpView {
                group: *group,
                config: s.config,
                quantity: s.quantity,
                delta_e6: s.delta_e6,
                vega_e6: s.vega_e6,
                frozen: s.frozen,
            });
        }
        for ((a, idx), l) in &self.risk.account_limits {
            if *a == account {
                view.limits.push((symbol(*idx), *l));
            }
        }
        for ((a, client, idx), l) in &self.risk.client_limits {
            if *a == account {
                view.client_limits.push((*client, symbol(*idx), *l));
            }
        }
        view
    }
}
