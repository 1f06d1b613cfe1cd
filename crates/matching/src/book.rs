//! One instrument's order book: price-time priority matching, commands in, events out.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use crate::command::{Command, NewOrder};
use crate::event::{CancelReason, Event, RejectReason};
use crate::index::IdIndex;
use crate::ladder::{Ladder, Level, NIL};
use crate::state_hash::Fnv1a;
use crate::types::{
    AccountId, OrderId, OrderType, Price, Quantity, SelfTradePrevention, Side, TimeInForce,
    Timestamp,
};

/// How to size a book up front. Sizes are hints: the book grows past them, but
/// growing allocates, and a book sized for its peak allocates nothing per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookConfig {
    /// Resting orders the book holds without growing its arena and id index.
    pub expected_orders: usize,
    /// Width, in ticks, of each side's dense window of price levels at the start.
    pub initial_window_ticks: usize,
    /// The widest a side's window may grow; levels further away than this from the
    /// rest of their side are kept in a slower ordered map instead.
    pub max_window_ticks: usize,
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig {
            expected_orders: 1024,
            initial_window_ticks: 1024,
            max_window_ticks: 1 << 16,
        }
    }
}

/// A resting order as the queries show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderView {
    /// The order's id.
    pub id: OrderId,
    /// Its account.
    pub account: AccountId,
    /// Its side.
    pub side: Side,
    /// The price it rests at.
    pub price: Price,
    /// Its open (unfilled) quantity.
    pub leaves: Quantity,
    /// What it has traded so far.
    pub filled: Quantity,
    /// [`TimeInForce::Gtc`] or [`TimeInForce::Gtt`]: only those rest.
    pub time_in_force: TimeInForce,
    /// Its place in time priority: smaller is earlier. Set when the order rests and
    /// again when an amend loses priority; unique within a book.
    pub priority: u64,
}

/// One aggregated price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DepthLevel {
    /// The level's price.
    pub price: Price,
    /// Sum of the open quantity of its orders.
    pub quantity: Quantity,
    /// How many orders rest there.
    pub orders: u32,
}

/// The best levels of both sides.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Depth {
    /// Bids, best (highest) first.
    pub bids: Vec<DepthLevel>,
    /// Asks, best (lowest) first.
    pub asks: Vec<DepthLevel>,
}

/// Heap held by a book, for capacity planning and the benchmark's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Size of one order slot in the arena.
    pub order_slot_bytes: usize,
    /// Slots the arena has room for.
    pub order_slot_capacity: usize,
    /// Size of one entry of the order-id index (which is kept at most half full).
    pub id_index_entry_bytes: usize,
    /// Bytes of the order arena.
    pub arena_bytes: usize,
    /// Bytes of the order-id and account-id indexes.
    pub index_bytes: usize,
    /// Bytes of both sides' price levels and occupancy bitmaps.
    pub level_bytes: usize,
    /// Bytes of the per-account order lists.
    pub account_bytes: usize,
    /// Everything above.
    pub total_bytes: usize,
}

/// A resting order in the arena. Linked into its level's FIFO queue (`prev`/`next`)
/// and into its account's list (`account_prev`/`account_next`), both by slot index,
/// so removing it from anywhere is O(1). A free slot links the free list by `next`.
#[derive(Debug, Clone, Copy)]
struct OrderSlot {
    id: u64,
    account: u64,
    price: i64,
    leaves: u64,
    filled: u64,
    priority: u64,
    expires_at: u64,
    prev: u32,
    next: u32,
    account_prev: u32,
    account_next: u32,
    account_slot: u32,
    side: Side,
    good_till_time: bool,
}

/// The resting orders of one account, oldest priority first.
#[derive(Debug, Clone, Copy)]
struct AccountOrders {
    account: u64,
    head: u32,
    tail: u32,
    count: u32,
}

/// Where the orders live: an arena with a free list, plus the indexes into it.
#[derive(Debug, Clone)]
struct OrderStore {
    slots: Vec<OrderSlot>,
    free: u32,
    live: usize,
    by_id: IdIndex,
    accounts: Vec<AccountOrders>,
    /// Free entries of `accounts`, linked through `head`.
    free_account: u32,
    by_account: IdIndex,
    /// Good-till-time orders by (expiry, order id): the order in which they expire.
    expiries: BTreeSet<(u64, u64)>,
}

