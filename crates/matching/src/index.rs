//! A deterministic open-addressing map from `u64` keys (order and account ids) to
//! `u32` slots.
//!
//! Written here rather than taken from `std` because `HashMap`'s default hasher is
//! randomly seeded and its SipHash costs more than the rest of an add, and because
//! an entry can be half the size of a `(u64, u32)` pair: it keeps only the top 32
//! bits of the key's hash as a tag next to the slot, and the owner confirms a tag
//! match by looking at the slot (which it is about to touch anyway). The table stays
//! small enough to live in cache.
//!
//! Fibonacci hashing (a multiply by 2^64/φ, a bijection, so distinct keys have
//! distinct hashes), linear probing, load at most one half, backward-shift deletion:
//! no tombstones, so a long-running book never needs a rebuild. Nothing iterates the
//! table, so its layout never reaches the output. (Keeping runs of sequential ids in
//! one cache line was tried: it made adds cheaper but the probe runs it creates made
//! every removal scan further, and OB-1M got slower overall.)

const EMPTY: u32 = u32::MAX;
const MIN_CAPACITY: usize = 16;

#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Entry {
    /// The top 32 bits of the key's hash: enough to find the entry's home in any
    /// table of up to 2^32 entries.
    tag: u32,
    /// The slot, or `EMPTY`.
    value: u32,
}

const VACANT: Entry = Entry {
    tag: 0,
    value: EMPTY,
};

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct IdIndex {
    entries: Vec<Entry>,
    mask: usize,
    /// `32 - log2(entries.len())`: turns a tag into its home position.
    shift: u32,
    len: usize,
}

#[inline]
fn tag_of(key: u64) -> u32 {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

impl IdIndex {
    /// A map that holds `capacity` keys before it has to grow.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let slots = (capacity.max(1) * 2).next_power_of_two().max(MIN_CAPACITY);
        assert!(slots <= 1 << 32, "an index of more than 2^32 entries");
        IdIndex {
            entries: vec![VACANT; slots],
            mask: slots - 1,
            shift: 32 - slots.trailing_zeros(),
            len: 0,
        }
    }

    #[inline]
    fn home(&self, tag: u32) -> usize {
        // The high bits of a Fibonacci hash are the well-mixed ones.
        (u64::from(tag) >> self.shift) as usize
    }

    /// The value stored for `key`. `is_key(value)` must say whether the entry with
    /// that value belongs to `key` (the tag alone may collide).
    #[inline]
    pub(crate) fn get(&self, key: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        let tag = tag_of(key);
        let mut i = self.home(tag);
        loop {
            let entry = self.entries[i];
            if entry.value == EMPTY {
                return None;
            }
            if entry.tag == tag && is_key(entry.value) {
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
        self.place(Entry {
            tag: tag_of(key),
            value,
        });
        self.len += 1;
    }

    #[inline]
    fn place(&mut self, entry: Entry) {
        let mut i = self.home(entry.tag);
        while self.entries[i].value != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.entries[i] = entry;
    }

    /// Removes the entry of `key` (see [`IdIndex::get`] for `is_key`) and returns its
    /// value.
    #[inline]
    pub(crate) fn remove(&mut self, key: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        let tag = tag_of(key);
        let mut i = self.home(tag);
        loop {
            let entry = self.entries[i];
            if entry.value == EMPTY {
                return None;
            }
            if entry.tag == tag && is_key(entry.value) {
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
            let home = self.home(entry.tag);
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
        self.len = old.len;
        for entry in old.entries {
            if entry.value != EMPTY {
                // The tag holds the top 32 bits of the hash, so it gives the home in
                // any table of up to 2^32 entries: no need for the keys.
                self.place(entry);
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
