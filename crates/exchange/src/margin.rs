//! Margin, equity and value formulas: pure functions over one account's exposure to
//! one instrument.
//!
//! Everything is integer. Margin is computed in *scaled* units, micro-units × 10^6
//! ("ppm-micros"), so that `rate_ppm × notional` needs no rounding; the pre-trade
//! check compares equity and margin in that unit exactly. Reports round margin up and
//! available funds down to whole micro-units.
//!
//! Notation, per account and instrument: `s` position size (lots, signed), `K` cost
//! basis (tick·lots, signed like `s`), `m` mark and `S` index price (ticks), `v` the
//! tick value (micro-units per tick·lot), `B`/`Bq` the notional (Σ price × leaves,
//! tick·lots) and quantity of resting buy orders, `P`/`Pq` the same for sells.
//!
//! **Perpetuals and futures (linear)**
//!
//! - equity contribution (unrealised PnL): `(s·m − K)·v`
//! - initial margin: `im_ppm · v · max(|s·m + B|, |s·m − P|)` — the worse of "every
//!   resting buy fills" and "every resting sell fills", so resting orders that
//!   reduce the position need no margin, and canceling an order never raises it.
//! - maintenance margin: `mm_ppm · v · |s·m|`
//!
//! **Options** (Deribit's published rule, restated for linear USDC-settled options:
//! Deribit's "× underlying" becomes "× index price `S`" per unit)
//!
//! - equity contribution (option value): `s·m·v`
//! - short initial margin per lot: `v · (max(im_ppm·S − 10^6·OTM, min_ppm·S) + 10^6·m)`,
//!   i.e. `max(15% · S − OTM, 10% · S) + mark` with Deribit's 15% / 10%, where
//!   `OTM = max(0, K − S)` for a call and `max(0, S − K)` for a put (`K` the strike).
//! - initial margin: `short IM per lot × max(0, −(s − Pq)) + 10^6 · v · B`: the short
//!   position if every resting sell fills, plus the premium of every resting buy.
//!   A long option needs no margin: its premium was paid at trade time.
//! - maintenance margin per short lot: `v · (mm_ppm·S + 10^6·m)`, i.e.
//!   `7.5% · S + mark` with Deribit's 7.5%.

use crate::types::{InstrumentKind, MAX_AMOUNT, Money, PPM};

/// `i128::checked_mul` with a shortcut: two factors that fit in 64 bits (the usual
/// case: sizes, prices, rates, tick values, most balances) cannot overflow, so their
/// product is one widening multiply instead of the general 128-bit overflow check,
/// which the margin formulas would otherwise run a dozen times per order. Same
/// result as `checked_mul` for every input.
pub(crate) trait MulChecked: Sized {
    /// `self · rhs`, `None` on overflow.
    fn mul_checked(self, rhs: Self) -> Option<Self>;
}

impl MulChecked for i128 {
    #[inline]
    fn mul_checked(self, rhs: i128) -> Option<i128> {
        match (i64::try_from(self), i64::try_from(rhs)) {
            (Ok(a), Ok(b)) => Some(i128::from(a) * i128::from(b)),
            _ => self.checked_mul(rhs),
        }
    }
}

/// `a / b` rounded toward zero, exactly as `i128` division, but through a 64-bit
/// division when both fit (the usual case: fees and cost shares of ordinary
/// trades), which avoids the much slower 128-bit division routine. `b` must not be 0.
#[inline]
pub(crate) fn div_trunc(a: i128, b: i128) -> i128 {
    match (i64::try_from(a), i64::try_from(b)) {
        // `i64::MIN / -1` is the one 64-bit quotient that does not fit.
        (Ok(x), Ok(y)) if y != -1 => i128::from(x / y),
        _ => a / b,
    }
}

/// One account's exposure to one instrument: its position and its resting orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Exposure {
    /// Position size in lots: positive long, negative short.
    pub size: i128,
    /// Cost basis in tick·lots, signed like `size`: Σ price × signed lots of the open
    /// part. The average entry price is `cost / size`.
    pub cost: i128,
    /// Realised PnL so far, micro-units. For linear instruments it has been paid into
    /// the balance; for options it is informational (premiums moved as cash).
    pub realised_pnl: Money,
    /// Open quantity of resting buy orders, lots.
    pub buy_qty: i128,
    /// Σ price × open quantity of resting buy orders, tick·lots.
    pub buy_notional: i128,
    /// Open quantity of resting sell orders, lots.
    pub sell_qty: i128,
    /// Σ price × open quantity of resting sell orders, tick·lots.
    pub sell_notional: i128,
    /// How many resting orders there are (the `max_open_orders` limit's counter).
    pub open_orders: u32,
}