impl OrderStore {
    fn with_capacity(orders: usize) -> Self {
        OrderStore {
            slots: Vec::with_capacity(orders),
            free: NIL,
            live: 0,
            by_id: IdIndex::with_capacity(orders),
            accounts: Vec::new(),
            free_account: NIL,
            by_account: IdIndex::with_capacity(16),
            expiries: BTreeSet::new(),
        }
    }

    #[inline]
    fn find(&self, id: OrderId) -> Option<u32> {
        self.by_id.get(id.0)
    }

    /// Puts an order into the arena and its indexes (not into a level).
    #[inline]
    fn insert(&mut self, mut order: OrderSlot) -> u32 {
        order.account_slot = self.account_entry(order.account);
        let slot = if self.free != NIL {
            let slot = self.free;
            self.free = self.slots[slot as usize].next;
            self.slots[slot as usize] = order;
            slot
        } else {
            // Slot numbers are u32 with NIL reserved: 4 billion resting orders would
            // need 300 GiB of arena first.
            assert!(self.slots.len() < NIL as usize, "order arena full");
            self.slots.push(order);
            (self.slots.len() - 1) as u32
        };
        self.by_id.insert_new(order.id, slot);
        self.link_account_tail(slot);
        if order.good_till_time {
            self.expiries.insert((order.expires_at, order.id));
        }
        self.live += 1;
        slot
    }

    /// Takes an order out of the arena and its indexes; it must already be out of
    /// its level.
    #[inline]
    fn release(&mut self, slot: u32) {
        let order = self.slots[slot as usize];
        self.by_id.remove(order.id);
        self.unlink_account(slot);
        if order.good_till_time {
            self.expiries.remove(&(order.expires_at, order.id));
        }
        self.slots[slot as usize].next = self.free;
        self.free = slot;
        self.live -= 1;
    }

    #[inline]
    fn account_entry(&mut self, account: u64) -> u32 {
        if let Some(entry) = self.by_account.get(account) {
            return entry;
        }
        let fresh = AccountOrders {
            account,
            head: NIL,
            tail: NIL,
            count: 0,
        };
        let entry = if self.free_account != NIL {
            let entry = self.free_account;
            self.free_account = self.accounts[entry as usize].head;
            self.accounts[entry as usize] = fresh;
            entry
        } else {
            self.accounts.push(fresh);
            (self.accounts.len() - 1) as u32
        };
        self.by_account.insert_new(account, entry);
        entry
    }

    #[inline]
    fn link_account_tail(&mut self, slot: u32) {
        let entry = self.slots[slot as usize].account_slot;
        let list = &mut self.accounts[entry as usize];
        let tail = list.tail;
        list.tail = slot;
        if tail == NIL {
            list.head = slot;
        }
        list.count += 1;
        if tail != NIL {
            self.slots[tail as usize].account_next = slot;
        }
        let order = &mut self.slots[slot as usize];
        order.account_prev = tail;
        order.account_next = NIL;
    }

    /// Moves an order to the back of its account's list (it just lost priority).
    fn move_to_account_tail(&mut self, slot: u32) {
        let OrderSlot {
            account_prev: prev,
            account_next: next,
            account_slot: entry,
            ..
        } = self.slots[slot as usize];
        if next == NIL {
            return; // already the last
        }
        if prev == NIL {
            self.accounts[entry as usize].head = next;
        } else {
            self.slots[prev as usize].account_next = next;
        }
        self.slots[next as usize].account_prev = prev;
        self.accounts[entry as usize].count -= 1;
        self.link_account_tail(slot);
    }

    #[inline]
    fn unlink_account(&mut self, slot: u32) {
        let OrderSlot {
            account_prev: prev,
            account_next: next,
            account_slot: entry,
            ..
        } = self.slots[slot as usize];
        if prev != NIL {
            self.slots[prev as usize].account_next = next;
        }
        if next != NIL {
            self.slots[next as usize].account_prev = prev;
        }
        let list = &mut self.accounts[entry as usize];
        if prev == NIL {
            list.head = next;
        }
        if next == NIL {
            list.tail = prev;
        }
        list.count -= 1;
        if list.count == 0 {
            let account = list.account;
            list.head = self.free_account;
            self.free_account = entry;
            self.by_account.remove(account);
        }
    }

