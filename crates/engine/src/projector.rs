//! The read models: events of journaled commands become rows in the store (orders,
//! fills, ledger, positions, withdrawal states), one transaction per batch together
//! with the projection checkpoint, so a batch is applied exactly once even across
//! crashes (the journal is replayed from the checkpoint on start).

use bourse_exchange::{
    BalanceReason, CancelReason, Command, Event, EventKind, Liquidity, OrderKind,
    SelfTradePrevention, Side, TimeInForce,
};
use bourse_store::{FillRow, LedgerRow, OrderRow, PositionRow, ReadOp};

use crate::Record;

/// Ids of fills and ledger entries: the journal sequence number in the high bits and
/// the event's index within its command in the low 20, so they are unique, increasing,
/// and the same on every replay.
const EVENT_INDEX_BITS: u32 = 20;

/// The id of a fill or ledger entry: the journal sequence number in the high bits, the
/// event's index within its command in the low 20.
pub fn event_id(seq: u64, index: usize) -> i64 {
    let index = (index as u64).min((1 << EVENT_INDEX_BITS) - 1);
    i64::try_from((seq << EVENT_INDEX_BITS) | index).unwrap_or(i64::MAX)
}

/// Nanoseconds (the core's timestamps) to the store's microseconds.
fn micros(ts: bourse_exchange::Timestamp) -> i64 {
    i64::try_from(ts.0 / 1_000).unwrap_or(i64::MAX)
}

fn id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `"buy"` or `"sell"`.
pub fn side_str(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// `"gtc"`, `"ioc"`, `"fok"` or `"gtt"`.
pub fn tif_str(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
        TimeInForce::Gtt(_) => "gtt",
    }
}

/// The wire name of a self-trade prevention mode.
pub fn stp_str(stp: SelfTradePrevention) -> &'static str {
    match stp {
        SelfTradePrevention::CancelTaker => "cancel_taker",
        SelfTradePrevention::CancelMaker => "cancel_maker",
        SelfTradePrevention::CancelBoth => "cancel_both",
    }
}

/// The wire name of a balance change's reason.
pub fn balance_reason_str(reason: BalanceReason) -> &'static str {
    match reason {
        BalanceReason::Deposit => "deposit",
        BalanceReason::WithdrawalHeld => "withdrawal_held",
        BalanceReason::WithdrawalReleased => "withdrawal_released",
        BalanceReason::RealisedPnl => "realised_pnl",
        BalanceReason::OptionPremium => "option_premium",
        BalanceReason::Fee => "fee",
        BalanceReason::Funding => "funding",
        BalanceReason::Settlement => "settlement",
        BalanceReason::InsuranceFund => "insurance_fund",
    }
}

