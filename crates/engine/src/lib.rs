//! The engine service: the one writer of the exchange core, made durable.
//!
//! - One thread owns the [`Exchange`] and the [`Journal`]. API handlers submit
//!   commands through a bounded two-lane queue ([`queue`]): cancels are always taken
//!   before new orders, and a full lane refuses at once ([`EngineError::Busy`], the
//!   API's 503 with `Retry-After`).
//! - The writer takes a batch, applies each command, appends every command that changed
//!   something to the journal, commits the batch with one `fdatasync` (group commit) and
//!   only then answers each submitter. A rejected command changed nothing and is not
//!   journaled. A failed commit stops the engine for good (fail-stop: the in-memory
//!   state may hold changes that are not durable, so nothing more is served from it).
//! - Every `snapshot_every` journaled commands the writer serialises the core; the file
//!   is written once the read models have caught up with it, so a snapshot is never
//!   ahead of the projection checkpoint, and start = latest snapshot + journal replay.
//! - The projector ([`projector`]) turns the events of journaled commands into rows in
//!   the store, one transaction per batch with the checkpoint. A caller reads its own
//!   writes: [`Engine::wait_for_account`] waits until the read models include the
//!   caller's last acknowledged command.

#![warn(missing_docs)]

pub mod projector;
pub mod queue;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use bourse_exchange as core;
use bourse_exchange::{AccountId, Asset, Command, Event, EventKind, Exchange};
use bourse_journal::{Journal, JournalError};
use bourse_store::{ReadOp, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use queue::{Lane, PushError, TwoLaneQueue};

/// What the journal holds for one command: the command and what the API knew about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The command.
    pub command: Command,
    /// Context for the read models.
    pub meta: Meta,
}

/// Context of a command that the core does not need but the read models keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The `Idempotency-Key` of the request that placed an order.
    pub idempotency_key: Option<String>,
    /// A reference for the ledger (e.g. a deposit's id).
    pub reference: Option<String>,
}

/// Encodes a record as a journal payload.
pub fn encode(record: &Record) -> Vec<u8> {
    // postcard into a Vec cannot fail for these types (no maps with non-string keys,
    // no unsized sequences), but keep the error path honest anyway.
    postcard::to_stdvec(record).unwrap_or_default()
}

/// Decodes a journal payload.
pub fn decode(payload: &[u8]) -> Result<Record, EngineError> {
    postcard::from_bytes(payload).map_err(|_| EngineError::Corrupt)
}

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Journal and snapshot directory.
    pub dir: PathBuf,
    /// Jobs each queue lane holds before refusing.
    pub queue_capacity: usize,
    /// Most commands one commit (fsync) covers.
    pub max_batch: usize,
    /// Journaled commands between snapshots.
    pub snapshot_every: u64,
    /// The settlement asset of a new exchange.
    pub settlement: Asset,
    /// Where journaled commands and their events go once projected (surveillance), if
    /// anywhere. Sent with `try_send`: a full tap drops batches (counted in
    /// [`EngineStats::tap_dropped`]) rather than slow the engine.
    pub event_tap: Option<mpsc::Sender<EventBatch>>,
}

/// Journaled commands with their events: `(seq, record, events)` each.
pub type EventBatch = Vec<(u64, Arc<Record>, Arc<Vec<Event>>)>;

impl EngineConfig {
    /// Defaults for `dir`: 4096 per lane, batches of 1024, a snapshot every 100 000.
    pub fn new(dir: impl Into<PathBuf>, settlement: Asset) -> Self {
        Self {
            dir: dir.into(),
            queue_capacity: 4096,
            max_batch: 1024,
            snapshot_every: 100_000,
            settlement,
            event_tap: None,
        }
    }
}

/// Why a command was not processed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The queue lane is full: retry later.
    #[error("the engine is busy")]
    Busy,
    /// The engine has stopped (shutdown or a failed commit).
    #[error("the engine is unavailable")]
    Unavailable,
    /// The read models did not catch up in time.
    #[error("the read models are behind")]
    Lagging,
    /// A journal record or snapshot could not be decoded.
    #[error("a journal record or snapshot is corrupt")]
    Corrupt,
}

/// The result of one command.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its journal sequence number; `None` when it was rejected (and changed nothing).
    pub seq: Option<u64>,
    /// Its events; a rejection is one `Rejected` event.
    pub events: Arc<Vec<Event>>,
}

