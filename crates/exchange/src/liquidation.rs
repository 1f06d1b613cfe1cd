//! Liquidation with an insurance fund (docs/risk.md, "Liquidation").
//!
//! While an insurance fund account is named ([`crate::Command::SetInsuranceFund`]),
//! every command that moves equity or maintenance margin without an order of the
//! account — `SetMarkPrice`, `SetIndexPrice`, `ApplyFunding`, `SettleExpiry` — ends
//! with a pass over the accounts in id order: an account (not the fee account, not
//! the fund) with a position or negative cash whose equity is below its maintenance
//! margin is liquidated, at its turn, in the state the previous liquidations left:
//!
//! 1. `LiquidationStarted`; every open order is canceled (`CancelReason::Liquidation`);
//! 2. the bankruptcy price of each position is fixed (below);
//! 3. each position, by instrument, is closed by an IOC limit order at its
//!    bankruptcy price (reduce-only, taker fee as usual) unless the instrument is
//!    halted or the exchange kill switch is on; a circuit breaker's range clips
//!    the limit (no trip);
//! 4. what is left is taken over by the fund at the bankruptcy price
//!    (`PositionTakenOver`, like a trade without fee);
//! 5. negative cash is covered by the fund (`BalanceReason::InsuranceFund`), and
//!    `InsuranceFundDeficit` reports a fund left with negative equity;
//! 6. `LiquidationFinished`.
//!
//! **Bankruptcy price.** The account's equity `E` (micro-units) is shared among its
//! positions in proportion to their maintenance margin (by notional `|s|·m·v` if
//! no position has any, e.g. long options only), the remainder of the integer
//! division to the largest share; position `i` with share `E_i` has the price at
//! which closing it changes equity by `−E_i`: closing `s` lots at `p` changes
//! equity by `s·(p − m)·v` for linear instruments and options alike, so
//! `p_i = m_i − E_i / (s_i·v_i)`, rounded toward the mark and clamped to
//! `1..=MAX_PRICE`. Closing every position at its bankruptcy price leaves equity
//! 0 (up to that rounding); any fill at a better price leaves the account more.

use crate::event::{BalanceReason, CancelReason, Event, EventKind, RejectReason};
use crate::exchange::{Account, Exchange, apply_trade};
use crate::margin::{self, MulChecked};
use crate::types::{
    AccountId, ClientOrderId, FEE_ACCOUNT, InstrumentStatus, MAX_PRICE, Money, PPM, Price,
    Quantity, Side, Timestamp,
};

type Outcome = Result<(), RejectReason>;

/// The client order id of every liquidation order (they never rest, so it never
/// enters the account's client-id index).
const LIQUIDATION_CLIENT_ORDER_ID: &str = "liquidation";

/// `floor(total · w_i / Σw)` for each weight, the remainder added to the largest
/// weight (the first of equal ones), so the shares sum to `total` exactly. If the
/// products could overflow (balances near the bounds), the weights are first
/// shifted right together until they cannot.
fn shares(total: Money, weights: &[i128]) -> Vec<Money> {
    let mut weights = weights.to_vec();
    let mut sum: i128 = weights.iter().sum();
    while sum > 0 && total.checked_mul(sum).is_none() {
        for w in &mut weights {
            *w >>= 1;
        }
        sum = weights.iter().sum();
    }
    let mut out: Vec<Money> = if sum == 0 {
        vec![0; weights.len()]
    } else {
        weights
            .iter()
            .map(|w| (total * w).div_euclid(sum))
            .collect()
    };
    let largest = (0..weights.len()).rev().max_by_key(|&i| weights[i]);
    if let Some(i) = largest {
        out[i] += total - out.iter().sum::<Money>();
    }
    out
}

impl Exchange {
    pub(crate) fn set_insurance_fund(
        &mut self,
        account: Option<AccountId>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if let Some(account) = account {
            if account == FEE_ACCOUNT {
                return Err(RejectReason::FeeAccount);
            }
            if !self.accounts.contains_key(&account) {
                return Err(RejectReason::UnknownAccount);
            }
        }
        self.risk.insurance_fund = account;
        out.push(Event {
            ts,
            kind: EventKind::InsuranceFundSet { account },
        });
        Ok(())
    }

