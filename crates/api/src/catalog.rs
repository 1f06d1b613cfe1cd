//! The instrument catalog: reference data served from memory.
//!
//! Instruments change rarely (an admin creates or halts one) and are read on every
//! market-data and order request, so each node keeps a sorted snapshot. It is loaded at
//! start, replaced at once after a local admin write, and reloaded periodically so that
//! writes made through another node show up within the refresh interval.
//!
//! Each instrument's JSON is encoded once when the snapshot is built, so a list or get
//! request only filters and concatenates pre-encoded bytes.

use std::sync::{Arc, RwLock};

use bourse_store::{InstrumentQuery, MAX_PAGE_SIZE, Page, Store, StoreError};
use bourse_types::{Instrument, Symbol};

/// One instrument and its JSON encoding.
#[derive(Debug, Clone)]
struct Entry {
    instrument: Instrument,
    json: Arc<str>,
}

impl Entry {
    fn new(instrument: Instrument) -> Self {
        // Serialising plain strings, enums and decimals cannot fail; fall back to an
        // empty object only to avoid a panic path.
        let json = serde_json::to_string(&instrument).unwrap_or_else(|_| "{}".to_owned());
        Self {
            instrument,
            json: json.into(),
        }
    }
}

/// A shared, cheap-to-clone handle to the snapshot.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    snapshot: Arc<RwLock<Arc<Vec<Entry>>>>,
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

    fn replace(&self, all: Vec<Instrument>) {
        let mut all: Vec<Entry> = all.into_iter().map(Entry::new).collect();
        all.sort_by(|a, b| a.instrument.symbol.cmp(&b.instrument.symbol));
        let fresh = Arc::new(all);
        match self.snapshot.write() {
            Ok(mut g) => *g = fresh,
            // A writer never panics while holding the lock (it only swaps an Arc), but
            // recover the guard rather than serve a stale snapshot forever.
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    fn current(&self) -> Arc<Vec<Entry>> {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Adds or replaces one instrument after a successful store write.
    pub fn upsert(&self, i: Instrument) {
        let mut all: Vec<Instrument> = self
            .current()
            .iter()
            .filter(|e| e.instrument.symbol != i.symbol)
            .map(|e| e.instrument.clone())
            .collect();
        all.push(i);
        self.replace(all);
    }

    /// Every instrument, by symbol.
    pub fn all(&self) -> Vec<Instrument> {
        self.current()
            .iter()
            .map(|e| e.instrument.clone())
            .collect()
    }

    /// One instrument by symbol.
    pub fn get(&self, symbol: &Symbol) -> Option<Instrument> {
        self.find(symbol, |e| e.instrument.clone())
    }

    /// One instrument's JSON encoding.
    pub fn get_json(&self, symbol: &Symbol) -> Option<Arc<str>> {
        self.find(symbol, |e| e.json.clone())
    }

    fn find<T>(&self, symbol: &Symbol, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        let all = self.current();
        all.binary_search_by(|e| e.instrument.symbol.cmp(symbol))
            .ok()
            .map(|ix| f(&all[ix]))
    }

    /// A page as the JSON document `{"data":[…],"next_cursor":…}`, built from the
    /// pre-encoded instruments; `cursor` encodes the next-page symbol.
    pub fn list_json(&self, q: &InstrumentQuery, cursor: impl Fn(&Symbol) -> String) -> String {
        let page = self.list_entries(q);
        let mut out =
            String::with_capacity(32 + page.items.iter().map(|e| e.json.len() + 1).sum::<usize>());
        out.push_str("{\"data\":[");
        for (i, e) in page.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&e.json);
        }
        out.push_str("],\"next_cursor\":");
        match &page.next {
            // Cursors are base64url: nothing to escape.
            Some(s) => {
                out.push('"');
                out.push_str(&cursor(s));
                out.push('"');
            }
            None => out.push_str("null"),
        }
        out.push('}');
        out
    }

    /// A page of entries in symbol order, with the same semantics as the store's listing.
    fn list_entries(&self, q: &InstrumentQuery) -> Page<Entry, Symbol> {
        let all = self.current();
        let start = match &q.after {
            Some(after) => all.partition_point(|e| e.instrument.symbol <= *after),
            None => 0,
        };
        let limit = q.limit.clamp(1, MAX_PAGE_SIZE) as usize;
        let mut items: Vec<Entry> = all[start..]
            .iter()
            .filter(|e| q.kind.is_none_or(|k| e.instrument.kind == k))
            .filter(|e| q.status.is_none_or(|s| e.instrument.status == s))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| e.instrument.symbol.clone())
        } else {
            None
        };
        Page { items, next }
    }
}