impl Outcome {
    /// The rejection reason, if the command was refused.
    pub fn rejection(&self) -> Option<bourse_exchange::RejectReason> {
        match self.events.first().map(|e| &e.kind) {
            Some(EventKind::Rejected { reason, .. }) if self.seq.is_none() => Some(*reason),
            _ => None,
        }
    }
}

struct Job {
    record: Record,
    reply: oneshot::Sender<Result<Outcome, EngineError>>,
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
struct Counters {
    commands: AtomicU64,
    journaled: AtomicU64,
    commits: AtomicU64,
    rejected_busy: AtomicU64,
    tap_dropped: AtomicU64,
}

/// A copy of the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Commands applied since start.
    pub commands: u64,
    /// Of them, journaled (not rejected).
    pub journaled: u64,
    /// Commits (fsyncs).
    pub commits: u64,
    /// Submissions refused because a lane was full.
    pub rejected_busy: u64,
    /// Last durable journal sequence number.
    pub durable_seq: u64,
    /// Last sequence number in the read models.
    pub projected_seq: u64,
    /// Event batches the tap (surveillance) was too far behind to take.
    pub tap_dropped: u64,
}

/// What start-up found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartReport {
    /// The snapshot start-up restored, if any.
    pub snapshot_seq: Option<u64>,
    /// Journal records replayed after it.
    pub replayed: u64,
    /// Bytes cut from a torn journal tail.
    pub truncated_bytes: u64,
    /// Records projected into the read models during start-up.
    pub projected: u64,
    /// Time spent restoring and replaying.
    pub replay_time: Duration,
    /// The state hash after replay.
    pub state_hash: u64,
}

struct Shared {
    queue: TwoLaneQueue<Job>,
    exchange: Mutex<Exchange>,
    failed: AtomicBool,
    /// Set by [`Engine::shutdown`]: the projector stops retrying a failing store.
    stopping: AtomicBool,
    durable_seq: AtomicU64,
    counters: Counters,
    /// Last acknowledged journal seq per account that issued a command.
    last_write: Mutex<HashMap<u64, u64>>,
    projected: watch::Sender<u64>,
    tap: Option<mpsc::Sender<EventBatch>>,
}

