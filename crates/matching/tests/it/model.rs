//! A deliberately naive reference book: a flat list of resting orders, the best one
//! found by scanning. It shares no code with the engine; the property tests run both
//! on the same commands and require identical events and identical resting orders.

use bourse_matching::*;

#[derive(Debug, Clone)]
pub struct ModelOrder {
    pub id: u64,
    pub account: u64,
    pub side: Side,
    pub price: i64,
    pub leaves: u64,
    pub filled: u64,
    pub priority: u64,
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ModelBook {
    pub orders: Vec<ModelOrder>,
    next_priority: u64,
}

fn crosses(taker: Side, limit: Option<i64>, maker_price: i64) -> bool {
    match (taker, limit) {
        (_, None) => true,
        (Side::Buy, Some(limit)) => maker_price <= limit,
        (Side::Sell, Some(limit)) => maker_price >= limit,
    }
}

impl ModelBook {
    /// The index of the order a taker on `side` with `limit` would meet first.
    fn best_for(&self, side: Side, limit: Option<i64>) -> Option<usize> {
        self.orders
            .iter()
            .enumerate()
            .filter(|(_, o)| o.side != side && crosses(side, limit, o.price))
            .min_by_key(|(_, o)| {
                let price_rank = match side {
                    Side::Buy => o.price,
                    Side::Sell => -o.price,
                };
                (price_rank, o.priority)
            })
            .map(|(i, _)| i)
    }

    fn find(&self, id: u64) -> Option<usize> {
        self.orders.iter().position(|o| o.id == id)
    }

    pub fn apply(&mut self, command: &Command) -> Vec<Event> {
        let mut events = Vec::new();
        match *command {
            Command::Submit(order) => self.submit(&order, &mut events),
            Command::Cancel { order_id } => match self.find(order_id.0) {
                Some(i) => {
                    let o = self.orders.remove(i);
                    events.push(Event::Canceled {
                        order_id,
                        account: AccountId(o.account),
                        quantity: Quantity(o.leaves),
                        reason: CancelReason::Requested,
                    });
                }
                None => events.push(Event::Rejected {
                    order_id,
                    reason: RejectReason::UnknownOrder,
                }),
            },
            Command::CancelAll { account, side } => {
                let mut mine: Vec<ModelOrder> = self
                    .orders
                    .iter()
                    .filter(|o| o.account == account.0 && side.is_none_or(|s| s == o.side))
                    .cloned()
                    .collect();
                mine.sort_by_key(|o| o.priority);
                for o in mine {
                    self.orders.retain(|x| x.id != o.id);
                    events.push(Event::Canceled {
                        order_id: OrderId(o.id),
                        account,
                        quantity: Quantity(o.leaves),
                        reason: CancelReason::CancelAll,
                    });
                }
            }
            Command::Amend {
                order_id,
                price,
                quantity,
            } => self.amend(order_id, price, quantity, &mut events),
            Command::Expire { now } => {
                let mut due: Vec<(u64, u64)> = self
                    .orders
                    .iter()
                    .filter_map(|o| o.expires_at.filter(|&at| at <= now.0).map(|at| (at, o.id)))
                    .collect();
                due.sort();
                for (_, id) in due {
                    let i = self.find(id).unwrap();
                    let o = self.orders.remove(i);
                    events.push(Event::Expired {
                        order_id: OrderId(id),
                        account: AccountId(o.account),
                        quantity: Quantity(o.leaves),
                    });
                }
            }
        }
        events
    }

    fn reject(events: &mut Vec<Event>, id: OrderId, reason: RejectReason) {
        events.push(Event::Rejected {
            order_id: id,
            reason,
        });
    }