    fn view(&self, slot: u32) -> OrderView {
        let o = &self.slots[slot as usize];
        OrderView {
            id: OrderId(o.id),
            account: AccountId(o.account),
            side: o.side,
            price: Price(o.price),
            leaves: Quantity(o.leaves),
            filled: Quantity(o.filled),
            time_in_force: if o.good_till_time {
                TimeInForce::Gtt(Timestamp(o.expires_at))
            } else {
                TimeInForce::Gtc
            },
            priority: o.priority,
        }
    }
}

/// Appends `slot` to the back of `level`'s queue.
#[inline]
fn push_back(slots: &mut [OrderSlot], level: &mut Level, slot: u32) {
    let tail = level.tail;
    {
        let order = &mut slots[slot as usize];
        order.prev = tail;
        order.next = NIL;
        level.total += order.leaves;
    }
    if tail == NIL {
        level.head = slot;
    } else {
        slots[tail as usize].next = slot;
    }
    level.tail = slot;
    level.count += 1;
}

/// Takes `slot` out of `level`'s queue, wherever it is.
#[inline]
fn unlink(slots: &mut [OrderSlot], level: &mut Level, slot: u32) {
    let OrderSlot {
        prev, next, leaves, ..
    } = slots[slot as usize];
    if prev == NIL {
        level.head = next;
    } else {
        slots[prev as usize].next = next;
    }
    if next == NIL {
        level.tail = prev;
    } else {
        slots[next as usize].prev = prev;
    }
    level.count -= 1;
    level.total -= leaves;
}

/// The ladder key of a price: larger is better on either side.
#[inline]
fn key_of(side: Side, price: i64) -> i64 {
    match side {
        Side::Buy => price,
        Side::Sell => -price,
    }
}

#[inline]
fn price_of(side: Side, key: i64) -> i64 {
    key_of(side, key)
}

fn valid_price(price: i64) -> bool {
    (1..=Price::MAX.0).contains(&price)
}

fn valid_quantity(quantity: u64) -> bool {
    (1..=Quantity::MAX.0).contains(&quantity)
}

/// How a taker's matching ended.
enum TakerEnd {
    /// Filled, or no more liquidity within its limit.
    Matched,
    /// Self-trade prevention canceled the taker's rest.
    SelfTradeCanceled,
}

/// The order book of one instrument.
///
/// Apply commands with [`OrderBook::apply`] (or the method per command); each writes
/// the events it caused to a buffer the caller owns and clears, so a warmed-up book
/// does not allocate. See `docs/ARCHITECTURE.md` for the invariants it keeps.
#[derive(Debug, Clone)]
pub struct OrderBook {
    store: OrderStore,
    /// Indexed by [`Side::index`]: bids, asks.
    sides: [Ladder; 2],
    next_priority: u64,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook::new()
    }
}

impl OrderBook {
    /// An empty book with the default [`BookConfig`].
    pub fn new() -> Self {
        OrderBook::with_config(BookConfig::default())
    }

    /// An empty book sized by `config`.
    pub fn with_config(config: BookConfig) -> Self {
        let ladder = Ladder::new(config.initial_window_ticks, config.max_window_ticks);
        OrderBook {
            store: OrderStore::with_capacity(config.expected_orders),
            sides: [ladder.clone(), ladder],
            next_priority: 0,
        }
    }

    /// Applies one command, appending its events to `events`.
    pub fn apply(&mut self, command: &Command, events: &mut Vec<Event>) {
        match *command {
            Command::Submit(ref order) => self.submit(order, events),
            Command::Cancel { order_id } => self.cancel(order_id, events),
            Command::CancelAll { account, side } => self.cancel_all(account, side, events),
            Command::Amend {
                order_id,
                price,
                quantity,
            } => self.amend(order_id, price, quantity, events),
            Command::Expire { now } => self.expire(now, events),
        }
    }