impl Shared {
    fn exchange(&self) -> MutexGuard<'_, Exchange> {
        // The writer never panics while holding it in a way that leaves the core half
        // changed (apply is all-or-nothing), and after a failed commit `failed` is set.
        self.exchange
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The writer thread and the projector task, joined by [`Engine::shutdown`].
type Workers = (JoinHandle<()>, tokio::task::JoinHandle<()>);

/// A handle to the running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    threads: Arc<Mutex<Option<Workers>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Batches of journaled commands for the projector.
type ProjectBatch = EventBatch;

/// Batches the projector may fall behind before the writer waits for it.
const PROJECTOR_QUEUE: usize = 16_384;

/// Most writer batches the projector folds into one read-model transaction.
const PROJECTOR_COALESCE: usize = 512;

/// Records per read-model transaction during start-up replay.
const REPLAY_PROJECT_CHUNK: usize = 2048;

impl Engine {
    /// Opens the journal in `cfg.dir`, restores the latest snapshot, replays the journal
    /// after it (projecting into `store` whatever the read models have not seen), then
    /// starts the writer thread and the projector task. Must run inside a tokio runtime.
    pub async fn start(cfg: EngineConfig, store: Store) -> Result<(Self, StartReport), StartError> {
        let started = Instant::now();
        let dir = cfg.dir.clone();
        let (journal, recovery) = tokio::task::spawn_blocking(move || Journal::open(&dir))
            .await
            .map_err(|e| StartError::Msg(format!("start-up task failed: {e}")))??;
        if recovery.truncated_bytes > 0 {
            tracing::warn!(
                bytes = recovery.truncated_bytes,
                last_seq = recovery.last_seq,
                "cut a torn tail from the journal"
            );
        }
        let checkpoint = store.projection_checkpoint().await?;
        let snapshot = journal.latest_snapshot()?;
        let (mut exchange, after) = match snapshot {
            Some(s) if s.seq <= checkpoint => {
                for path in &s.skipped {
                    tracing::warn!(path = %path.display(), "skipped a damaged snapshot");
                }
                (
                    Exchange::restore(&s.bytes).map_err(|_| EngineError::Corrupt)?,
                    s.seq,
                )
            }
            Some(s) if journal.first_seq() == 1 => {
                tracing::warn!(
                    snapshot = s.seq,
                    checkpoint,
                    "the read models are behind the latest snapshot: replaying the whole journal"
                );
                (Exchange::new(cfg.settlement), 0)
            }
            Some(s) => {
                return Err(StartError::Msg(format!(
                    "the read models (checkpoint {checkpoint}) are behind the oldest replayable \
                     journal record ({}) and snapshot {}: the database does not belong to this journal",
                    journal.first_seq(),
                    s.seq
                )));
            }
            None => (Exchange::new(cfg.settlement), 0),
        };
        let snapshot_seq = (after > 0).then_some(after);

        // Replay; project what the read models have not seen, in chunks.
        let mut pending: Vec<ReadOp> = Vec::new();
        let mut pending_records = 0usize;
        let mut chunks: Vec<(u64, Vec<ReadOp>)> = Vec::new();
        let mut projected = 0u64;
        let replayed = replay_into(&journal, &mut exchange, after, |seq, record, events| {
            if seq > checkpoint {
                projector::project(seq, record, events, &mut pending);
                pending_records += 1;
                projected += 1;
                if pending_records >= REPLAY_PROJECT_CHUNK {
                    chunks.push((seq, std::mem::take(&mut pending)));
                    pending_records = 0;
                }
            }
        })?;
        if pending_records > 0 {
            chunks.push((journal.durable_seq(), pending));
        }
        let replay_time = started.elapsed();
        for (seq, ops) in chunks {
            store.apply_projection(seq, &ops).await?;
        }
        let durable = journal.durable_seq();
        let state_hash = exchange.state_hash();
        tracing::info!(
            snapshot = ?snapshot_seq,
            replayed,
            projected,
            durable_seq = durable,
            state_hash = format_args!("{state_hash:016x}"),
            ms = replay_time.as_millis() as u64,
            "engine state restored"
        );

        let (projected_tx, _) = watch::channel(durable.max(checkpoint));
        let shared = Arc::new(Shared {
            queue: TwoLaneQueue::new(cfg.queue_capacity),
            exchange: Mutex::new(exchange),
            failed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            durable_seq: AtomicU64::new(durable),
            counters: Counters::default(),
            last_write: Mutex::new(HashMap::new()),
            projected: projected_tx,
            tap: cfg.event_tap.clone(),
        });
        // Room for the read models to fall behind a burst without slowing the writer
        // (each batch is a few Arcs); past it the writer waits for the projector.
        let (batches_tx, batches_rx) = mpsc::channel::<ProjectBatch>(PROJECTOR_QUEUE);
        let writer = {
            let shared = shared.clone();
            let cfg = cfg.clone();
            std::thread::Builder::new()
                .name("engine-writer".into())
                .spawn(move || writer(shared, journal, cfg, batches_tx))
                .map_err(|e| StartError::Msg(format!("starting the engine writer: {e}")))?
        };
        let projector = tokio::spawn(run_projector(shared.clone(), store, batches_rx));
        Ok((
            Self {
                shared,
                threads: Arc::new(Mutex::new(Some((writer, projector)))),
            },
            StartReport {
                snapshot_seq,
                replayed,
                truncated_bytes: recovery.truncated_bytes,
                projected,
                replay_time,
                state_hash,
            },
        ))
    }

