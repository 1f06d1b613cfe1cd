//! The instrument catalog: reference data served from memory.
//!
//! Instruments change rarely (an admin creates or halts one) and are read on every
//! market-data and order request, so each node keeps a sorted snapshot. It is loaded at
//! start, replaced at once after a local admin write, and reloaded periodically so that
//! writes made through another node show up within the refresh interval.

use std::sync::{Arc, RwLock};

use bourse_store::{InstrumentQuery, MAX_PAGE_SIZE, Page, Store, StoreError};
use bourse_types::{Instrument, Symbol};

/// A shared, cheap-to-clone handle to the snapshot.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    snapshot: Arc<RwLock<Arc<Vec<Instrument>>>>,
}

impl Catalog {
    /// Loads every instrument from the store, replacing the snapshot.
    pub async fn reload(&self, store: &Store) -> Result<usize, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_instruments(&InstrumentQuery {
                    after,
                    limit: MAX_PAGE_SIZE,
                    ..Default::default()
                })
                .await?;
            all.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let n = all.len();
        self.replace(all);
        Ok(n)
    }

    fn replace(&self, mut all: Vec<Instrument>) {
        all.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let fresh = Arc::new(all);
        match self.snapshot.write() {
            Ok(mut g) => *g = fresh,
            // A writer never panics while holding the lock (it only swaps an Arc), but
            // recover the guard rather than serve a stale snapshot forever.
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    fn current(&self) -> Arc<Vec<Instrument>> {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Adds or replaces one instrument after a successful store write.
    pub fn upsert(&self, i: Instrument) {
        let mut all = (*self.current()).clone();
        all.retain(|x| x.symbol != i.symbol);
        all.push(i);
        self.replace(all);
    }

    /// One instrument by symbol.
    pub fn get(&self, symbol: &Symbol) -> Option<Instrument> {
        let all = self.current();
        all.binary_search_by(|i| i.symbol.cmp(symbol))
            .ok()
            .map(|ix| all[ix].clone())
    }

    /// A page in symbol order, with the same semantics as the store's listing.
    pub fn list(&self, q: &InstrumentQuery) -> Page<Instrument, Symbol> {
        let all = self.current();
        let start = match &q.after {
            Some(after) => all.partition_point(|i| i.symbol <= *after),
            None => 0,
        };
        let limit = q.limit.clamp(1, MAX_PAGE_SIZE) as usize;
        let mut items: Vec<Instrument> = all[start..]
            .iter()
            .filter(|i| q.kind.is_none_or(|k| i.kind == k))
            .filter(|i| q.status.is_none_or(|s| i.status == s))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| i.symbol.clone())
        } else {
            None
        };
        Page { items, next }
    }
}
