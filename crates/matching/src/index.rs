//! A deterministic open-addressing map from `u64` keys (order and account ids) to
//! `u32` slots.
//!
//! Written here rather than taken from `std` because `HashMap`'s default hasher is
//! randomly seeded and its SipHash costs more than the rest of an add. The layout
//! never affects output (nothing iterates it), but a fixed hash keeps even the
//! memory layout the same from run to run. Linear probing with Fibonacci hashing,
//! load at most one half, and backward-shift deletion, so there are no tombstones
//! and a long-running book never needs a rebuild.

const EMPTY: u32 = u32::MAX;
const MIN_CAPACITY: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u64,
    value: u32,
}

const VACANT: Entry = Entry {
    key: 0,
    value: EMPTY,
};

#[derive(Debug, Clone)]
pub(crate) struct IdIndex {
    entries: Vec<Entry>,
    mask: usize,
    shift: u32,
    len: usize,
}

impl IdIndex {
    /// A map that holds `capacity` keys before it has to grow.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let slots = (capacity.max(1) * 2).next_power_of_two().max(MIN_CAPACITY);
        IdIndex {
            entries: vec![VACANT; slots],
            mask: slots - 1,
            shift: 64 - slots.trailing_zeros(),
            len: 0,
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the multiply spreads consecutive ids over the whole
        // table and the high bits are the well-mixed ones.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let entry = self.entries[i];
            if entry.value == EMPTY {
                return None;
            }
            if entry.key == key {
                return Some(entry.value);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Inserts a key that is not in the map. `value` must not be `u32::MAX`.
    #[inline]
    pub(crate) fn insert_new(&mut self, key: u64, value: u32) {
        debug_assert!(value != EMPTY);
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let mut i = self.home(key);
        while self.entries[i].value != EMPTY {
            debug_assert!(self.entries[i].key != key, "key inserted twice");
            i = (i + 1) & self.mask;
        }
        self.entries[i] = Entry { key, value };
        self.len += 1;
    }

    /// Removes a key and returns its value.
    #[inline]
    pub(crate) fn remove(&mut self, key: u64) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let entry = self.entries[i];
            if entry.value == EMPTY {
                return None;
            }
            if entry.key == key {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let removed = self.entries[i].value;
        // Backward shift: pull later members of the probe run into the hole when the
        // hole lies between their home and where they sit, so lookups never stop early.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let entry = self.entries[j];
            if entry.value == EMPTY {
                break;
            }
            let home = self.home(entry.key);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.entries[hole] = entry;
                hole = j;
            }
        }
        self.entries[hole] = VACANT;
        self.len -= 1;
        Some(removed)
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, IdIndex::with_capacity(self.entries.len()));
        for entry in old.entries {
            if entry.value != EMPTY {
                self.insert_new(entry.key, entry.value);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    pub(crate) fn entry_bytes() -> usize {
        std::mem::size_of::<Entry>()
    }
}
