//! The one error type of the journal.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong opening, writing or reading a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The operating system refused a read, write, fsync, rename or directory listing.
    #[error("journal I/O error: {0}")]
    Io(#[from] io::Error),
    /// A damaged record with valid records after it, or damage in a segment that is not
    /// the last one. Nothing is cut: an acknowledged record may be behind it.
    #[error("journal corrupt in {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A segment header that is not ours, or of a version this build cannot read.
    #[error("bad segment header in {}: {reason}", path.display())]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A record (or a segment) whose sequence number is not the next one.
    #[error("sequence gap in {}: expected {expected}, found {found}", path.display())]
    SequenceGap {
        /// The segment file.
        path: PathBuf,
        /// The sequence number that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A payload longer than [`crate::MAX_PAYLOAD_BYTES`].
    #[error("payload of {len} bytes is above the maximum of {max}")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier write or fsync failed. After a failed fsync the kernel may have dropped
    /// the dirty pages, so retrying cannot prove anything durable: the journal refuses
    /// all further writes and must be reopened, which recovers from the file itself.
    #[error("journal unusable after an earlier write or fsync failure; reopen it")]
    Poisoned,
    /// A snapshot newer than the last durable record: it would describe commands the
    /// journal does not hold (or not yet durably).
    #[error("snapshot at seq {snapshot_seq} is ahead of the durable journal (seq {durable_seq})")]
    SnapshotAhead {
        /// The snapshot's sequence number.
        snapshot_seq: u64,
        /// The last durable record.
        durable_seq: u64,
    },
    /// Snapshots exist but none can be used: each is damaged, or the records after it
    /// were pruned.
    #[error(
        "no usable snapshot: the journal starts at seq {first_seq} and no intact snapshot covers the records before it"
    )]
    NoUsableSnapshot {
        /// The first record the journal still holds.
        first_seq: u64,
    },
}