/// Appends the read-model changes of one journaled command to `ops`.
pub fn project(seq: u64, record: &Record, events: &[Event], ops: &mut Vec<ReadOp>) {
    // What a balance change refers to: the trade it belongs to, else the command's
    // own subject.
    let command_ref = match &record.command {
        Command::Withdraw { withdrawal, .. }
        | Command::ConfirmWithdrawal { withdrawal, .. }
        | Command::ReleaseWithdrawal { withdrawal, .. } => {
            Some(format!("withdrawal:{}", withdrawal.0))
        }
        Command::ApplyFunding { instrument, .. } | Command::SettleExpiry { instrument, .. } => {
            Some(format!("instrument:{instrument}"))
        }
        Command::Deposit { .. } => record.meta.reference.clone(),
        _ => None,
    };
    let mut trade_ref: Option<String> = None;
    // The liquidation being projected, for the insurance fund's cover.
    let mut liquidation_ref: Option<String> = None;
    let mut trade_fills = 0usize;
    for (index, event) in events.iter().enumerate() {
        let ts_us = micros(event.ts);
        match &event.kind {
            EventKind::OrderAccepted {
                order_id,
                account,
                instrument,
                client_order_id,
                side,
                price,
                quantity,
                reduce_only,
            } => {
                let (tif, post_only, stp, kind) = match &record.command {
                    Command::PlaceOrder(o) | Command::PlaceOrderWith { order: o, .. } => (
                        tif_str(o.time_in_force),
                        o.post_only,
                        stp_str(o.self_trade_prevention),
                        o.kind,
                    ),
                    // The exchange's own orders (liquidation): IOC limits.
                    _ => (
                        "ioc",
                        false,
                        "cancel_taker",
                        price.map_or(OrderKind::Market, |price| OrderKind::Limit { price }),
                    ),
                };
                ops.push(ReadOp::InsertOrder(OrderRow {
                    order_id: id(order_id.0),
                    account_id: id(account.0),
                    symbol: instrument.to_string(),
                    client_order_id: client_order_id.to_string(),
                    side: side_str(*side).into(),
                    order_type: match kind {
                        OrderKind::Limit { .. } => "limit".into(),
                        OrderKind::Market => "market".into(),
                    },
                    price_ticks: price.map(|p| p.0),
                    quantity_lots: id(quantity.0),
                    filled_lots: 0,
                    leaves_lots: id(quantity.0),
                    time_in_force: tif.into(),
                    post_only,
                    reduce_only: *reduce_only,
                    stp: stp.into(),
                    status: "new".into(),
                    cancel_reason: None,
                    idempotency_key: record.meta.idempotency_key.clone(),
                    created_at_us: ts_us,
                    updated_at_us: ts_us,
                }));
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
                maker_leaves,
                taker_leaves,
            } => {
                let trade_id = event_id(seq, index);
                trade_ref = Some(format!("trade:{trade_id}"));
                for (order, account, side, leaves, liquidity) in [
                    (
                        maker_order_id,
                        maker_account,
                        aggressor.opposite(),
                        maker_leaves,
                        "maker",
                    ),
                    (
                        taker_order_id,
                        taker_account,
                        *aggressor,
                        taker_leaves,
                        "taker",
                    ),
                ] {
                    ops.push(ReadOp::OrderFilled {
                        order_id: id(order.0),
                        quantity_lots: id(quantity.0),
                        leaves_lots: id(leaves.0),
                        ts_us,
                    });
                    ops.push(ReadOp::InsertFill(FillRow {
                        trade_id,
                        order_id: id(order.0),
                        account_id: id(account.0),
                        symbol: instrument.to_string(),
                        side: side_str(side).into(),
                        price_ticks: price.0,
                        quantity_lots: id(quantity.0),
                        liquidity: liquidity.into(),
                        fee_micros: "0".into(),
                        ts_us,
                    }));
                }
                trade_fills = ops.len();
            }
            EventKind::FeeCharged {
                order_id,
                liquidity,
                amount,
                ..
            } => {
                // The fill rows of the current trade are among the last ops pushed.
                let want = match liquidity {
                    Liquidity::Maker => "maker",
                    Liquidity::Taker => "taker",
                };
                let start = trade_fills.saturating_sub(4);
                if let Some(ReadOp::InsertFill(fill)) = ops[start..].iter_mut().rev().find(
                    |op| matches!(op, ReadOp::InsertFill(f) if f.order_id == id(order_id.0) && f.liquidity == want),
                ) {
                    fill.fee_micros = amount.to_string();
                }
            }
            EventKind::OrderCanceled {
                order_id, reason, ..
            } => ops.push(ReadOp::OrderClosed {
                order_id: id(order_id.0),
                status: "canceled".into(),
                reason: Some(cancel_reason_str(*reason).into()),
                ts_us,
            }),
            EventKind::OrderExpired { order_id, .. } => ops.push(ReadOp::OrderClosed {
                order_id: id(order_id.0),
                status: "expired".into(),
                reason: None,
                ts_us,
            }),
            EventKind::OrderAmended {
                order_id,
                price,
                quantity,
                ..
            } => ops.push(ReadOp::OrderAmended {
                order_id: id(order_id.0),
                price_ticks: price.0,
                leaves_lots: id(quantity.0),
                ts_us,
            }),
            EventKind::BalanceChanged {
                account,
                asset,
                delta,
                balance,
                reason,
            } => ops.push(ReadOp::InsertLedger(LedgerRow {
                entry_id: event_id(seq, index),
                account_id: id(account.0),
                asset: asset.to_string(),
                delta_micros: delta.to_string(),
                balance_micros: balance.to_string(),
                reason: balance_reason_str(*reason).into(),
                ref_id: match reason {
                    BalanceReason::InsuranceFund => liquidation_ref.clone(),
                    _ => trade_ref.clone(),
                }
                .or_else(|| command_ref.clone()),
                ts_us,
            })),
            EventKind::PositionChanged {
                account,
                instrument,
                size,
                cost,
                realised_pnl,
            } => ops.push(ReadOp::UpsertPosition(PositionRow {
                account_id: id(account.0),
                symbol: instrument.to_string(),
                size_lots: size.to_string(),
                cost: cost.to_string(),
                realised_pnl_micros: realised_pnl.to_string(),
                updated_at_us: ts_us,
            })),
            EventKind::WithdrawalHeld { withdrawal, .. } => ops.push(ReadOp::WithdrawalState {
                withdrawal_id: id(withdrawal.0),
                state: "pending".into(),
                ts_us,
            }),
            EventKind::WithdrawalConfirmed { withdrawal } => ops.push(ReadOp::WithdrawalState {
                withdrawal_id: id(withdrawal.0),
                state: "completed".into(),
                ts_us,
            }),
            EventKind::WithdrawalReleased { withdrawal } => ops.push(ReadOp::WithdrawalState {
                withdrawal_id: id(withdrawal.0),
                state: "rejected".into(),
                ts_us,
            }),
            EventKind::Rejected { .. }
            | EventKind::InstrumentCreated { .. }
            | EventKind::InstrumentStatusChanged { .. }
            | EventKind::MarkPriceSet { .. }
            | EventKind::IndexPriceSet { .. }
            | EventKind::AccountFrozen { .. }
            | EventKind::AccountUnfrozen { .. }
            | EventKind::OrderRested { .. }
            | EventKind::FundingApplied { .. }
            | EventKind::InstrumentSettled { .. }
            | EventKind::InstrumentLimitsSet { .. }
            | EventKind::AccountLimitsSet { .. }
            | EventKind::ClientLimitsSet { .. }
            | EventKind::CircuitBreakerSet { .. }
            | EventKind::CircuitBreakerTripped { .. }
            | EventKind::KillSwitchSet { .. }
            | EventKind::AccountKillSwitchSet { .. }
            | EventKind::CancelAfterSet { .. }
            | EventKind::DeadManSwitchFired { .. }
            | EventKind::InstrumentGroupSet { .. }
            | EventKind::MmpConfigSet { .. }
            | EventKind::MmpTriggered { .. }
            | EventKind::MmpReset { .. }
            | EventKind::GreeksSet { .. }
            | EventKind::InsuranceFundSet { .. }
            | EventKind::InsuranceFundDeficit { .. } => {}
            // A liquidation's orders, fills, balances and positions come as the
            // usual events; these only set what its balance changes refer to.
            EventKind::LiquidationStarted { .. } => {
                let r = format!("liquidation:{}", event_id(seq, index));
                trade_ref = Some(r.clone());
                liquidation_ref = Some(r);
            }
            EventKind::PositionTakenOver { .. } => {
                trade_ref = Some(format!("takeover:{}", event_id(seq, index)));
            }
            EventKind::LiquidationFinished { .. } => {
                trade_ref = None;
                liquidation_ref = None;
            }
        }
    }
}

/// The wire name of a cancel reason.
pub fn cancel_reason_str(reason: CancelReason) -> &'static str {
    reason.code()
}