    /// Submits a new order: validates it, matches it, and rests or cancels the rest.
    pub fn submit(&mut self, order: &NewOrder, events: &mut Vec<Event>) {
        let crosses = match self.check_new_order(order) {
            Ok(crosses) => crosses,
            Err(reason) => {
                events.push(Event::Rejected {
                    order_id: order.id,
                    reason,
                });
                return;
            }
        };
        let limit = match order.order_type {
            OrderType::Limit(price) => Some(price),
            OrderType::Market => None,
        };
        events.push(Event::Accepted {
            order_id: order.id,
            account: order.account,
            side: order.side,
            price: limit,
            quantity: order.quantity,
        });
        let (leaves, end) = if crosses {
            self.take(order, events)
        } else {
            (order.quantity.0, TakerEnd::Matched)
        };
        if leaves == 0 {
            return;
        }
        let reason = match (end, order.time_in_force, limit) {
            (TakerEnd::SelfTradeCanceled, _, _) => CancelReason::SelfTradePrevention,
            (TakerEnd::Matched, TimeInForce::Gtc | TimeInForce::Gtt(_), Some(price)) => {
                self.rest(order, price.0, leaves, events);
                return;
            }
            (TakerEnd::Matched, _, _) => CancelReason::Unfilled,
        };
        events.push(Event::Canceled {
            order_id: order.id,
            account: order.account,
            quantity: Quantity(leaves),
            reason,
        });
    }

    /// Everything that can reject a new order, checked before anything changes.
    /// Returns whether the order would take liquidity on arrival.
    fn check_new_order(&self, order: &NewOrder) -> Result<bool, RejectReason> {
        if !valid_quantity(order.quantity.0) {
            return Err(RejectReason::InvalidQuantity);
        }
        let limit = match order.order_type {
            OrderType::Limit(price) if !valid_price(price.0) => {
                return Err(RejectReason::InvalidPrice);
            }
            OrderType::Limit(price) => Some(price.0),
            OrderType::Market => None,
        };
        let can_rest = matches!(order.time_in_force, TimeInForce::Gtc | TimeInForce::Gtt(_));
        if (limit.is_none() && can_rest) || (order.post_only && (limit.is_none() || !can_rest)) {
            return Err(RejectReason::InvalidTimeInForce);
        }
        if self.store.find(order.id).is_some() {
            return Err(RejectReason::DuplicateOrderId);
        }
        let opposite = order.side.opposite();
        let crosses = self.sides[opposite.index()]
            .best_key()
            .is_some_and(|best| best >= threshold(opposite, limit));
        if order.post_only && crosses {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        if order.time_in_force == TimeInForce::Fok && !self.can_fill_completely(order, limit) {
            return Err(RejectReason::FillOrKillUnfillable);
        }
        Ok(crosses)
    }

    /// Whether matching `order` now would fill all of it, taking self-trade
    /// prevention into account exactly as [`OrderBook::take`] will.
    fn can_fill_completely(&self, order: &NewOrder, limit: Option<i64>) -> bool {
        let opposite = order.side.opposite();
        let threshold = threshold(opposite, limit);
        let mut need = order.quantity.0;
        let own_orders_rest = self.store.by_account.get(order.account.0).is_some();
        let slots = &self.store.slots;
        self.sides[opposite.index()].for_each_level(|key, level| {
            if key < threshold {
                return ControlFlow::Break(());
            }
            if !own_orders_rest {
                need = need.saturating_sub(level.total);
                return if need == 0 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                };
            }
            let mut at = level.head;
            while at != NIL {
                let maker = &slots[at as usize];
                if maker.account != order.account.0 {
                    need = need.saturating_sub(maker.leaves);
                    if need == 0 {
                        return ControlFlow::Break(());
                    }
                } else if order.self_trade_prevention != SelfTradePrevention::CancelMaker {
                    // The taker would be canceled here, short of its quantity.
                    return ControlFlow::Break(());
                }
                at = maker.next;
            }
            ControlFlow::Continue(())
        });
        need == 0
    }

