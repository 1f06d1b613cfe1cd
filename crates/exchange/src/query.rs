//! Read-only views for the API, and the invariant checks the tests run.

use bourse_matching::Depth;

use crate::exchange::{Exchange, Withdrawal};
use crate::margin::{self, Exposure};
use crate::types::{
    AccountId, Asset, ClientOrderId, InstrumentSpec, InstrumentStatus, Money, OrderId, PPM, Price,
    Quantity, Side, Symbol,
};

/// An instrument as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InstrumentView {
    /// Its specification.
    pub spec: InstrumentSpec,
    /// Micro-units per tick·lot.
    pub tick_value: Money,
    /// Active, halted or expired.
    pub status: InstrumentStatus,
    /// Mark price, once set.
    pub mark: Option<Price>,
    /// Index price, once set.
    pub index: Option<Price>,
    /// The rate of the last funding payment (perpetuals), ppb.
    pub last_funding_ppb: Option<i64>,
    /// Open interest: the sum of the long positions, in lots.
    pub open_interest: i128,
}

/// An account's money in the settlement asset, valued at the mark prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountSummary {
    /// Cash balance of the settlement asset (realised PnL, premiums, fees and
    /// funding included; withdrawal holds excluded).
    pub cash: Money,
    /// Held for pending withdrawals.
    pub held: Money,
    /// Unrealised PnL of linear positions plus the value of option positions.
    pub unrealised: Money,
    /// `cash + unrealised`.
    pub equity: Money,
    /// Initial margin of positions and resting orders, rounded up.
    pub initial_margin: Money,
    /// Maintenance margin of positions, rounded up.
    pub maintenance_margin: Money,
    /// `equity − initial margin`, rounded down: what new orders and withdrawals may
    /// use. Negative only after prices moved against the account.
    pub available: Money,
    /// Whether the account is frozen.
    pub frozen: bool,
}

/// One position.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PositionView {
    /// Which instrument.
    pub instrument: Symbol,
    /// Size in lots: positive long, negative short.
    pub size: i128,
    /// Cost basis in tick·lots (signed like `size`).
    pub cost: i128,
    /// Average entry price `cost / size`, rounded toward zero; `None` when flat.
    pub average_entry: Option<Price>,
    /// Realised PnL so far, micro-units.
    pub realised_pnl: Money,
    /// Unrealised PnL at the mark (options: the position's value), micro-units.
    pub unrealised: Money,
}

/// One open order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderView {
    /// The exchange's id.
    pub order_id: OrderId,
    /// Whose.
    pub account: AccountId,
    /// Which instrument.
    pub instrument: Symbol,
    /// The caller's id.
    pub client_order_id: ClientOrderId,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Open quantity.
    pub leaves: Quantity,
    /// Quantity traded so far.
    pub filled: Quantity,
    /// Reduce-only.
    pub reduce_only: bool,
}

impl Exchange {
    /// One instrument.
    pub fn instrument(&self, symbol: &Symbol) -> Option<InstrumentView> {
        let idx = self.instrument_index(symbol).ok()?;
        let inst = &self.instruments[idx];
        Some(InstrumentView {
            spec: inst.spec.clone(),
            tick_value: inst.tick_value,
            status: inst.status,
            mark: inst.mark,
            index: inst.index,
            last_funding_ppb: inst.last_funding_ppb,
            open_interest: self
                .accounts
                .values()
                .filter_map(|a| a.exposures.get(&idx))
                .map(|e| e.size.max(0))
                .sum(),
        })
    }

    /// Every instrument's symbol, in creation order.
    pub fn symbols(&self) -> Vec<Symbol> {
        self.instruments.iter().map(|i| i.spec.symbol).collect()
    }

    /// Whether the account exists (it is created by its first deposit).
    pub fn has_account(&self, account: AccountId) -> bool {
        self.accounts.contains_key(&account)
    }

