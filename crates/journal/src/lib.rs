//! The durable, append-only command log of the single-writer exchange core: the source
//! of truth from which the core is rebuilt on start (latest snapshot + replay).
//!
//! Records are opaque byte payloads (the caller serialises its commands), numbered
//! 1, 2, 3… without gaps, each framed with its length, sequence number and a CRC-32 in
//! segment files in one directory. [`Journal::append`] buffers; [`Journal::commit`]
//! writes the batch and fsyncs once (group commit); [`GroupCommitter`] does that on a
//! writer thread for many producers. [`Journal::open`] verifies everything, cuts a torn
//! tail and refuses damage in the middle. Synchronous `std` I/O only, no async runtime.
//!
//! ```
//! use bourse_journal::Journal;
//!
//! let dir = tempfile::tempdir()?;
//! let (mut journal, recovery) = Journal::open(dir.path())?;
//! assert_eq!(recovery.last_seq, 0);
//! journal.append(b"place order 1")?;
//! journal.append(b"cancel order 1")?;
//! assert_eq!(journal.commit()?, 2); // both durable after one fsync
//! journal.write_snapshot(1, b"state after 1")?;
//! drop(journal);
//!
//! let (journal, recovery) = Journal::open(dir.path())?;
//! assert_eq!(recovery.last_seq, 2);
//! let snapshot = journal.latest_snapshot()?.expect("written above");
//! let mut replayed = Vec::new();
//! journal.replay(snapshot.seq, |seq, payload| replayed.push((seq, payload.to_vec())))?;
//! assert_eq!(replayed, [(2, b"cancel order 1".to_vec())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod error;
mod format;
mod group;
mod journal;
mod snapshot;

pub use error::JournalError;
pub use format::MAX_PAYLOAD_BYTES;
pub use group::{
    CommitError, GroupCommitOptions, GroupCommitter, Reply, Submitter, TrySubmitError,
};
pub use journal::{CommitStats, Journal, JournalOptions, PruneReport, Recovery};
pub use snapshot::Snapshot;