    /// Matches `order` against the other side, best price first and in time
    /// priority within a price, never beyond its limit. Returns its unfilled rest.
    fn take(&mut self, order: &NewOrder, events: &mut Vec<Event>) -> (u64, TakerEnd) {
        let opposite = order.side.opposite();
        let limit = match order.order_type {
            OrderType::Limit(price) => Some(price.0),
            OrderType::Market => None,
        };
        let threshold = threshold(opposite, limit);
        let ladder = &mut self.sides[opposite.index()];
        let store = &mut self.store;
        let mut leaves = order.quantity.0;
        while leaves > 0 {
            let Some(key) = ladder.best_key() else {
                break;
            };
            if key < threshold {
                break;
            }
            let price = Price(price_of(opposite, key));
            let level = ladder.level_mut(key);
            let mut stopped = false;
            while leaves > 0 && level.head != NIL {
                let slot = level.head;
                let maker = &mut store.slots[slot as usize];
                if maker.account == order.account.0 {
                    if order.self_trade_prevention == SelfTradePrevention::CancelTaker {
                        stopped = true;
                        break;
                    }
                    events.push(Event::Canceled {
                        order_id: OrderId(maker.id),
                        account: AccountId(maker.account),
                        quantity: Quantity(maker.leaves),
                        reason: CancelReason::SelfTradePrevention,
                    });
                    unlink(&mut store.slots, level, slot);
                    store.release(slot);
                    if order.self_trade_prevention == SelfTradePrevention::CancelBoth {
                        stopped = true;
                        break;
                    }
                    continue;
                }
                let quantity = leaves.min(maker.leaves);
                maker.leaves -= quantity;
                maker.filled += quantity;
                leaves -= quantity;
                level.total -= quantity;
                events.push(Event::Traded {
                    maker_order_id: OrderId(maker.id),
                    taker_order_id: order.id,
                    maker_account: AccountId(maker.account),
                    taker_account: order.account,
                    price,
                    quantity: Quantity(quantity),
                    aggressor: order.side,
                    maker_leaves: Quantity(maker.leaves),
                    taker_leaves: Quantity(leaves),
                });
                if maker.leaves == 0 {
                    unlink(&mut store.slots, level, slot);
                    store.release(slot);
                }
            }
            if level.count == 0 {
                ladder.remove_empty_level(key);
            }
            if stopped {
                return (leaves, TakerEnd::SelfTradeCanceled);
            }
        }
        (leaves, TakerEnd::Matched)
    }

    /// Places the unfilled rest of an accepted limit order at the back of its level.
    fn rest(&mut self, order: &NewOrder, price: i64, leaves: u64, events: &mut Vec<Event>) {
        let (good_till_time, expires_at) = match order.time_in_force {
            TimeInForce::Gtt(at) => (true, at.0),
            _ => (false, 0),
        };
        let priority = self.next_priority;
        self.next_priority += 1;
        let slot = self.store.insert(OrderSlot {
            id: order.id.0,
            account: order.account.0,
            price,
            leaves,
            filled: order.quantity.0 - leaves,
            priority,
            expires_at,
            prev: NIL,
            next: NIL,
            account_prev: NIL,
            account_next: NIL,
            account_slot: NIL,
            side: order.side,
            good_till_time,
        });
        let level = self.sides[order.side.index()].level_for_insert(key_of(order.side, price));
        push_back(&mut self.store.slots, level, slot);
        events.push(Event::Rested {
            order_id: order.id,
            side: order.side,
            price: Price(price),
            quantity: Quantity(leaves),
        });
    }

    /// Takes a resting order out of its level and the store; returns what it was.
    fn remove_resting(&mut self, slot: u32) -> OrderSlot {
        let order = self.store.slots[slot as usize];
        let key = key_of(order.side, order.price);
        let ladder = &mut self.sides[order.side.index()];
        let level = ladder.level_mut(key);
        unlink(&mut self.store.slots, level, slot);
        if level.count == 0 {
            ladder.remove_empty_level(key);
        }
        self.store.release(slot);
        order
    }

    /// Cancels one resting order.
    pub fn cancel(&mut self, order_id: OrderId, events: &mut Vec<Event>) {
        let Some(slot) = self.store.find(order_id) else {
            events.push(Event::Rejected {
                order_id,
                reason: RejectReason::UnknownOrder,
            });
            return;
        };
        let order = self.remove_resting(slot);
        events.push(Event::Canceled {
            order_id,
            account: AccountId(order.account),
            quantity: Quantity(order.leaves),
            reason: CancelReason::Requested,
        });
    }