    /// Every account id, ascending (the fee account included).
    pub fn account_ids(&self) -> Vec<AccountId> {
        self.accounts_by_id()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// A cash balance (0 if none).
    pub fn balance(&self, account: AccountId, asset: &Asset) -> Money {
        self.accounts
            .get(&account)
            .and_then(|a| a.balances.get(asset))
            .copied()
            .unwrap_or(0)
    }

    /// Funds held for pending withdrawals (0 if none).
    pub fn held(&self, account: AccountId, asset: &Asset) -> Money {
        self.accounts
            .get(&account)
            .and_then(|a| a.held.get(asset))
            .copied()
            .unwrap_or(0)
    }

    /// Every balance of an account: (asset, cash, held), by asset.
    pub fn balances(&self, account: AccountId) -> Vec<(Asset, Money, Money)> {
        let Some(acct) = self.accounts.get(&account) else {
            return Vec::new();
        };
        let mut assets: Vec<&Asset> = acct.balances.keys().chain(acct.held.keys()).collect();
        assets.sort();
        assets.dedup();
        assets
            .into_iter()
            .map(|asset| {
                (
                    *asset,
                    acct.balances.get(asset).copied().unwrap_or(0),
                    acct.held.get(asset).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Equity, margin and available funds. `None` for an unknown account. Values are
    /// bounded far inside `i128` by the pre-trade check and deposit limits.
    pub fn account(&self, account: AccountId) -> Option<AccountSummary> {
        let acct = self.accounts.get(&account)?;
        let cash = acct.balances.get(&self.settlement).copied().unwrap_or(0);
        let held = acct.held.get(&self.settlement).copied().unwrap_or(0);
        let mut unrealised: Money = 0;
        let mut im: i128 = 0;
        let mut mm: i128 = 0;
        for (&idx, e) in &acct.exposures {
            let p = self.instruments[idx].params();
            unrealised += margin::equity_contribution(&p, e).unwrap_or(0);
            im += margin::initial_margin_scaled(&p, e).unwrap_or(0);
            mm += margin::maintenance_margin_scaled(&p, e).unwrap_or(0);
        }
        let equity = cash + unrealised;
        Some(AccountSummary {
            cash,
            held,
            unrealised,
            equity,
            initial_margin: margin::ceil_scaled(im),
            maintenance_margin: margin::ceil_scaled(mm),
            available: margin::floor_scaled(equity * PPM - im),
            frozen: acct.frozen,
        })
    }

    fn position_view(&self, idx: usize, e: &Exposure) -> PositionView {
        let inst = &self.instruments[idx];
        let average_entry = (e.size != 0)
            .then(|| i64::try_from(e.cost / e.size).ok().map(Price))
            .flatten();
        PositionView {
            instrument: inst.spec.symbol,
            size: e.size,
            cost: e.cost,
            average_entry,
            realised_pnl: e.realised_pnl,
            unrealised: margin::equity_contribution(&inst.params(), e).unwrap_or(0),
        }
    }

    /// The account's position on one instrument (`None` if it never had one).
    pub fn position(&self, account: AccountId, symbol: &Symbol) -> Option<PositionView> {
        let idx = self.instrument_index(symbol).ok()?;
        let e = self.accounts.get(&account)?.exposures.get(&idx)?;
        Some(self.position_view(idx, e))
    }

    /// The account's positions, open or closed with realised PnL, by instrument.
    pub fn positions(&self, account: AccountId) -> Vec<PositionView> {
        let Some(acct) = self.accounts.get(&account) else {
            return Vec::new();
        };
        acct.exposures
            .iter()
            .filter(|(_, e)| e.size != 0 || e.realised_pnl != 0)
            .map(|(&idx, e)| self.position_view(idx, e))
            .collect()
    }

    /// One open (resting) order.
    pub fn order(&self, order_id: OrderId) -> Option<OrderView> {
        let o = self.orders.get(&order_id)?;
        let inst = &self.instruments[o.instrument];
        let view = inst.book.order(order_id)?;
        Some(OrderView {
            order_id,
            account: o.account,
            instrument: inst.spec.symbol,
            client_order_id: o.client_order_id,
            side: o.side,
            price: view.price,
            leaves: view.leaves,
            filled: view.filled,
            reduce_only: o.reduce_only,
        })
    }

    /// The account's open orders, by order id.
    pub fn open_orders(&self, account: AccountId) -> Vec<OrderView> {
        let mut ids: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(_, o)| o.account == account)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|id| self.order(id)).collect()
    }

    /// The best `levels` levels of each side of an instrument's book.
    pub fn depth(&self, symbol: &Symbol, levels: usize) -> Option<Depth> {
        let idx = self.instrument_index(symbol).ok()?;
        Some(self.instruments[idx].book.depth(levels))
    }

    /// The highest bid.
    pub fn best_bid(&self, symbol: &Symbol) -> Option<Price> {
        let idx = self.instrument_index(symbol).ok()?;
        self.instruments[idx].book.best_bid()
    }

    /// The lowest ask.
    pub fn best_ask(&self, symbol: &Symbol) -> Option<Price> {
        let idx = self.instrument_index(symbol).ok()?;
        self.instruments[idx].book.best_ask()
    }

    /// One withdrawal.
    pub fn withdrawal(&self, id: crate::types::WithdrawalId) -> Option<&Withdrawal> {
        self.withdrawals.get(&id)
    }

    /// Everything ever deposited in an asset.
    pub fn total_deposited(&self, asset: &Asset) -> Money {
        self.deposited.get(asset).copied().unwrap_or(0)
    }

    /// Everything that ever left in confirmed withdrawals of an asset.
    pub fn total_withdrawn(&self, asset: &Asset) -> Money {
        self.withdrawn.get(asset).copied().unwrap_or(0)
    }

    /// The conservation invariant, per asset `a`:
    ///
    /// ```text
    /// Σ_accounts cash(a) + Σ_accounts held(a) − [a = settlement] · Σ_linear positions cost·v
    ///     = deposited(a) − withdrawn(a)
    /// ```
    ///
    /// Fees, premiums, funding and option settlement move cash between accounts (the
    /// fee account included). A linear trade changes each side's `cash − cost·v` by
    /// `−signed_qty · price · v`, opposite amounts for buyer and seller. And as the
    /// sizes of every instrument sum to zero, `−Σ cost·v` equals the total
    /// unrealised PnL at any common mark: money is only created by deposits and only
    /// destroyed by withdrawals.
    pub fn check_conservation(&self) -> Result<(), String> {
        let mut assets: Vec<&Asset> = self.deposited.keys().collect();
        for acct in self.accounts.values() {
            assets.extend(acct.balances.keys());
            assets.extend(acct.held.keys());
        }
        assets.push(&self.settlement);
        assets.sort();
        assets.dedup();
        for asset in assets {
            let mut lhs: Money = 0;
            for acct in self.accounts.values() {
                lhs += acct.balances.get(asset).copied().unwrap_or(0);
                lhs += acct.held.get(asset).copied().unwrap_or(0);
                if *asset == self.settlement {
                    for (&idx, e) in &acct.exposures {
                        let inst = &self.instruments[idx];
                        if inst.spec.kind.is_linear() {
                            lhs -= e.cost * inst.tick_value;
                        }
                    }
                }
            }
            let rhs = self.total_deposited(asset) - self.total_withdrawn(asset);
            if lhs != rhs {
                return Err(format!(
                    "asset {asset}: balances + holds - linear cost = {lhs}, deposits - withdrawals = {rhs}"
                ));
            }
        }
        Ok(())
    }

    /// Structural invariants: every instrument's sizes sum to zero; each exposure's
    /// resting totals equal the sums over its open orders; each book holds exactly
    /// the resting orders the exchange tracks; no order is left that is not resting;
    /// every book passes its own audit.
    pub fn audit(&self) -> Result<(), String> {
        let mut sizes = vec![0i128; self.instruments.len()];
        let mut expected: std::collections::BTreeMap<(AccountId, usize), Exposure> =
            std::collections::BTreeMap::new();
        for (id, o) in &self.orders {
            if !o.resting {
                return Err(format!("order {id} is tracked but not resting"));
            }
            let view = self.instruments[o.instrument]
                .book
                .order(*id)
                .ok_or_else(|| format!("order {id} is not on its book"))?;
            if view.leaves.0 != o.leaves || Some(view.price) != o.price {
                return Err(format!("order {id} differs from the book"));
            }
            let e = expected.entry((o.account, o.instrument)).or_default();
            e.open_orders += 1;
            let qty = i128::from(o.leaves);
            let notional = qty * i128::from(view.price.0);
            match o.side {
                Side::Buy => {
                    e.buy_qty += qty;
                    e.buy_notional += notional;
                }
                Side::Sell => {
                    e.sell_qty += qty;
                    e.sell_notional += notional;
                }
            }
        }
        for (idx, inst) in self.instruments.iter().enumerate() {
            let tracked = self.orders.values().filter(|o| o.instrument == idx).count();
            if tracked != inst.book.len() {
                return Err(format!(
                    "{}: book holds {} orders, exchange tracks {tracked}",
                    inst.spec.symbol,
                    inst.book.len()
                ));
            }
            inst.book.audit()?;
        }
        for (account, acct) in self.accounts_by_id() {
            for (&idx, e) in &acct.exposures {
                sizes[idx] += e.size;
                let want = expected.remove(&(account, idx)).unwrap_or_default();
                if (
                    e.buy_qty,
                    e.buy_notional,
                    e.sell_qty,
                    e.sell_notional,
                    e.open_orders,
                ) != (
                    want.buy_qty,
                    want.buy_notional,
                    want.sell_qty,
                    want.sell_notional,
                    want.open_orders,
                ) {
                    return Err(format!(
                        "account {account} instrument {idx}: resting totals drifted"
                    ));
                }
            }
        }
        if let Some(((account, idx), _)) = expected.into_iter().next() {
            return Err(format!(
                "account {account} has orders on {idx} but no exposure"
            ));
        }
        for (idx, size) in sizes.into_iter().enumerate() {
            if size != 0 {
                return Err(format!("instrument {idx}: sizes sum to {size}"));
            }
        }
        Ok(())
    }
}
