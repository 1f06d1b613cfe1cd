//! Integration tests of `bourse-matching`, one binary (see `shared/style.md`).

mod lifecycle;
mod model;
mod ob1m;
mod properties;
mod rules;

use bourse_matching::*;

/// A book plus an event buffer; `run` returns the events of one command.
#[derive(Default)]
pub struct Harness {
    pub book: OrderBook,
    events: Vec<Event>,
}

impl Harness {
    pub fn new() -> Self {
        Harness::with_config(BookConfig::default())
    }

    pub fn with_config(config: BookConfig) -> Self {
        Harness {
            book: OrderBook::with_config(config),
            events: Vec::new(),
        }
    }

    pub fn run(&mut self, command: Command) -> Vec<Event> {
        self.events.clear();
        self.book.apply(&command, &mut self.events);
        if let Err(problem) = self.book.audit() {
            panic!("audit failed after {command:?}: {problem}");
        }
        self.events.clone()
    }

    pub fn submit(&mut self, order: NewOrder) -> Vec<Event> {
        self.run(Command::Submit(order))
    }

    /// Rests a GTC limit order and checks that it did rest.
    pub fn rest(&mut self, id: u64, account: u64, side: Side, price: i64, qty: u64) {
        let events = self.submit(limit(id, account, side, price, qty));
        assert!(
            matches!(events.last(), Some(Event::Rested { .. })),
            "order {id} did not rest: {events:?}"
        );
    }

    /// Ids at one price, in queue order.
    pub fn queue(&self, side: Side, price: i64) -> Vec<u64> {
        self.book
            .orders_at(side, Price(price))
            .map(|o| o.id.0)
            .collect()
    }
}

pub fn limit(id: u64, account: u64, side: Side, price: i64, qty: u64) -> NewOrder {
    NewOrder::limit(
        OrderId(id),
        AccountId(account),
        side,
        Price(price),
        Quantity(qty),
    )
}

pub fn market(id: u64, account: u64, side: Side, qty: u64) -> NewOrder {
    NewOrder::market(OrderId(id), AccountId(account), side, Quantity(qty))
}

/// The trades in `events` as (maker, taker, price, qty).
pub fn trades(events: &[Event]) -> Vec<(u64, u64, i64, u64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Traded {
                maker_order_id,
                taker_order_id,
                price,
                quantity,
                ..
            } => Some((maker_order_id.0, taker_order_id.0, price.0, quantity.0)),
            _ => None,
        })
        .collect()
}