    /// Cancels every resting order of `account` (only on `side`, if given), in
    /// priority order.
    pub fn cancel_all(&mut self, account: AccountId, side: Option<Side>, events: &mut Vec<Event>) {
        let Some(entry) = self.store.by_account.get(account.0) else {
            return;
        };
        let mut at = self.store.accounts[entry as usize].head;
        while at != NIL {
            let next = self.store.slots[at as usize].account_next;
            if side.is_none_or(|s| s == self.store.slots[at as usize].side) {
                let order = self.remove_resting(at);
                events.push(Event::Canceled {
                    order_id: OrderId(order.id),
                    account,
                    quantity: Quantity(order.leaves),
                    reason: CancelReason::CancelAll,
                });
            }
            at = next;
        }
    }

    /// Changes a resting order's price and/or open quantity (see [`Command::Amend`]).
    pub fn amend(
        &mut self,
        order_id: OrderId,
        price: Option<Price>,
        quantity: Option<Quantity>,
        events: &mut Vec<Event>,
    ) {
        let reject = |events: &mut Vec<Event>, reason| {
            events.push(Event::Rejected { order_id, reason });
        };
        let Some(slot) = self.store.find(order_id) else {
            return reject(events, RejectReason::UnknownOrder);
        };
        let order = self.store.slots[slot as usize];
        let new_price = price.map_or(order.price, |p| p.0);
        let new_leaves = quantity.map_or(order.leaves, |q| q.0);
        if !valid_quantity(new_leaves) {
            return reject(events, RejectReason::InvalidQuantity);
        }
        if !valid_price(new_price) {
            return reject(events, RejectReason::InvalidPrice);
        }
        if new_price == order.price && new_leaves == order.leaves {
            return reject(events, RejectReason::AmendUnchanged);
        }
        let opposite = order.side.opposite();
        if new_price != order.price
            && self.sides[opposite.index()]
                .best_key()
                .is_some_and(|best| best >= threshold(opposite, Some(new_price)))
        {
            return reject(events, RejectReason::AmendWouldCross);
        }
        let kept_priority = new_price == order.price && new_leaves < order.leaves;
        let ladder = &mut self.sides[order.side.index()];
        let old_key = key_of(order.side, order.price);
        if kept_priority {
            ladder.level_mut(old_key).total -= order.leaves - new_leaves;
            self.store.slots[slot as usize].leaves = new_leaves;
        } else {
            let level = ladder.level_mut(old_key);
            unlink(&mut self.store.slots, level, slot);
            if level.count == 0 {
                ladder.remove_empty_level(old_key);
            }
            {
                let moved = &mut self.store.slots[slot as usize];
                moved.price = new_price;
                moved.leaves = new_leaves;
                moved.priority = self.next_priority;
            }
            self.next_priority += 1;
            let level = ladder.level_for_insert(key_of(order.side, new_price));
            push_back(&mut self.store.slots, level, slot);
            // The account list is kept in priority order too.
            self.store.move_to_account_tail(slot);
        }
        events.push(Event::Amended {
            order_id,
            price: Price(new_price),
            quantity: Quantity(new_leaves),
            kept_priority,
        });
    }

    /// Expires every good-till-time order due at `now`, earliest expiry first.
    pub fn expire(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        while let Some(&(expires_at, id)) = self.store.expiries.first() {
            if expires_at > now.0 {
                break;
            }
            let slot = self
                .store
                .find(OrderId(id))
                .expect("every expiry entry names a resting order");
            let order = self.remove_resting(slot);
            events.push(Event::Expired {
                order_id: OrderId(id),
                account: AccountId(order.account),
                quantity: Quantity(order.leaves),
            });
        }
    }

    /// The highest bid price.
    pub fn best_bid(&self) -> Option<Price> {
        self.best(Side::Buy)
    }

    /// The lowest ask price.
    pub fn best_ask(&self) -> Option<Price> {
        self.best(Side::Sell)
    }

    /// The best price of `side`.
    pub fn best(&self, side: Side) -> Option<Price> {
        self.sides[side.index()]
            .best_key()
            .map(|key| Price(price_of(side, key)))
    }

