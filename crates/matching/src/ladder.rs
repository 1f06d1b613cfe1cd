//! The price levels of one side of a book.
//!
//! Levels live in a dense window indexed by tick offset from a movable base, so
//! finding the level of a price is one subtraction. A two-level occupancy bitmap
//! finds the next best level in a few word scans when the best one empties. A price
//! outside the window makes the window move or grow (to at most `max_window` ticks);
//! a price too far from the rest of the side to fit at all goes to a `BTreeMap`
//! overflow, which keeps the book correct for any price at the cost of speed only for
//! those far-away levels.
//!
//! Prices are stored as *keys* where a larger key is always a better price: the price
//! itself for bids, its negation for asks. So one implementation serves both sides.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// "No slot": the end of a linked list.
pub(crate) const NIL: u32 = u32::MAX;
const NONE: usize = usize::MAX;

/// One price level: the ends of its FIFO queue of order slots, and aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Level {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) count: u32,
    pub(crate) total: u64,
}

impl Level {
    pub(crate) const EMPTY: Level = Level {
        head: NIL,
        tail: NIL,
        count: 0,
        total: 0,
    };
}

/// Which window levels are non-empty: one bit per level, plus a summary word per 64
/// words, so that a search skips 4096 empty levels per summary bit.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Occupancy {
    words: Vec<u64>,
    summary: Vec<u64>,
}

impl Occupancy {
    fn new(bits: usize) -> Self {
        let words = bits.div_ceil(64);
        Occupancy {
            words: vec![0; words],
            summary: vec![0; words.div_ceil(64)],
        }
    }

    #[inline]
    fn set(&mut self, i: usize) {
        let w = i >> 6;
        self.words[w] |= 1 << (i & 63);
        self.summary[w >> 6] |= 1 << (w & 63);
    }

    #[inline]
    fn clear(&mut self, i: usize) {
        let w = i >> 6;
        self.words[w] &= !(1 << (i & 63));
        if self.words[w] == 0 {
            self.summary[w >> 6] &= !(1 << (w & 63));
        }
    }

    /// The highest set bit at or below `i`.
    #[inline]
    fn last_at_or_below(&self, i: usize) -> Option<usize> {
        let w = i >> 6;
        let bits = self.words[w] & (u64::MAX >> (63 - (i & 63)));
        if bits != 0 {
            return Some((w << 6) | (63 - bits.leading_zeros() as usize));
        }
        if w == 0 {
            return None;
        }
        // Whole words below `w`, found through the summary.
        let below = w - 1;
        let mut s = below >> 6;
        let mut sbits = self.summary[s] & (u64::MAX >> (63 - (below & 63)));
        loop {
            if sbits != 0 {
                let word = (s << 6) | (63 - sbits.leading_zeros() as usize);
                let bits = self.words[word];
                return Some((word << 6) | (63 - bits.leading_zeros() as usize));
            }
            if s == 0 {
                return None;
            }
            s -= 1;
            sbits = self.summary[s];
        }
    }

    /// The lowest set bit.
    fn first(&self) -> Option<usize> {
        let s = self.summary.iter().position(|&x| x != 0)?;
        let word = (s << 6) | self.summary[s].trailing_zeros() as usize;
        Some((word << 6) | self.words[word].trailing_zeros() as usize)
    }

    fn heap_bytes(&self) -> usize {
        (self.words.capacity() + self.summary.capacity()) * 8
    }
}

/// The levels of one side.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Ladder {
    /// Key of window index 0.
    base: i64,
    /// Dense levels; the length is zero before the first order, then a power of two.
    window: Vec<Level>,
    occupied: Occupancy,
    /// Window index of the best non-empty window level, or `NONE`.
    best: usize,
    /// Levels whose keys lie outside the window (and only those).
    overflow: BTreeMap<i64, Level>,
    /// Number of non-empty levels, window and overflow.
    levels: usize,
    initial_window: usize,
    max_window: usize,
}