    /// Submits a command and waits until it is durable (or rejected). Cancels
    /// (`CancelOrder`, `CancelAll`) wait in the urgent lane.
    pub async fn submit(&self, command: Command, meta: Meta) -> Result<Outcome, EngineError> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable);
        }
        let lane = match command {
            Command::CancelOrder { .. } | Command::CancelAll { .. } => Lane::Urgent,
            _ => Lane::Normal,
        };
        let (reply, answer) = oneshot::channel();
        match self.shared.queue.push(
            lane,
            Job {
                record: Record { command, meta },
                reply,
            },
        ) {
            Ok(()) => {}
            Err(PushError::Full(_)) => {
                self.shared
                    .counters
                    .rejected_busy
                    .fetch_add(1, Ordering::Relaxed);
                return Err(EngineError::Busy);
            }
            Err(PushError::Closed(_)) => return Err(EngineError::Unavailable),
        }
        answer.await.unwrap_or(Err(EngineError::Unavailable))
    }

    /// Reads the core's current state. Refused once the engine has failed.
    pub fn read<R>(&self, f: impl FnOnce(&Exchange) -> R) -> Result<R, EngineError> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable);
        }
        Ok(f(&self.shared.exchange()))
    }

    /// Waits until the read models include every acknowledged command of `account`
    /// (read-your-writes), at most `timeout`.
    pub async fn wait_for_account(
        &self,
        account: AccountId,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let target = self
            .shared
            .last_write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&account.0)
            .copied()
            .unwrap_or(0);
        self.wait_for_seq(target, timeout).await
    }

    /// Waits until the read models include journal record `seq`, at most `timeout`.
    pub async fn wait_for_seq(&self, seq: u64, timeout: Duration) -> Result<(), EngineError> {
        let mut rx = self.shared.projected.subscribe();
        if *rx.borrow() >= seq {
            return Ok(());
        }
        match tokio::time::timeout(timeout, rx.wait_for(|p| *p >= seq)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(EngineError::Unavailable),
            Err(_) => Err(EngineError::Lagging),
        }
    }

    /// Counters and positions.
    pub fn stats(&self) -> EngineStats {
        let c = &self.shared.counters;
        EngineStats {
            commands: c.commands.load(Ordering::Relaxed),
            journaled: c.journaled.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            rejected_busy: c.rejected_busy.load(Ordering::Relaxed),
            durable_seq: self.shared.durable_seq.load(Ordering::Acquire),
            projected_seq: *self.shared.projected.borrow(),
            tap_dropped: c.tap_dropped.load(Ordering::Relaxed),
        }
    }

    /// Whether the engine accepts commands (false after a failed commit or shutdown).
    pub fn is_healthy(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire)
    }

    /// The durable sequence number and the state hash, read together.
    pub fn state_hash(&self) -> Result<(u64, u64), EngineError> {
        self.read(|ex| {
            (
                self.shared.durable_seq.load(Ordering::Acquire),
                ex.state_hash(),
            )
        })
    }

    /// Stops taking commands, lets the writer finish what is queued and the projector
    /// catch up, then returns.
    pub async fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.queue.close();
        let threads = self
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((writer, projector)) = threads {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
            let _ = projector.await;
        }
    }
}

/// Replays a journal directory from scratch (no snapshot) and returns the last sequence
/// number, the number of records applied and the state hash: what `bourse engine
/// verify` prints, to check that a running node's state equals a fresh replay.
pub fn replay_fresh(
    dir: &std::path::Path,
    settlement: Asset,
) -> Result<(u64, u64, u64), EngineError> {
    let (durable, n, exchange) = replay_exchange(dir, settlement)?;
    Ok((durable, n, exchange.state_hash()))
}

/// Opens and verifies a journal directory and replays it from scratch into a new
/// core: the part of start-up that [`replay_fresh`] and the replay benchmark time.
/// Returns the last sequence number, the number of records applied and the core.
pub fn replay_exchange(
    dir: &std::path::Path,
    settlement: Asset,
) -> Result<(u64, u64, Exchange), EngineError> {
    let (journal, _) = Journal::open(dir).map_err(|_| EngineError::Corrupt)?;
    let mut exchange = Exchange::new(settlement);
    let n =
        replay_into(&journal, &mut exchange, 0, |_, _, _| {}).map_err(|_| EngineError::Corrupt)?;
    Ok((journal.durable_seq(), n, exchange))
}

/// Applies every journal record after `after` to `exchange`, in order, handing each
/// record and its events to `each`; returns how many were applied. Stops at, and
/// refuses, a record that does not decode.
///
/// Reading, checksumming and decoding run on a second thread, one batch ahead of the
/// core, so that start-up uses both cores (see docs/benchmarks.md, replay); the core
/// still applies the records one by one in journal order.
fn replay_into(
    journal: &Journal,
    exchange: &mut Exchange,
    after: u64,
    mut each: impl FnMut(u64, &Record, &[Event]),
) -> Result<u64, StartError> {
    const BATCH: usize = 1024;
    type Batch = Vec<(u64, Record)>;
    let (full, filled) = std::sync::mpsc::sync_channel::<Result<Batch, ()>>(4);
    let (empty, recycled) = std::sync::mpsc::channel::<Batch>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch: Batch = Vec::with_capacity(BATCH);
            let mut bad = false;
            let mut gone = false;
            let n = journal.replay(after, |seq, payload| {
                if bad || gone {
                    return;
                }
                match decode(payload) {
                    Ok(record) => batch.push((seq, record)),
                    Err(_) => bad = true,
                }
                if batch.len() == BATCH {
                    let next = recycled
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                    gone = full.send(Ok(std::mem::replace(&mut batch, next))).is_err();
                }
            });
            if !batch.is_empty() && !gone {
                gone = full.send(Ok(batch)).is_err();
            }
            if bad && !gone {
                let _ = full.send(Err(()));
            }
            n
        });
        let mut events = Vec::new();
        let mut applied = 0u64;
        let mut bad = false;
        for batch in filled.iter() {
            let Ok(mut batch) = batch else {
                bad = true;
                break;
            };
            for (seq, record) in batch.drain(..) {
                events.clear();
                exchange.apply_into(&record.command, &mut events);
                each(seq, &record, &events);
                applied += 1;
            }
            let _ = empty.send(batch);
        }
        drop(filled);
        let read = reader
            .join()
            .map_err(|_| StartError::from(EngineError::Corrupt))??;
        if bad {
            return Err(EngineError::Corrupt.into());
        }
        debug_assert_eq!(read, applied);
        Ok(applied)
    })
}

