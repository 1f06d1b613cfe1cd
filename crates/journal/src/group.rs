//! [`GroupCommitter`]: a writer thread that owns a [`Journal`] and lets many producers
//! share each fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};

use crate::error::JournalError;
use crate::journal::{CommitStats, Journal};

/// Why a submitted record was not made durable. Cheap to clone: one failed fsync fails
/// every record of its batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The journal refused the record or the write/fsync failed (after which it is
    /// poisoned and every later submission fails too).
    #[error("the journal could not make the record durable: {0}")]
    Journal(Arc<JournalError>),
    /// The writer thread has stopped.
    #[error("the journal writer has stopped")]
    Stopped,
}

/// Called once on the writer thread, after the fsync that covers the record (or when it
/// failed), with the record's sequence number. It must return quickly: send on a channel
/// or complete a oneshot, never block.
pub type Reply = Box<dyn FnOnce(Result<u64, CommitError>) + Send>;

struct Submission {
    payload: Vec<u8>,
    reply: Reply,
}

/// A full queue or a stopped writer; the payload comes back and the reply is dropped
/// without being called.
#[derive(Debug, thiserror::Error)]
pub enum TrySubmitError {
    /// The queue is full: shed load (503 with `Retry-After`).
    #[error("the journal queue is full")]
    Full(Vec<u8>),
    /// The writer thread has stopped.
    #[error("the journal writer has stopped")]
    Stopped(Vec<u8>),
}

/// Sizes of the writer's queue and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// Submissions that may wait for the writer; beyond it `submit` blocks and
    /// `try_submit` fails with [`TrySubmitError::Full`].
    pub queue_capacity: usize,
    /// The most records one fsync covers.
    pub max_batch: usize,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_batch: 1024,
        }
    }
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    records: AtomicU64,
}

/// Runs a [`Journal`] on its own thread. Producers hand it payloads through
/// [`Submitter`]s; the thread takes one, then everything else already queued (up to
/// `max_batch`), appends them all, commits with one fsync, and only then calls each
/// reply. The busier the queue, the more records each fsync covers, with no timer.
///
/// It is runtime-agnostic: an async caller passes a reply that completes a
/// `tokio::sync::oneshot` and awaits the receiver.
pub struct GroupCommitter {
    submitter: Submitter,
    thread: JoinHandle<Journal>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A cloneable handle for submitting records to a [`GroupCommitter`].
#[derive(Clone)]
pub struct Submitter {
    queue: SyncSender<Submission>,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter").finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// Starts the writer thread, which owns `journal` until [`shutdown`](Self::shutdown).
    pub fn spawn(journal: Journal, options: GroupCommitOptions) -> std::io::Result<Self> {
        let (queue, inbox) = mpsc::sync_channel(options.queue_capacity);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let max_batch = options.max_batch.max(1);
        let thread = thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || write_batches(journal, &inbox, max_batch, &thread_counters))?;
        Ok(Self {
            submitter: Submitter { queue },
            thread,
            counters,
        })
    }

    /// A new handle for a producer.
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// Commits (fsyncs) done and records they covered so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            records: self.counters.records.load(Ordering::Relaxed),
        }
    }

    /// Stops taking submissions and returns the journal once everything queued is
    /// committed. Waits until every [`Submitter`] clone has been dropped.
    pub fn shutdown(self) -> Journal {
        drop(self.submitter);
        match self.thread.join() {
            Ok(journal) => journal,
            // Only a reply callback can panic on that thread; pass the panic on.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Submitter {
    /// Queues `payload`, blocking while the queue is full. `reply` is called after the
    /// fsync covering it. Fails only when the writer has stopped (then `reply` is
    /// dropped uncalled).
    pub fn submit(
        &self,
        payload: Vec<u8>,
        reply: impl FnOnce(Result<u64, CommitError>) + Send + 'static,
    ) -> Result<(), CommitError> {
        self.queue
            .send(Submission {
                payload,
                reply: Box::new(reply),
            })
            .map_err(|_| CommitError::Stopped)
    }

    /// Queues `payload` unless the queue is full; never blocks.
    pub fn try_submit(
        &self,
        payload: Vec<u8>,
        reply: impl FnOnce(Result<u64, CommitError>) + Send + 'static,
    ) -> Result<(), TrySubmitError> {
        let submission = Submission {
            payload,
            reply: Box::new(reply),
        };
        self.queue.try_send(submission).map_err(|e| match e {
            TrySendError::Full(s) => TrySubmitError::Full(s.payload),
            TrySendError::Disconnected(s) => TrySubmitError::Stopped(s.payload),
        })
    }

    /// Submits and blocks this thread until the record is durable; returns its sequence
    /// number.
    pub fn submit_and_wait(&self, payload: Vec<u8>) -> Result<u64, CommitError> {
        let (done, wait) = mpsc::sync_channel(1);
        self.submit(payload, move |result| {
            // The receiver is alive: this thread is blocked on it below.
            let _ = done.send(result);
        })?;
        wait.recv().unwrap_or(Err(CommitError::Stopped))
    }
}

fn write_batches(
    mut journal: Journal,
    inbox: &Receiver<Submission>,
    max_batch: usize,
    counters: &Counters,
) -> Journal {
    let mut waiting: Vec<(u64, Reply)> = Vec::with_capacity(max_batch);
    while let Ok(first) = inbox.recv() {
        let mut next = Some(first);
        while let Some(Submission { payload, reply }) = next.take() {
            match journal.append(&payload) {
                Ok(seq) => waiting.push((seq, reply)),
                Err(e) => reply(Err(CommitError::Journal(Arc::new(e)))),
            }
            if waiting.len() < max_batch {
                next = inbox.try_recv().ok();
            }
        }
        if waiting.is_empty() {
            continue;
        }
        match journal.commit() {
            Ok(_) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters
                    .records
                    .fetch_add(waiting.len() as u64, Ordering::Relaxed);
                for (seq, reply) in waiting.drain(..) {
                    reply(Ok(seq));
                }
            }
            Err(e) => {
                let error = CommitError::Journal(Arc::new(e));
                for (_, reply) in waiting.drain(..) {
                    reply(Err(error.clone()));
                }
            }
        }
    }
    journal
}
