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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Depth {
    /// Bids, best (highest) first.
    pub bids: Vec<DepthLevel>,
    /// Asks, best (lowest) first.
    pub asks: Vec<DepthLevel>,
}

/// Heap held by a book, for capacity planning and the benchmark's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemoryUsage {
    /// Size of one order slot in the arena.
    pub order_slot_bytes: usize,
    /// Slots the arena has room for.
    pub order_slot_capacity: usize,
    /// Size of one entry of the order-id index (which is kept at most half full).
    pub id_index_entry_bytes: usize,
    /// Size of one price level in a side's window (one per tick of the window).
    pub price_level_bytes: usize,
    /// Bytes of the order arena.
    pub arena_bytes: usize,
    /// Bytes of the order-id and account-id indexes.
    pub index_bytes: usize,
    /// Bytes of both sides' price levels and occupancy bitmaps.
    pub level_bytes: usize,
    /// Bytes of the per-account order lists, the expiry index and scratch space.
    pub account_bytes: usize,
    /// Everything above.
    pub total_bytes: usize,
}

/// A resting order in the arena. Linked into its level's FIFO queue (`prev`/`next`,
/// slot indexes) and listed at `account_pos` in its account's slot list, so removing
/// it from anywhere is O(1). A free slot links the free list by `next`.
///
/// Exactly one cache line: matching and cancels touch slots all over the arena, so
/// each one costs one line, never two. That is why quantities are `u32` (see
/// [`Quantity::MAX`]) and the account is the index of its entry in the account table
/// (`account_slot`), not the 8-byte id.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(align(64))]
struct OrderSlot {
    id: u64,
    price: i64,
    priority: u64,
    expires_at: u64,
    leaves: u32,
    filled: u32,
    prev: u32,
    next: u32,
    account_slot: u32,
    account_pos: u32,
    side: Side,
    good_till_time: bool,
}

const _: () = assert!(std::mem::size_of::<OrderSlot>() == 64);

/// The resting orders of one account, in no particular order (listings sort them by
/// priority). Removal swaps the last slot into the hole: that slot is usually the
/// account's newest order, still in cache, where a linked list in the arena would
/// cost two cold neighbours per removal.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct AccountOrders {
    account: u64,
    slots: Vec<u32>,
    /// Next free entry while this one is unused.
    next_free: u32,
}