/// The account that issued a command: its reads must see the command.
fn command_account(command: &Command) -> Option<AccountId> {
    match command {
        Command::PlaceOrder(o) | Command::PlaceOrderWith { order: o, .. } => Some(o.account),
        Command::CancelOrder { account, .. }
        | Command::CancelAll { account, .. }
        | Command::AmendOrder { account, .. }
        | Command::Deposit { account, .. }
        | Command::Withdraw { account, .. }
        | Command::FreezeAccount { account, .. }
        | Command::UnfreezeAccount { account, .. }
        | Command::SetAccountKillSwitch { account, .. }
        | Command::CancelAfter { account, .. }
        | Command::SetMmpConfig { account, .. }
        | Command::ResetMmp { account, .. } => Some(*account),
        _ => None,
    }
}

/// An account whose read models an event changes (a maker whose order traded, an
/// account whose balance funding or settlement moved), so that its next read waits for
/// the change too.
fn touched_account(event: &Event) -> Option<AccountId> {
    match &event.kind {
        EventKind::OrderTraded { maker_account, .. } => Some(*maker_account),
        EventKind::BalanceChanged { account, .. }
        | EventKind::OrderCanceled { account, .. }
        | EventKind::OrderExpired { account, .. }
        | EventKind::PositionChanged { account, .. } => Some(*account),
        _ => None,
    }
}

fn writer(
    shared: Arc<Shared>,
    mut journal: Journal,
    cfg: EngineConfig,
    projector: mpsc::Sender<ProjectBatch>,
) {
    let max_batch = cfg.max_batch.max(1);
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    let mut results: Vec<(Option<u64>, Vec<Event>)> = Vec::with_capacity(max_batch);
    let mut payload = Vec::new();
    let mut since_snapshot = 0u64;
    // A snapshot taken at `seq`, written once the read models reached `seq`.
    let mut pending_snapshot: Option<(u64, Vec<u8>)> = None;
    loop {
        jobs.clear();
        let open = shared
            .queue
            .take(max_batch, Duration::from_millis(50), &mut jobs);
        if jobs.is_empty() {
            if let Some((seq, _)) = &pending_snapshot
                && *shared.projected.borrow() >= *seq
                && let Some((seq, bytes)) = pending_snapshot.take()
            {
                write_snapshot(&mut journal, &shared, seq, &bytes);
            }
            if !open {
                break;
            }
            continue;
        }
        results.clear();
        {
            let mut exchange = shared.exchange();
            for job in &jobs {
                let mut events = Vec::new();
                exchange.apply_into(&job.record.command, &mut events);
                let rejected = matches!(
                    events.as_slice(),
                    [Event {
                        kind: EventKind::Rejected { .. },
                        ..
                    }]
                );
                let seq = if rejected {
                    None
                } else {
                    payload.clear();
                    payload.extend_from_slice(&encode(&job.record));
                    match journal.append(&payload) {
                        Ok(seq) => Some(seq),
                        Err(e) => {
                            fail(&shared, &e);
                            None
                        }
                    }
                };
                results.push((seq, events));
            }
            since_snapshot += results.iter().filter(|r| r.0.is_some()).count() as u64;
            if since_snapshot >= cfg.snapshot_every
                && pending_snapshot.is_none()
                && !shared.failed.load(Ordering::Acquire)
                && let Some(seq) = results.iter().rev().find_map(|r| r.0)
            {
                pending_snapshot = Some((seq, exchange.snapshot()));
                since_snapshot = 0;
            }
        }
        let journaled = results.iter().filter(|r| r.0.is_some()).count() as u64;
        if journaled > 0 && !shared.failed.load(Ordering::Acquire) {
            match journal.commit() {
                Ok(durable) => {
                    shared.durable_seq.store(durable, Ordering::Release);
                    shared.counters.commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => fail(&shared, &e),
            }
        }
        shared
            .counters
            .commands
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        shared
            .counters
            .journaled
            .fetch_add(journaled, Ordering::Relaxed);
        if shared.failed.load(Ordering::Acquire) {
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(EngineError::Unavailable));
            }
            // Fail-stop: refuse everything queued and stop.
            shared.queue.close();
            let mut rest = Vec::new();
            while shared.queue.take(usize::MAX, Duration::ZERO, &mut rest) && !rest.is_empty() {
                for job in rest.drain(..) {
                    let _ = job.reply.send(Err(EngineError::Unavailable));
                }
            }
            return;
        }
        {
            let mut last = shared
                .last_write
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (job, (seq, events)) in jobs.iter().zip(&results) {
                let Some(seq) = seq else { continue };
                if let Some(account) = command_account(&job.record.command) {
                    last.insert(account.0, *seq);
                }
                for account in events.iter().filter_map(touched_account) {
                    last.insert(account.0, *seq);
                }
            }
        }
        let mut batch: ProjectBatch = Vec::with_capacity(journaled as usize);
        for (job, (seq, events)) in jobs.drain(..).zip(results.drain(..)) {
            let events = Arc::new(events);
            if let Some(seq) = seq {
                batch.push((seq, Arc::new(job.record), events.clone()));
            }
            let _ = job.reply.send(Ok(Outcome { seq, events }));
        }
        if !batch.is_empty() && projector.blocking_send(batch).is_err() {
            tracing::error!("the read-model projector stopped");
        }
        if let Some((seq, _)) = &pending_snapshot
            && *shared.projected.borrow() >= *seq
            && let Some((seq, bytes)) = pending_snapshot.take()
        {
            write_snapshot(&mut journal, &shared, seq, &bytes);
        }
    }
    drop(projector);
}