    fn submit(&mut self, order: &NewOrder, events: &mut Vec<Event>) {
        let qty = order.quantity.0;
        if qty == 0 || qty > u64::from(u32::MAX) {
            return Self::reject(events, order.id, RejectReason::InvalidQuantity);
        }
        let limit = match order.order_type {
            OrderType::Limit(p) if !(1..1 << 62).contains(&p.0) => {
                return Self::reject(events, order.id, RejectReason::InvalidPrice);
            }
            OrderType::Limit(p) => Some(p.0),
            OrderType::Market => None,
        };
        let rests = matches!(order.time_in_force, TimeInForce::Gtc | TimeInForce::Gtt(_));
        let bad_tif = match limit {
            None => rests || order.post_only,
            Some(_) => order.post_only && !rests,
        };
        if bad_tif {
            return Self::reject(events, order.id, RejectReason::InvalidTimeInForce);
        }
        if self.find(order.id.0).is_some() {
            return Self::reject(events, order.id, RejectReason::DuplicateOrderId);
        }
        let would_take = self.best_for(order.side, limit).is_some();
        if order.post_only && would_take {
            return Self::reject(events, order.id, RejectReason::PostOnlyWouldTake);
        }
        if order.time_in_force == TimeInForce::Fok {
            // Simulate on a copy: FOK is "would the real thing fill completely".
            let mut trial = self.clone();
            let (leaves, _) = trial.take(order, limit, &mut Vec::new());
            if leaves > 0 {
                return Self::reject(events, order.id, RejectReason::FillOrKillUnfillable);
            }
        }
        events.push(Event::Accepted {
            order_id: order.id,
            account: order.account,
            side: order.side,
            price: limit.map(Price),
            quantity: order.quantity,
        });
        let (leaves, stp) = self.take(order, limit, events);
        if leaves == 0 {
            return;
        }
        if !stp && rests {
            let priority = self.next_priority;
            self.next_priority += 1;
            let price = limit.unwrap();
            self.orders.push(ModelOrder {
                id: order.id.0,
                account: order.account.0,
                side: order.side,
                price,
                leaves,
                filled: qty - leaves,
                priority,
                expires_at: match order.time_in_force {
                    TimeInForce::Gtt(at) => Some(at.0),
                    _ => None,
                },
            });
            events.push(Event::Rested {
                order_id: order.id,
                side: order.side,
                price: Price(price),
                quantity: Quantity(leaves),
            });
            return;
        }
        events.push(Event::Canceled {
            order_id: order.id,
            account: order.account,
            quantity: Quantity(leaves),
            reason: if stp {
                CancelReason::SelfTradePrevention
            } else {
                CancelReason::Unfilled
            },
        });
    }

    /// Matches; returns the taker's leaves and whether STP canceled it.
    fn take(
        &mut self,
        order: &NewOrder,
        limit: Option<i64>,
        events: &mut Vec<Event>,
    ) -> (u64, bool) {
        let mut leaves = order.quantity.0;
        while leaves > 0 {
            let Some(i) = self.best_for(order.side, limit) else {
                break;
            };
            if self.orders[i].account == order.account.0 {
                let stp = order.self_trade_prevention;
                if stp == SelfTradePrevention::CancelTaker {
                    return (leaves, true);
                }
                let maker = self.orders.remove(i);
                events.push(Event::Canceled {
                    order_id: OrderId(maker.id),
                    account: AccountId(maker.account),
                    quantity: Quantity(maker.leaves),
                    reason: CancelReason::SelfTradePrevention,
                });
                if stp == SelfTradePrevention::CancelBoth {
                    return (leaves, true);
                }
                continue;
            }
            let maker = &mut self.orders[i];
            let q = leaves.min(maker.leaves);
            maker.leaves -= q;
            maker.filled += q;
            leaves -= q;
            events.push(Event::Traded {
                maker_order_id: OrderId(maker.id),
                taker_order_id: order.id,
                maker_account: AccountId(maker.account),
                taker_account: order.account,
                price: Price(maker.price),
                quantity: Quantity(q),
                aggressor: order.side,
                maker_leaves: Quantity(maker.leaves),
                taker_leaves: Quantity(leaves),
            });
            if maker.leaves == 0 {
                self.orders.remove(i);
            }
        }
        (leaves, false)
    }

    fn amend(
        &mut self,
        order_id: OrderId,
        price: Option<Price>,
        quantity: Option<Quantity>,
        events: &mut Vec<Event>,
    ) {
        let Some(i) = self.find(order_id.0) else {
            return Self::reject(events, order_id, RejectReason::UnknownOrder);
        };
        let current = self.orders[i].clone();
        let new_price = price.map_or(current.price, |p| p.0);
        let new_qty = quantity.map_or(current.leaves, |q| q.0);
        if new_qty == 0 || new_qty + current.filled > u64::from(u32::MAX) {
            return Self::reject(events, order_id, RejectReason::InvalidQuantity);
        }
        if !(1..1 << 62).contains(&new_price) {
            return Self::reject(events, order_id, RejectReason::InvalidPrice);
        }
        if new_price == current.price && new_qty == current.leaves {
            return Self::reject(events, order_id, RejectReason::AmendUnchanged);
        }
        if new_price != current.price && self.best_for(current.side, Some(new_price)).is_some() {
            return Self::reject(events, order_id, RejectReason::AmendWouldCross);
        }
        let kept = new_price == current.price && new_qty < current.leaves;
        let o = &mut self.orders[i];
        o.price = new_price;
        o.leaves = new_qty;
        if !kept {
            o.priority = self.next_priority;
            self.next_priority += 1;
        }
        events.push(Event::Amended {
            order_id,
            price: Price(new_price),
            quantity: Quantity(new_qty),
            kept_priority: kept,
        });
    }
}