/// Where the orders live: an arena with a free list, plus the indexes into it.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct OrderStore {
    slots: Vec<OrderSlot>,
    free: u32,
    live: usize,
    by_id: IdIndex,
    /// The largest id that ever rested: no resting order has a larger one.
    max_id: Option<u64>,
    /// Entries are reused (with their list's capacity) once their account has no
    /// more resting orders.
    accounts: Vec<AccountOrders>,
    /// Free entries of `accounts`, linked through `next_free`.
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
            max_id: None,
            accounts: Vec::new(),
            free_account: NIL,
            by_account: IdIndex::with_capacity(16),
            expiries: BTreeSet::new(),
        }
    }

    #[inline]
    fn find(&self, id: OrderId) -> Option<u32> {
        self.by_id
            .get(id.0, |slot| self.slots[slot as usize].id == id.0)
    }

    /// The account table entry of `account`, if it has resting orders.
    #[inline]
    fn find_account(&self, account: AccountId) -> Option<u32> {
        self.by_account.get(account.0, |entry| {
            self.accounts[entry as usize].account == account.0
        })
    }

    #[inline]
    fn account_of(&self, slot: u32) -> AccountId {
        AccountId(self.accounts[self.slots[slot as usize].account_slot as usize].account)
    }

    /// Puts an order of `account` into the arena and its indexes (not into a level).
    #[inline]
    fn insert(&mut self, account: AccountId, mut order: OrderSlot) -> u32 {
        order.account_slot = self.account_entry(account);
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
        self.max_id = self.max_id.max(Some(order.id));
        let list = &mut self.accounts[order.account_slot as usize].slots;
        self.slots[slot as usize].account_pos = list.len() as u32;
        list.push(slot);
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
        self.by_id.remove(order.id, |s| s == slot);
        self.unlink_account(slot);
        if order.good_till_time {
            self.expiries.remove(&(order.expires_at, order.id));
        }
        self.slots[slot as usize].next = self.free;
        self.free = slot;
        self.live -= 1;
    }

    #[inline]
    fn account_entry(&mut self, account: AccountId) -> u32 {
        if let Some(entry) = self.find_account(account) {
            return entry;
        }
        let entry = if self.free_account != NIL {
            let entry = self.free_account;
            let reused = &mut self.accounts[entry as usize];
            self.free_account = reused.next_free;
            reused.account = account.0;
            reused.next_free = NIL;
            entry
        } else {
            self.accounts.push(AccountOrders {
                account: account.0,
                slots: Vec::new(),
                next_free: NIL,
            });
            (self.accounts.len() - 1) as u32
        };
        self.by_account.insert_new(account.0, entry);
        entry
    }

    #[inline]
    fn unlink_account(&mut self, slot: u32) {
        let OrderSlot {
            account_slot: entry,
            account_pos: pos,
            ..
        } = self.slots[slot as usize];
        let list = &mut self.accounts[entry as usize];
        let last = list
            .slots
            .pop()
            .expect("a resting order is in its account list");
        if last != slot {
            list.slots[pos as usize] = last;
            self.slots[last as usize].account_pos = pos;
        }
        if list.slots.is_empty() {
            let account = list.account;
            list.next_free = self.free_account;
            self.free_account = entry;
            self.by_account.remove(account, |e| e == entry);
        }
    }

    /// The slots of `account`'s resting orders, in priority order, into `out`.
    fn account_slots_by_priority(&self, account: AccountId, out: &mut Vec<u32>) {
        out.clear();
        if let Some(entry) = self.find_account(account) {
            out.extend_from_slice(&self.accounts[entry as usize].slots);
            out.sort_unstable_by_key(|&slot| self.slots[slot as usize].priority);
        }
    }

    fn view(&self, slot: u32) -> OrderView {
        let o = &self.slots[slot as usize];
        OrderView {
            id: OrderId(o.id),
            account: self.account_of(slot),
            side: o.side,
            price: Price(o.price),
            leaves: Quantity(u64::from(o.leaves)),
            filled: Quantity(u64::from(o.filled)),
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
        level.total += u64::from(order.leaves);
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
    level.total -= u64::from(leaves);
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderBook {
    store: OrderStore,
    /// Indexed by [`Side::index`]: bids, asks.
    sides: [Ladder; 2],
    next_priority: u64,
    /// Reused by `cancel_all`, so that it does not allocate once warm. Empty between
    /// commands, so a snapshot leaves it out.
    #[cfg_attr(feature = "serde", serde(skip))]
    scratch: Vec<u32>,
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
            scratch: Vec::new(),
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
        // Ids usually come from a sequence: one above every id that ever rested cannot
        // be on the book, and skipping the index probe saves a cache miss per add.
        if self.store.max_id.is_some_and(|max| order.id.0 <= max)
            && self.store.find(order.id).is_some()
        {
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
        let own = self.store.find_account(order.account);
        let slots = &self.store.slots;
        self.sides[opposite.index()].for_each_level(|key, level| {
            if key < threshold {
                return ControlFlow::Break(());
            }
            let Some(own) = own else {
                // No resting order of the taker's account: every lot can trade.
                need = need.saturating_sub(level.total);
                return if need == 0 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                };
            };
            let mut at = level.head;
            while at != NIL {
                let maker = &slots[at as usize];
                if maker.account_slot != own {
                    need = need.saturating_sub(u64::from(maker.leaves));
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
        // Self-trade is only possible if the taker's account has resting orders; its
        // makers are recognised by their account table entry (NIL matches none).
        let own = self.store.find_account(order.account).unwrap_or(NIL);
        let ladder = &mut self.sides[opposite.index()];
        let store = &mut self.store;
        // At most Quantity::MAX, so it fits the u32 leaves of the makers.
        let mut leaves = order.quantity.0 as u32;
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
                if maker.account_slot == own {
                    if order.self_trade_prevention == SelfTradePrevention::CancelTaker {
                        stopped = true;
                        break;
                    }
                    events.push(Event::Canceled {
                        order_id: OrderId(maker.id),
                        account: order.account,
                        quantity: Quantity(u64::from(maker.leaves)),
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
                level.total -= u64::from(quantity);
                let (maker_id, maker_leaves, maker_entry) =
                    (maker.id, maker.leaves, maker.account_slot);
                events.push(Event::Traded {
                    maker_order_id: OrderId(maker_id),
                    taker_order_id: order.id,
                    maker_account: AccountId(store.accounts[maker_entry as usize].account),
                    taker_account: order.account,
                    price,
                    quantity: Quantity(u64::from(quantity)),
                    aggressor: order.side,
                    maker_leaves: Quantity(u64::from(maker_leaves)),
                    taker_leaves: Quantity(u64::from(leaves)),
                });
                if maker_leaves == 0 {
                    unlink(&mut store.slots, level, slot);
                    store.release(slot);
                }
            }
            if level.count == 0 {
                ladder.remove_empty_level(key);
            }
            if stopped {
                return (u64::from(leaves), TakerEnd::SelfTradeCanceled);
            }
        }
        (u64::from(leaves), TakerEnd::Matched)
    }

    /// Places the unfilled rest of an accepted limit order at the back of its level.
    fn rest(&mut self, order: &NewOrder, price: i64, leaves: u64, events: &mut Vec<Event>) {
        let (good_till_time, expires_at) = match order.time_in_force {
            TimeInForce::Gtt(at) => (true, at.0),
            _ => (false, 0),
        };
        let priority = self.next_priority;
        self.next_priority += 1;
        // Both are at most the order's quantity, which is at most Quantity::MAX.
        let slot = self.store.insert(
            order.account,
            OrderSlot {
                id: order.id.0,
                price,
                priority,
                expires_at,
                leaves: leaves as u32,
                filled: (order.quantity.0 - leaves) as u32,
                prev: NIL,
                next: NIL,
                account_slot: NIL,
                account_pos: NIL,
                side: order.side,
                good_till_time,
            },
        );
        let level = self.sides[order.side.index()].level_for_insert(key_of(order.side, price));
        push_back(&mut self.store.slots, level, slot);
        events.push(Event::Rested {
            order_id: order.id,
            side: order.side,
            price: Price(price),
            quantity: Quantity(leaves),
        });
    }

    /// Takes a resting order out of its level and the store; returns what it was and
    /// its account.
    fn remove_resting(&mut self, slot: u32) -> (OrderSlot, AccountId) {
        let order = self.store.slots[slot as usize];
        let account = self.store.account_of(slot);
        let key = key_of(order.side, order.price);
        let ladder = &mut self.sides[order.side.index()];
        let level = ladder.level_mut(key);
        unlink(&mut self.store.slots, level, slot);
        if level.count == 0 {
            ladder.remove_empty_level(key);
        }
        self.store.release(slot);
        (order, account)
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
        let (order, account) = self.remove_resting(slot);
        events.push(Event::Canceled {
            order_id,
            account,
            quantity: Quantity(u64::from(order.leaves)),
            reason: CancelReason::Requested,
        });
    }

    /// Cancels every resting order of `account` (only on `side`, if given), in
    /// priority order.
    pub fn cancel_all(&mut self, account: AccountId, side: Option<Side>, events: &mut Vec<Event>) {
        let mut slots = std::mem::take(&mut self.scratch);
        self.store.account_slots_by_priority(account, &mut slots);
        for &slot in &slots {
            if side.is_none_or(|s| s == self.store.slots[slot as usize].side) {
                let (order, _) = self.remove_resting(slot);
                events.push(Event::Canceled {
                    order_id: OrderId(order.id),
                    account,
                    quantity: Quantity(u64::from(order.leaves)),
                    reason: CancelReason::CancelAll,
                });
            }
        }
        self.scratch = slots;
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
        let leaves = u64::from(order.leaves);
        let new_price = price.map_or(order.price, |p| p.0);
        let new_leaves = quantity.map_or(leaves, |q| q.0);
        // What the order has traded counts against the limit too, so that `filled`
        // stays within Quantity::MAX.
        if !valid_quantity(new_leaves) || !valid_quantity(new_leaves + u64::from(order.filled)) {
            return reject(events, RejectReason::InvalidQuantity);
        }
        if !valid_price(new_price) {
            return reject(events, RejectReason::InvalidPrice);
        }
        if new_price == order.price && new_leaves == leaves {
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
        let kept_priority = new_price == order.price && new_leaves < leaves;
        let ladder = &mut self.sides[order.side.index()];
        let old_key = key_of(order.side, order.price);
        if kept_priority {
            ladder.level_mut(old_key).total -= leaves - new_leaves;
            self.store.slots[slot as usize].leaves = new_leaves as u32;
        } else {
            let level = ladder.level_mut(old_key);
            unlink(&mut self.store.slots, level, slot);
            if level.count == 0 {
                ladder.remove_empty_level(old_key);
            }
            {
                let moved = &mut self.store.slots[slot as usize];
                moved.price = new_price;
                moved.leaves = new_leaves as u32;
                moved.priority = self.next_priority;
            }
            self.next_priority += 1;
            let level = ladder.level_for_insert(key_of(order.side, new_price));
            push_back(&mut self.store.slots, level, slot);
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
            let (order, account) = self.remove_resting(slot);
            events.push(Event::Expired {
                order_id: OrderId(id),
                account,
                quantity: Quantity(u64::from(order.leaves)),
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

    /// The resting orders of `account`, in priority order. O(k log k) for k orders;
    /// allocates the list.
    pub fn open_orders(&self, account: AccountId) -> impl Iterator<Item = OrderView> + '_ {
        let mut slots = Vec::new();
        self.store.account_slots_by_priority(account, &mut slots);
        slots.into_iter().map(|slot| self.store.view(slot))
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
                    hash.write_u64(self.store.account_of(at).0);
                    hash.write_u64(u64::from(o.leaves));
                    hash.write_u64(u64::from(o.filled));
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
        // The expiry set is a B-tree: count its keys with a node's share of overhead.
        let account_bytes = self.store.accounts.capacity() * std::mem::size_of::<AccountOrders>()
            + self
                .store
                .accounts
                .iter()
                .map(|a| a.slots.capacity() * 4)
                .sum::<usize>()
            + self.store.expiries.len() * 32
            + self.scratch.capacity() * 4;
        MemoryUsage {
            order_slot_bytes,
            order_slot_capacity: self.store.slots.capacity(),
            id_index_entry_bytes: IdIndex::entry_bytes(),
            price_level_bytes: std::mem::size_of::<Level>(),
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
            if self.store.find_account(AccountId(list.account)) != Some(entry as u32) {
                if !list.slots.is_empty() {
                    return Err(format!("free account entry {entry} lists orders"));
                }
                continue;
            }
            if list.slots.is_empty() {
                return Err(format!("account {} indexed without orders", list.account));
            }
            for (pos, &slot) in list.slots.iter().enumerate() {
                let o = &self.store.slots[slot as usize];
                if o.account_slot != entry as u32 || o.account_pos != pos as u32 {
                    return Err(format!("order {} misplaced in its account list", o.id));
                }
                if self.store.find(OrderId(o.id)) != Some(slot) {
                    return Err(format!("account list names a dead slot {slot}"));
                }
            }
            in_accounts += list.slots.len();
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
            if self.store.find(OrderId(o.id)) != Some(at) || self.store.max_id < Some(o.id) {
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
            total += u64::from(o.leaves);
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