fn write_snapshot(journal: &mut Journal, shared: &Shared, seq: u64, bytes: &[u8]) {
    match journal.write_snapshot(seq, bytes) {
        Ok(()) => {
            tracing::info!(seq, bytes = bytes.len(), "engine snapshot written");
            // Keep two snapshots (a damaged newest falls back to the older one); both
            // are at or below the projection checkpoint by construction.
            if *shared.projected.borrow() >= seq
                && let Err(e) = journal.prune(2)
            {
                tracing::warn!(error = %e, "journal prune failed");
            }
        }
        Err(e) => tracing::error!(error = %e, seq, "engine snapshot failed"),
    }
}

fn fail(shared: &Shared, error: &JournalError) {
    tracing::error!(error = %error, "journal write failed: the engine stops (fail-stop)");
    shared.failed.store(true, Ordering::Release);
}

async fn run_projector(
    shared: Arc<Shared>,
    store: Store,
    mut batches: mpsc::Receiver<ProjectBatch>,
) {
    let mut ops = Vec::new();
    let mut buffered: Vec<ProjectBatch> = Vec::new();
    while let Some(first) = batches.recv().await {
        buffered.push(first);
        // Coalesce whatever else is already waiting into one transaction.
        while buffered.len() < PROJECTOR_COALESCE {
            match batches.try_recv() {
                Ok(b) => buffered.push(b),
                Err(_) => break,
            }
        }
        ops.clear();
        let mut last = 0;
        for batch in &buffered {
            for (seq, record, events) in batch {
                projector::project(*seq, record, events, &mut ops);
                last = *seq;
            }
        }
        let mut delay = Duration::from_millis(50);
        loop {
            match store.apply_projection(last, &ops).await {
                Ok(_) => break,
                Err(e) if shared.stopping.load(Ordering::Acquire) => {
                    // The next start replays from the checkpoint, so nothing is lost.
                    tracing::error!(error = %e, seq = last, "read-model projection failed while stopping; the next start projects it");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, seq = last, "read-model projection failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Some(tap) = &shared.tap {
            for batch in buffered.drain(..) {
                if tap.try_send(batch).is_err() {
                    shared.counters.tap_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        buffered.clear();
        shared.projected.send_replace(last);
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The journal could not be opened or read.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] bourse_store::StoreError),
    /// A record or snapshot could not be decoded.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// Anything else.
    #[error("{0}")]
    Msg(String),
}