    /// Equity and maintenance margin of an account, scaled (ppm-micros). `None` on
    /// overflow.
    pub(crate) fn maintenance_state(&self, acct: &Account) -> Option<(i128, i128)> {
        let cash = acct.balances.get(&self.settlement).copied().unwrap_or(0);
        let mut equity = cash.mul_checked(PPM)?;
        let mut mm: i128 = 0;
        for (&idx, e) in &acct.exposures {
            let p = self.instruments[idx].params();
            equity = equity.checked_add(margin::equity_contribution(&p, e)?.mul_checked(PPM)?)?;
            mm = mm.checked_add(margin::maintenance_margin_scaled(&p, e)?)?;
        }
        Some((equity, mm))
    }

    /// Liquidates, in id order, every account whose equity is below its
    /// maintenance margin (see the module doc). Runs only with an insurance fund.
    pub(crate) fn liquidate_under_maintenance(&mut self, ts: Timestamp, out: &mut Vec<Event>) {
        let Some(fund) = self.risk.insurance_fund else {
            return;
        };
        let settlement = self.settlement;
        let candidates: Vec<AccountId> = self
            .accounts_by_id()
            .into_iter()
            .filter(|(id, a)| {
                *id != FEE_ACCOUNT
                    && *id != fund
                    && (a.exposures.values().any(|e| e.size != 0)
                        || a.balances.get(&settlement).is_some_and(|b| *b < 0))
            })
            .map(|(id, _)| id)
            .collect();
        for account in candidates {
            let Some((equity, mm)) = self
                .accounts
                .get(&account)
                .and_then(|a| self.maintenance_state(a))
            else {
                continue;
            };
            if equity < mm {
                self.liquidate(account, fund, equity, mm, ts, out);
            }
        }
    }

    fn liquidate(
        &mut self,
        account: AccountId,
        fund: AccountId,
        equity: i128,
        mm: i128,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        out.push(Event {
            ts,
            kind: EventKind::LiquidationStarted {
                account,
                equity: margin::floor_scaled(equity),
                maintenance: margin::ceil_scaled(mm),
            },
        });
        self.cancel_everything(account, CancelReason::Liquidation, ts, out);
        let plan = self.bankruptcy_prices(account, margin::floor_scaled(equity));
        let cid =
            ClientOrderId::parse(LIQUIDATION_CLIENT_ORDER_ID).expect("a valid client order id");
        for (idx, price) in plan {
            let book_open =
                self.instruments[idx].status == InstrumentStatus::Active && !self.risk.kill_switch;
            let size = self.size_of(account, idx);
            if book_open && size != 0 {
                let side = if size > 0 { Side::Sell } else { Side::Buy };
                let qty = u64::try_from(size.unsigned_abs())
                    .unwrap_or(u64::MAX)
                    .min(Quantity::MAX.0);
                let mut limit = price;
                if let Some(range) = self.breaker_range(idx, ts) {
                    // Never trade outside the breaker's range: the rest goes to the fund.
                    limit = match side {
                        Side::Sell => Price(limit.0.max(range.lo)),
                        Side::Buy => Price(limit.0.min(range.hi)),
                    };
                    self.commit_breaker_reference(idx, &range, ts);
                }
                self.submit_internal_ioc(account, idx, side, qty, limit, cid, ts, out);
            }
            if self.size_of(account, idx) != 0 {
                self.take_over(account, fund, idx, price, ts, out);
            }
        }
        let settlement = self.settlement;
        let cash = self
            .accounts
            .get(&account)
            .and_then(|a| a.balances.get(&settlement))
            .copied()
            .unwrap_or(0);
        let covered = (-cash).max(0);
        if covered > 0 {
            self.credit(
                fund,
                &settlement,
                -covered,
                BalanceReason::InsuranceFund,
                ts,
                out,
            );
            self.credit(
                account,
                &settlement,
                covered,
                BalanceReason::InsuranceFund,
                ts,
                out,
            );
        }
        if let Some((fund_equity, _)) = self
            .accounts
            .get(&fund)
            .and_then(|a| self.maintenance_state(a))
            && fund_equity < 0
        {
            out.push(Event {
                ts,
                kind: EventKind::InsuranceFundDeficit {
                    account: fund,
                    equity: margin::floor_scaled(fund_equity),
                },
            });
        }
        out.push(Event {
            ts,
            kind: EventKind::LiquidationFinished {
                account,
                equity: cash + covered,
                covered,
            },
        });
    }