impl Ladder {
    pub(crate) fn new(initial_window: usize, max_window: usize) -> Self {
        let max_window = max_window.max(64).next_power_of_two();
        let initial_window = initial_window.clamp(64, max_window).next_power_of_two();
        Ladder {
            base: 0,
            window: Vec::new(),
            occupied: Occupancy::default(),
            best: NONE,
            overflow: BTreeMap::new(),
            levels: 0,
            initial_window,
            max_window,
        }
    }

    #[inline]
    fn window_index(&self, key: i64) -> Option<usize> {
        // Keys and the base stay within ±2^63 / 2, so the subtraction cannot overflow.
        let offset = key.wrapping_sub(self.base);
        if offset >= 0 && (offset as u64) < self.window.len() as u64 {
            Some(offset as usize)
        } else {
            None
        }
    }

    /// Number of non-empty levels.
    pub(crate) fn len(&self) -> usize {
        self.levels
    }

    /// The key of the best non-empty level.
    #[inline]
    pub(crate) fn best_key(&self) -> Option<i64> {
        let in_window = if self.best == NONE {
            None
        } else {
            Some(self.base + self.best as i64)
        };
        if self.overflow.is_empty() {
            return in_window;
        }
        let outside = self.overflow.last_key_value().map(|(&k, _)| k);
        in_window.max(outside)
    }

    /// The level at `key`, if it holds orders.
    #[inline]
    pub(crate) fn level(&self, key: i64) -> Option<&Level> {
        match self.window_index(key) {
            Some(i) => Some(&self.window[i]).filter(|l| l.count > 0),
            None => self.overflow.get(&key),
        }
    }

    /// The non-empty level at `key`. Panics if there is none: callers only ask for
    /// levels that hold one of their orders.
    #[inline]
    pub(crate) fn level_mut(&mut self, key: i64) -> &mut Level {
        match self.window_index(key) {
            Some(i) => &mut self.window[i],
            None => self
                .overflow
                .get_mut(&key)
                .expect("an order's level exists while the order rests"),
        }
    }

    /// The level at `key`, created (empty) if needed, to append an order to.
    #[inline]
    pub(crate) fn level_for_insert(&mut self, key: i64) -> &mut Level {
        if self.window_index(key).is_none() {
            self.make_room(key);
        }
        match self.window_index(key) {
            Some(i) => {
                if self.window[i].count == 0 {
                    self.occupied.set(i);
                    self.levels += 1;
                    if self.best == NONE || i > self.best {
                        self.best = i;
                    }
                }
                &mut self.window[i]
            }
            None => self.overflow.entry(key).or_insert_with(|| {
                self.levels += 1;
                Level::EMPTY
            }),
        }
    }

    /// Forget the level at `key`, which its last order just left.
    #[inline]
    pub(crate) fn remove_empty_level(&mut self, key: i64) {
        self.levels -= 1;
        match self.window_index(key) {
            Some(i) => {
                debug_assert_eq!(self.window[i], Level::EMPTY);
                self.occupied.clear(i);
                if i == self.best {
                    self.best = match i {
                        0 => NONE,
                        _ => self.occupied.last_at_or_below(i - 1).unwrap_or(NONE),
                    };
                }
            }
            None => {
                let removed = self.overflow.remove(&key);
                debug_assert!(removed.is_some_and(|l| l == Level::EMPTY));
            }
        }
    }

    /// Calls `f` on each non-empty level from the best to the worst until it breaks.
    pub(crate) fn for_each_level(&self, mut f: impl FnMut(i64, &Level) -> ControlFlow<()>) {
        if self.window.is_empty() {
            for (&k, l) in self.overflow.iter().rev() {
                if f(k, l).is_break() {
                    return;
                }
            }
            return;
        }
        let top = self.base + self.window.len() as i64 - 1;
        for (&k, l) in self.overflow.range(top + 1..).rev() {
            if f(k, l).is_break() {
                return;
            }
        }
        let mut at = (self.best != NONE).then_some(self.best);
        while let Some(i) = at {
            if f(self.base + i as i64, &self.window[i]).is_break() {
                return;
            }
            at = match i {
                0 => None,
                _ => self.occupied.last_at_or_below(i - 1),
            };
        }
        for (&k, l) in self.overflow.range(..self.base).rev() {
            if f(k, l).is_break() {
                return;
            }
        }
    }