    /// Appends up to `levels` aggregated levels of `side` to `out`, best first.
    pub fn depth_into(&self, side: Side, levels: usize, out: &mut Vec<DepthLevel>) {
        let mut left = levels;
        if left == 0 {
            return;
        }
        self.sides[side.index()].for_each_level(|key, level| {
            out.push(DepthLevel {
                price: Price(price_of(side, key)),
                quantity: Quantity(level.total),
                orders: level.count,
            });
            left -= 1;
            if left == 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }

    /// The best `levels` levels of each side, aggregated.
    pub fn depth(&self, levels: usize) -> Depth {
        let mut depth = Depth::default();
        self.depth_into(Side::Buy, levels, &mut depth.bids);
        self.depth_into(Side::Sell, levels, &mut depth.asks);
        depth
    }

    /// The resting order with this id.
    pub fn order(&self, order_id: OrderId) -> Option<OrderView> {
        self.store.find(order_id).map(|slot| self.store.view(slot))
    }

    /// The resting orders of `account`, in priority order.
    pub fn open_orders(&self, account: AccountId) -> impl Iterator<Item = OrderView> + '_ {
        let mut at = match self.store.by_account.get(account.0) {
            Some(entry) => self.store.accounts[entry as usize].head,
            None => NIL,
        };
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let view = self.store.view(at);
            at = self.store.slots[at as usize].account_next;
            Some(view)
        })
    }

    /// The orders resting at one price, in queue (time priority) order.
    pub fn orders_at(&self, side: Side, price: Price) -> impl Iterator<Item = OrderView> + '_ {
        let mut at = if valid_price(price.0) {
            self.sides[side.index()]
                .level(key_of(side, price.0))
                .map_or(NIL, |level| level.head)
        } else {
            NIL
        };
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let view = self.store.view(at);
            at = self.store.slots[at as usize].next;
            Some(view)
        })
    }

    /// How many orders rest on the book.
    pub fn len(&self) -> usize {
        self.store.live
    }

    /// True when no order rests.
    pub fn is_empty(&self) -> bool {
        self.store.live == 0
    }

    /// How many price levels `side` has.
    pub fn level_count(&self, side: Side) -> usize {
        self.sides[side.index()].len()
    }

    /// A hash of the book's state that is the same on every run, machine and Rust
    /// version: FNV-1a over the bids then the asks, level by level from the best,
    /// each order in queue order with its id, account, open and filled quantity,
    /// priority and expiry, plus the next priority number. It depends on what the
    /// book holds, not on where it keeps it (arena slots, window position).
    pub fn state_hash(&self) -> u64 {
        let mut hash = Fnv1a::new();
        hash.write_u64(self.next_priority);
        for side in [Side::Buy, Side::Sell] {
            hash.write_u64(side.index() as u64);
            hash.write_u64(self.sides[side.index()].len() as u64);
            self.sides[side.index()].for_each_level(|key, level| {
                hash.write_i64(price_of(side, key));
                hash.write_u64(u64::from(level.count));
                let mut at = level.head;
                while at != NIL {
                    let o = &self.store.slots[at as usize];
                    hash.write_u64(o.id);
                    hash.write_u64(o.account);
                    hash.write_u64(o.leaves);
                    hash.write_u64(o.filled);
                    hash.write_u64(o.priority);
                    hash.write_u64(u64::from(o.good_till_time));
                    hash.write_u64(o.expires_at);
                    at = o.next;
                }
                ControlFlow::Continue(())
            });
        }
        hash.finish()
    }

    /// Heap the book holds.
    pub fn memory_usage(&self) -> MemoryUsage {
        let order_slot_bytes = std::mem::size_of::<OrderSlot>();
        let arena_bytes = self.store.slots.capacity() * order_slot_bytes;
        let index_bytes = self.store.by_id.heap_bytes() + self.store.by_account.heap_bytes();
        let level_bytes = self.sides.iter().map(Ladder::heap_bytes).sum();
        let account_bytes = self.store.accounts.capacity() * std::mem::size_of::<AccountOrders>()
            + self.store.expiries.len() * 32;
        MemoryUsage {
            order_slot_bytes,
            order_slot_capacity: self.store.slots.capacity(),
            id_index_entry_bytes: IdIndex::entry_bytes(),
            arena_bytes,
            index_bytes,
            level_bytes,
            account_bytes,
            total_bytes: arena_bytes + index_bytes + level_bytes + account_bytes,
        }
    }

    /// Checks every internal invariant in O(orders + window). For tests and
    /// debugging; a book built only through its public API always passes.
    pub fn audit(&self) -> Result<(), String> {
        if let (Some(bid), Some(ask)) = (self.best_bid(), self.best_ask())
            && bid >= ask
        {
            return Err(format!("book crossed: bid {bid} >= ask {ask}"));
        }
        let mut seen = 0usize;
        let mut good_till_time = 0usize;
        for side in [Side::Buy, Side::Sell] {
            let ladder = &self.sides[side.index()];
            ladder.audit()?;
            let mut result = Ok(());
            let mut previous_key = None;
            ladder.for_each_level(|key, level| {
                result = self.audit_level(side, key, level, &mut seen, &mut good_till_time);
                if previous_key.is_some_and(|p| p <= key) {
                    result = Err(format!("levels of {side:?} out of order at key {key}"));
                }
                previous_key = Some(key);
                if result.is_err() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            result?;
        }
        if seen != self.store.live {
            return Err(format!("{seen} orders in levels, {} live", self.store.live));
        }
        if good_till_time != self.store.expiries.len() {
            return Err("expiry index does not match the GTT orders".to_string());
        }
        let mut in_accounts = 0usize;
        for (entry, list) in self.store.accounts.iter().enumerate() {
            if self.store.by_account.get(list.account) != Some(entry as u32) {
                continue; // a free entry
            }
            let (mut at, mut previous, mut count) = (list.head, NIL, 0u32);
            let mut last_priority = None;
            while at != NIL {
                let o = &self.store.slots[at as usize];
                if o.account != list.account || o.account_slot != entry as u32 {
                    return Err(format!("order {} in the wrong account list", o.id));
                }
                if o.account_prev != previous {
                    return Err(format!("broken account links at order {}", o.id));
                }
                if last_priority.is_some_and(|p| p >= o.priority) {
                    return Err(format!("account list out of priority at {}", o.id));
                }
                last_priority = Some(o.priority);
                previous = at;
                count += 1;
                at = o.account_next;
            }
            if list.tail != previous || list.count != count || count == 0 {
                return Err(format!("account {} list ends or count wrong", list.account));
            }
            in_accounts += count as usize;
        }
        if in_accounts != self.store.live {
            return Err("account lists do not hold every live order".to_string());
        }
        Ok(())
    }

    fn audit_level(
        &self,
        side: Side,
        key: i64,
        level: &Level,
        seen: &mut usize,
        good_till_time: &mut usize,
    ) -> Result<(), String> {
        let price = price_of(side, key);
        let (mut at, mut previous, mut count, mut total) = (level.head, NIL, 0u32, 0u64);
        let mut last_priority = None;
        while at != NIL {
            let o = &self.store.slots[at as usize];
            if o.side != side || o.price != price {
                return Err(format!("order {} at the wrong level {price}", o.id));
            }
            if o.prev != previous {
                return Err(format!("broken queue links at order {}", o.id));
            }
            if o.leaves == 0 {
                return Err(format!("order {} rests with nothing left", o.id));
            }
            if last_priority.is_some_and(|p| p >= o.priority) || o.priority >= self.next_priority {
                return Err(format!("queue at {price} out of time priority at {}", o.id));
            }
            if self.store.by_id.get(o.id) != Some(at) {
                return Err(format!("id index does not point at order {}", o.id));
            }
            if o.good_till_time {
                if !self.store.expiries.contains(&(o.expires_at, o.id)) {
                    return Err(format!("GTT order {} missing from expiries", o.id));
                }
                *good_till_time += 1;
            }
            last_priority = Some(o.priority);
            previous = at;
            count += 1;
            total += o.leaves;
            *seen += 1;
            at = o.next;
        }
        if level.tail != previous || level.count != count || level.total != total {
            return Err(format!("level {price} aggregates or tail wrong"));
        }
        Ok(())
    }
}

/// The smallest key on the `opposite` ladder that a taker with this limit may
/// trade with (a buy limit `p` takes asks priced `<= p`, i.e. keys `>= -p`).
#[inline]
fn threshold(opposite: Side, limit: Option<i64>) -> i64 {
    match limit {
        Some(price) => key_of(opposite, price),
        None => i64::MIN,
    }
}