impl Exposure {
    /// True when there is neither a position nor a resting order.
    pub fn is_flat(&self) -> bool {
        self.size == 0
            && self.cost == 0
            && self.buy_qty == 0
            && self.sell_qty == 0
            && self.buy_notional == 0
            && self.sell_notional == 0
            && self.open_orders == 0
    }
}

/// What the formulas need to know about an instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MarginParams {
    /// Perpetual, future or option (strike and right for options).
    pub kind: InstrumentKind,
    /// Micro-units per tick·lot.
    pub tick_value: Money,
    /// Initial margin rate, ppm.
    pub initial_margin_ppm: u32,
    /// Maintenance margin rate, ppm.
    pub maintenance_margin_ppm: u32,
    /// Mark price in ticks.
    pub mark: i128,
    /// Index price in ticks (options only; 0 when unknown for linear instruments).
    pub index: i128,
}

/// `x` if `|x| <= MAX_AMOUNT · 10^6`, else `None`: keeps every value the check
/// accepts far inside `i128`.
fn bounded_scaled(x: i128) -> Option<i128> {
    (x.checked_abs()? <= MAX_AMOUNT * PPM).then_some(x)
}

/// The exposure's contribution to equity, in micro-units: unrealised PnL for linear
/// instruments, option value for options. `None` on overflow.
pub fn equity_contribution(p: &MarginParams, e: &Exposure) -> Option<Money> {
    let value = e.size.mul_checked(p.mark)?;
    let pnl_ticks = if p.kind.is_linear() {
        value.checked_sub(e.cost)?
    } else {
        value
    };
    let money = pnl_ticks.mul_checked(p.tick_value)?;
    bounded_scaled(money)
}

/// Short option margin per lot, scaled (ppm-micros); see the module doc.
fn option_short_margin_per_lot(p: &MarginParams, maintenance: bool) -> Option<i128> {
    let InstrumentKind::Option {
        strike,
        right,
        min_margin_ppm,
        ..
    } = p.kind
    else {
        return Some(0);
    };
    let s = p.index;
    let base = if maintenance {
        i128::from(p.maintenance_margin_ppm).mul_checked(s)?
    } else {
        let otm = right.out_of_the_money(s, i128::from(strike.0));
        let reduced = i128::from(p.initial_margin_ppm)
            .mul_checked(s)?
            .checked_sub(otm.mul_checked(PPM)?)?;
        reduced.max(i128::from(min_margin_ppm).mul_checked(s)?)
    };
    base.checked_add(p.mark.mul_checked(PPM)?)?
        .mul_checked(p.tick_value)
}

/// Initial margin of the exposure, scaled (ppm-micros). `None` on overflow.
pub fn initial_margin_scaled(p: &MarginParams, e: &Exposure) -> Option<i128> {
    let im = if p.kind.is_linear() {
        let position = e.size.mul_checked(p.mark)?;
        let if_buys_fill = position.checked_add(e.buy_notional)?.checked_abs()?;
        let if_sells_fill = position.checked_sub(e.sell_notional)?.checked_abs()?;
        if_buys_fill
            .max(if_sells_fill)
            .mul_checked(i128::from(p.initial_margin_ppm))?
            .mul_checked(p.tick_value)?
    } else {
        let short_if_sells_fill = e.size.checked_sub(e.sell_qty)?.min(0).checked_neg()?;
        let short = option_short_margin_per_lot(p, false)?.mul_checked(short_if_sells_fill)?;
        let premiums = e.buy_notional.mul_checked(p.tick_value)?.mul_checked(PPM)?;
        short.checked_add(premiums)?
    };
    bounded_scaled(im)
}

/// Maintenance margin of the position (resting orders need none), scaled
/// (ppm-micros). `None` on overflow.
pub fn maintenance_margin_scaled(p: &MarginParams, e: &Exposure) -> Option<i128> {
    let mm = if p.kind.is_linear() {
        e.size
            .mul_checked(p.mark)?
            .checked_abs()?
            .mul_checked(i128::from(p.maintenance_margin_ppm))?
            .mul_checked(p.tick_value)?
    } else {
        let short = e.size.min(0).checked_neg()?;
        option_short_margin_per_lot(p, true)?.mul_checked(short)?
    };
    bounded_scaled(mm)
}

/// `floor(x / 10^6)`: scaled to micro-units, rounding down.
pub fn floor_scaled(x: i128) -> Money {
    x.div_euclid(PPM)
}

/// `ceil(x / 10^6)`: scaled to micro-units, rounding up.
pub fn ceil_scaled(x: i128) -> Money {
    -(-x).div_euclid(PPM)
}
