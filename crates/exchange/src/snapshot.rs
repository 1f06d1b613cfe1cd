//! Snapshots of a whole [`Exchange`]: [`Exchange::snapshot`] and
//! [`Exchange::restore`] (feature `serde`).
//!
//! The payload is the exchange's own structure (instruments with their order books,
//! arenas and indexes, accounts, positions, withdrawals, totals) in
//! [postcard](https://docs.rs/postcard). Postcard was chosen over `bincode` 2 because
//! it is compact (varint integers, including the `i128` money amounts), has a
//! documented, stable wire format (1.x), is small, well kept, needs nothing but
//! `serde` with `use-std`, and builds on the pinned toolchain. It is not
//! self-describing, so the derived structures are the schema: [`FORMAT_VERSION`]
//! must change whenever a serialised structure does.
//!
//! Every map in the state is a `BTreeMap`/`BTreeSet` or one of the matching crate's
//! deterministic indexes (serialised as they are, with no random state), so a
//! restored exchange iterates, hashes and behaves exactly like the original.
//!
//! Layout, integers little-endian:
//!
//! | bytes | content |
//! |-------|---------|
//! | 8     | magic `BRSXSNAP` |
//! | 4     | format version |
//! | 8     | [`Exchange::state_hash`] of the snapshotted exchange |
//! | 8     | payload length `n` |
//! | `n`   | postcard payload |
//! | 8     | FNV-1a 64 of everything before it |
//!
//! The checksum refuses any truncation and any single changed byte (each FNV-1a
//! step is a bijection of the running state). After decoding, restore checks the
//! state hash, the conservation invariant and [`Exchange::audit`] (which includes
//! every book's own audit) as well, so a snapshot that decodes into a different or
//! inconsistent state is refused rather than run.

use std::fmt;

use crate::exchange::Exchange;
use crate::hash::Fnv1a;

/// Identifies a snapshot.
const MAGIC: [u8; 8] = *b"BRSXSNAP";

/// The snapshot format's version: bump it whenever a serialised structure changes.
pub const FORMAT_VERSION: u32 = 2;

const HEADER_LEN: usize = 8 + 4 + 8 + 8;
const CHECKSUM_LEN: usize = 8;

/// Why [`Exchange::restore`] refused a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Shorter than its header, or than the length the header gives.
    Truncated,
    /// Does not start with the snapshot magic.
    BadMagic,
    /// Written by a format version this build does not read.
    UnsupportedVersion(u32),
    /// Bytes after the checksum.
    TrailingBytes,
    /// The checksum does not match: the bytes were changed.
    ChecksumMismatch,
    /// The payload does not decode into an exchange (or holds an invalid value,
    /// such as a malformed symbol).
    Decode(String),
    /// The restored exchange's state hash is not the one recorded.
    StateHashMismatch {
        /// The hash the snapshot recorded.
        expected: u64,
        /// The restored exchange's hash.
        actual: u64,
    },
    /// The restored exchange breaks the conservation invariant or fails its audit.
    Inconsistent(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Truncated => f.write_str("snapshot is truncated"),
            SnapshotError::BadMagic => f.write_str("not a snapshot (bad magic)"),
            SnapshotError::UnsupportedVersion(v) => {
                write!(f, "unsupported snapshot format version {v}")
            }
            SnapshotError::TrailingBytes => f.write_str("trailing bytes after the snapshot"),
            SnapshotError::ChecksumMismatch => f.write_str("snapshot checksum mismatch"),
            SnapshotError::Decode(e) => write!(f, "snapshot does not decode: {e}"),
            SnapshotError::StateHashMismatch { expected, actual } => write!(
                f,
                "restored state hash {actual:#018x} is not the recorded {expected:#018x}"
            ),
            SnapshotError::Inconsistent(e) => write!(f, "restored state is inconsistent: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.bytes(bytes);
    h.finish()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl Exchange {
    /// The whole state as bytes, for [`Exchange::restore`]. Deterministic: the same
    /// state always gives the same bytes. See the `snapshot` module for the format.
    pub fn snapshot(&self) -> Vec<u8> {
        let payload =
            postcard::to_stdvec(self).expect("the exchange's state has no unserialisable values");
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + CHECKSUM_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.state_hash().to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// An exchange restored from [`Exchange::snapshot`]'s bytes. Refuses, never
    /// panics on, bytes that are truncated, changed, of another format version, or
    /// that decode into a state other than the one snapshotted.
    pub fn restore(bytes: &[u8]) -> Result<Exchange, SnapshotError> {
        if bytes.get(..MAGIC.len()).is_some_and(|magic| magic != MAGIC) {
            return Err(SnapshotError::BadMagic);
        }
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(SnapshotError::Truncated);
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let expected_hash = u64_at(bytes, 12);
        let len = u64_at(bytes, 20);
        let available = (bytes.len() - HEADER_LEN - CHECKSUM_LEN) as u64;
        if len > available {
            return Err(SnapshotError::Truncated);
        }
        if len < available {
            return Err(SnapshotError::TrailingBytes);
        }
        let end = HEADER_LEN + len as usize;
        if checksum(&bytes[..end]) != u64_at(bytes, end) {
            return Err(SnapshotError::ChecksumMismatch);
        }
        let exchange: Exchange = postcard::from_bytes(&bytes[HEADER_LEN..end])
            .map_err(|e| SnapshotError::Decode(e.to_string()))?;
        let actual = exchange.state_hash();
        if actual != expected_hash {
            return Err(SnapshotError::StateHashMismatch {
                expected: expected_hash,
                actual,
            });
        }
        exchange
            .check_conservation()
            .and_then(|()| exchange.audit())
            .map_err(SnapshotError::Inconsistent)?;
        Ok(exchange)
    }
}

/// Serialises a hash map as a map in key order, so that the snapshot bytes stay a
/// function of the state (and stay what a `BTreeMap` of the same entries writes).
pub(crate) fn sorted_map<K, V, H, S>(
    map: &std::collections::HashMap<K, V, H>,
    s: S,
) -> Result<S::Ok, S::Error>
where
    K: Ord + serde::Serialize,
    V: serde::Serialize,
    S: serde::Serializer,
{
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    s.collect_map(entries)
}