    /// Moves or grows the window so that it covers `key`, if the side's window levels
    /// and `key` fit in `max_window` ticks; otherwise leaves it (and `key` will go to
    /// the overflow).
    #[cold]
    fn make_room(&mut self, key: i64) {
        if self.window.is_empty() || self.best == NONE {
            let len = self.window.len().max(self.initial_window);
            self.rebase(key - (len / 2) as i64, len);
            return;
        }
        let lowest = self
            .occupied
            .first()
            .expect("a window with a best level has a lowest level");
        let lo = key.min(self.base + lowest as i64);
        let hi = key.max(self.base + self.best as i64);
        let span = (hi - lo + 1) as u64;
        if span > self.max_window as u64 {
            return;
        }
        let span = span as usize;
        let mut len = self.window.len();
        while len < span * 2 && len < self.max_window {
            len *= 2;
        }
        let base = lo - ((len - span) / 2) as i64;
        self.rebase(base, len);
    }

    /// Rebuilds the window as `len` levels from `base`, moving levels between the
    /// window and the overflow so that the overflow holds exactly the keys outside.
    #[cold]
    fn rebase(&mut self, base: i64, len: usize) {
        let old_base = self.base;
        let old_window = std::mem::replace(&mut self.window, vec![Level::EMPTY; len]);
        let old_occupied = std::mem::replace(&mut self.occupied, Occupancy::new(len));
        self.base = base;
        self.best = NONE;
        let mut at = old_occupied.first();
        while let Some(i) = at {
            self.place(old_base + i as i64, old_window[i]);
            at = (i + 1..old_window.len()).find(|&j| old_window[j].count > 0);
        }
        let inside: Vec<i64> = self
            .overflow
            .range(base..base + len as i64)
            .map(|(&k, _)| k)
            .collect();
        for k in inside {
            if let Some(level) = self.overflow.remove(&k) {
                self.place(k, level);
            }
        }
    }

    fn place(&mut self, key: i64, level: Level) {
        match self.window_index(key) {
            Some(i) => {
                self.window[i] = level;
                self.occupied.set(i);
                if self.best == NONE || i > self.best {
                    self.best = i;
                }
            }
            None => {
                self.overflow.insert(key, level);
            }
        }
    }

    /// Bytes of heap this side holds for its levels.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.window.capacity() * std::mem::size_of::<Level>()
            + self.occupied.heap_bytes()
            + self.overflow.len() * (std::mem::size_of::<(i64, Level)>() + 16)
    }

    /// Checks the ladder's own bookkeeping; used by `OrderBook::audit`.
    pub(crate) fn audit(&self) -> Result<(), String> {
        let mut expected_best = NONE;
        let mut nonempty = 0;
        for (i, l) in self.window.iter().enumerate() {
            let bit = self.occupied.words[i >> 6] >> (i & 63) & 1 == 1;
            if bit != (l.count > 0) {
                return Err(format!("occupancy bit {i} is {bit} for level {l:?}"));
            }
            if l.count > 0 {
                expected_best = i;
                nonempty += 1;
            } else if *l != Level::EMPTY {
                return Err(format!("empty window level {i} is not blank: {l:?}"));
            }
        }
        for (w, &word) in self.occupied.words.iter().enumerate() {
            let bit = self.occupied.summary[w >> 6] >> (w & 63) & 1 == 1;
            if bit != (word != 0) {
                return Err(format!("summary bit for word {w} is {bit}"));
            }
        }
        if expected_best != self.best {
            return Err(format!(
                "best is {} but should be {expected_best}",
                self.best
            ));
        }
        for (&k, l) in &self.overflow {
            if self.window_index(k).is_some() {
                return Err(format!("overflow key {k} lies inside the window"));
            }
            if l.count == 0 {
                return Err(format!("overflow level {k} is empty"));
            }
        }
        if nonempty + self.overflow.len() != self.levels {
            return Err(format!("level count {} is wrong", self.levels));
        }
        Ok(())
    }
}