    fn size_of(&self, account: AccountId, idx: usize) -> i128 {
        self.accounts
            .get(&account)
            .and_then(|a| a.exposures.get(&idx))
            .map_or(0, |e| e.size)
    }

    /// The bankruptcy price of each open position of the account, by instrument,
    /// for its equity `equity` (micro-units); see the module doc.
    fn bankruptcy_prices(&self, account: AccountId, equity: Money) -> Vec<(usize, Price)> {
        let Some(acct) = self.accounts.get(&account) else {
            return Vec::new();
        };
        // (instrument, size, mark, tick value, maintenance margin, notional)
        let positions: Vec<(usize, i128, i128, Money, i128, i128)> = acct
            .exposures
            .iter()
            .filter(|(_, e)| e.size != 0)
            .map(|(&idx, e)| {
                let p = self.instruments[idx].params();
                let mm = margin::maintenance_margin_scaled(&p, e).map_or(0, margin::ceil_scaled);
                let notional = e
                    .size
                    .abs()
                    .saturating_mul(p.mark)
                    .saturating_mul(p.tick_value);
                (idx, e.size, p.mark, p.tick_value, mm, notional)
            })
            .collect();
        let mut weights: Vec<i128> = positions.iter().map(|p| p.4).collect();
        if weights.iter().all(|w| *w == 0) {
            weights = positions.iter().map(|p| p.5).collect();
        }
        let shares = shares(equity, &weights);
        positions
            .iter()
            .zip(shares)
            .map(|(&(idx, size, mark, v, _, _), share)| {
                // Closing `size` lots at `p` changes equity by `size·(p − mark)·v`;
                // `p = mark − share/(size·v)`, the quotient truncated (toward the mark).
                let per_tick = size * v;
                let price = (mark - share / per_tick).clamp(1, i128::from(MAX_PRICE.0));
                (idx, Price(i64::try_from(price).unwrap_or(MAX_PRICE.0)))
            })
            .collect()
    }

    /// The fund takes over what is left of `from`'s position on `idx` at `price`:
    /// both sides are booked like a trade between them at that price, without a
    /// fee (realised PnL for linear instruments, the premium for options).
    fn take_over(
        &mut self,
        from: AccountId,
        to: AccountId,
        idx: usize,
        price: Price,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let size = self.size_of(from, idx);
        let inst = &self.instruments[idx];
        let (v, linear, symbol) = (
            inst.tick_value,
            inst.spec.kind.is_linear(),
            inst.spec.symbol,
        );
        let settlement = self.settlement;
        out.push(Event {
            ts,
            kind: EventKind::PositionTakenOver {
                from,
                to,
                instrument: symbol,
                size,
                price,
            },
        });
        let qty = size.abs();
        let p = i128::from(price.0);
        let closing = if size > 0 { Side::Sell } else { Side::Buy };
        for (account, side) in [(from, closing), (to, closing.opposite())] {
            let acct = self.accounts.entry(account).or_default();
            let e = acct.exposures.entry(idx).or_default();
            let realised = apply_trade(e, side, qty, p) * v;
            e.realised_pnl += realised;
            let (new_size, cost, realised_pnl) = (e.size, e.cost, e.realised_pnl);
            let (delta, reason) = if linear {
                (realised, BalanceReason::RealisedPnl)
            } else {
                let premium = qty * p * v;
                let paid = match side {
                    Side::Buy => -premium,
                    Side::Sell => premium,
                };
                (paid, BalanceReason::OptionPremium)
            };
            self.credit(account, &settlement, delta, reason, ts, out);
            out.push(Event {
                ts,
                kind: EventKind::PositionChanged {
                    account,
                    instrument: symbol,
                    size: new_size,
                    cost,
                    realised_pnl,
                },
            });
        }
        // The fund's own reduce-only orders may have to shrink.
        self.cap_reduce_only(idx, to, ts, out);
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_sum_to_the_total_and_follow_the_weights() {
        assert_eq!(shares(100, &[1, 1, 2]), vec![25, 25, 50]);
        assert_eq!(shares(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(shares(-10, &[1, 1, 1]), vec![-2, -4, -4]);
        assert_eq!(shares(7, &[0, 5]), vec![0, 7]);
        assert_eq!(shares(7, &[0, 0]), vec![7, 0]);
        let big = shares(1 << 100, &[1 << 100, 1 << 100]);
        assert_eq!(big.iter().sum::<i128>(), 1 << 100);
    }
}
