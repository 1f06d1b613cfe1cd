//! The audit trail's request side: a per-request context that the auth extractors fill
//! with the actor and handlers with a sensitive action's name and details, and the one
//! writer task per process that seals records into the node's hash chain and stores
//! them in batches.
//!
//! The outermost gateway layer (`request_id::layer`) opens the context, and once the
//! response exists (whatever produced it: handler, rejection, 404, panic catcher,
//! timeout) sends the record to the writer, awaiting room in the bounded queue: a full
//! queue slows requests down, it never drops a record. A request whose future is dropped
//! (the client went away) is still recorded, as status 499.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bourse_store::{AuditEntry, AuditRecord, ChainHead, Store};
use tokio::sync::{mpsc, oneshot};

/// Records the writer seals and stores in one transaction at most.
const MAX_BATCH: usize = 512;

/// Who called and what they did, filled in while the request runs.
#[derive(Debug, Default, Clone)]
pub struct Context {
    user_id: Option<String>,
    session_id: Option<String>,
    client_id: Option<String>,
    admin_key_id: Option<String>,
    subject_user_id: Option<String>,
    action: Option<&'static str>,
    details: serde_json::Map<String, serde_json::Value>,
    problem_code: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Arc<Mutex<Context>>;
}

fn with(f: impl FnOnce(&mut Context)) {
    let _ = CONTEXT.try_with(|c| {
        // A poisoned lock only means a panic while holding it; the data is still ours.
        let mut g = c.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g);
    });
}

/// The caller is this user (from a verified access token).
pub fn set_user(user_id: &str, session_id: &str, client_id: Option<&str>) {
    with(|c| {
        c.user_id = Some(user_id.to_owned());
        c.session_id = Some(session_id.to_owned());
        c.client_id = client_id.map(str::to_owned);
    });
}

/// The request acted on this user's account although the caller is not authenticated
/// as them (a failed login or second factor): the owner's activity shows it.
pub fn subject(user_id: &str) {
    with(|c| c.subject_user_id = Some(user_id.to_owned()));
}

/// The caller is this admin API key.
pub fn set_admin_key(key_id: &str) {
    with(|c| c.admin_key_id = Some(key_id.to_owned()));
}

/// This request is the sensitive action `name` (e.g. `auth.login`), with details: a
/// JSON object of ids and outcomes, never a secret.
pub fn action(name: &'static str, details: serde_json::Value) {
    with(|c| {
        c.action = Some(name);
        if let serde_json::Value::Object(m) = details {
            c.details.extend(m);
        }
    });
}

/// The problem code of a response rendered from stored bytes (an idempotent replay or
/// an engine rejection), which carry no [`crate::error::ProblemCode`] extension.
pub(crate) fn problem_code(code: &str) {
    with(|c| c.problem_code = Some(code.chars().take(64).collect()));
}

/// Adds one detail to the current action.
pub fn detail(key: &str, value: impl Into<serde_json::Value>) {
    with(|c| {
        c.details.insert(key.to_owned(), value.into());
    });
}

/// Where a listener's records go: the writer's queue, or nowhere (`audit.enabled =
/// false`).
#[derive(Debug, Clone)]
pub struct Tap {
    listener: &'static str,
    tx: Option<mpsc::Sender<Msg>>,
}

impl Tap {
    /// Records nothing.
    pub fn disabled(listener: &'static str) -> Self {
        Self { listener, tx: None }
    }

    /// The same queue, for another listener.
    pub fn for_listener(&self, listener: &'static str) -> Self {
        Self {
            listener,
            tx: self.tx.clone(),
        }
    }
}

#[derive(Debug)]
enum Msg {
    Record(Box<AuditEntry>),
    Close(oneshot::Sender<()>),
}

/// One request's record in the making; sends itself when dropped unfinished.
pub(crate) struct Pending {
    tx: Option<mpsc::Sender<Msg>>,
    context: Arc<Mutex<Context>>,
    entry: Option<AuditEntry>,
    filled: bool,
    started: std::time::Instant,
}

impl Pending {
    /// Starts a record; `None` when the tap is disabled.
    pub(crate) fn start(
        tap: &Tap,
        request_id: &str,
        method: &str,
        route: Option<&str>,
        source_ip: Option<std::net::IpAddr>,
    ) -> Option<Self> {
        let tx = tap.tx.clone()?;
        let now = time::OffsetDateTime::now_utc();
        Some(Self {
            tx: Some(tx),
            context: Arc::default(),
            entry: Some(AuditEntry {
                ts_us: i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX),
                request_id: request_id.to_owned(),
                listener: tap.listener.to_owned(),
                source_ip: source_ip.map(|ip| ip.to_string()),
                method: method.to_owned(),
                route: route.unwrap_or("(unmatched)").to_owned(),
                // Until the response exists: a request dropped before it is a 499.
                status: 499,
                problem_code: Some("client_closed_request".into()),
                ..AuditEntry::default()
            }),
            filled: false,
            started: std::time::Instant::now(),
        })
    }

    /// Runs `fut` with this record's context open, so extractors and handlers can fill it.
    pub(crate) async fn scope<F: Future>(&self, fut: F) -> F::Output {
        CONTEXT.scope(self.context.clone(), fut).await
    }

    fn fill(&mut self, status: Option<(u16, Option<&'static str>)>) {
        let Some(e) = self.entry.as_mut() else { return };
        e.latency_us = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        self.filled = true;
        let c = self
            .context
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some((status, code)) = status {
            e.status = i64::from(status);
            e.problem_code = code.map(str::to_owned).or(c.problem_code);
        }
        e.user_id = c.user_id;
        e.session_id = c.session_id;
        e.client_id = c.client_id;
        e.admin_key_id = c.admin_key_id;
        e.subject_user_id = c.subject_user_id;
        e.action = c.action.map(str::to_owned);
        e.details =
            (!c.details.is_empty()).then(|| serde_json::Value::Object(c.details).to_string());
    }

    /// Completes the record with the response's status and problem code and queues it,
    /// waiting for room.
    pub(crate) async fn finish(mut self, status: u16, code: Option<&'static str>) {
        self.fill(Some((status, code)));
        let Some(tx) = self.tx.clone() else { return };
        match tx.reserve().await {
            Ok(permit) => {
                if let Some(e) = self.entry.take() {
                    permit.send(Msg::Record(Box::new(e)));
                }
            }
            Err(_) => {
                self.entry = None;
                tracing::error!("audit writer has stopped; a record could not be written");
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.entry.is_none() {
            return;
        }
        // Dropped before `finish` queued the record (client gone, or dropped while
        // waiting for room): queue it from a task of its own.
        if !self.filled {
            self.fill(None);
        }
        let (Some(tx), Some(entry)) = (self.tx.take(), self.entry.take()) else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if tx.send(Msg::Record(Box::new(entry))).await.is_err() {
                    tracing::error!("audit writer has stopped; a record could not be written");
                }
            });
        }
    }
}

/// The process's audit writer: owns the chain head, seals and stores records.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    task: tokio::task::JoinHandle<()>,
    closing: Arc<AtomicBool>,
}

/// How long [`Writer::close`] waits for the last records when the database fails.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

impl Writer {
    /// Continues chain `chain_id` from its last stored record and starts the writer task
    /// behind a queue of `capacity` records. The returned tap is for the public listener;
    /// [`Tap::for_listener`] makes the admin one.
    pub async fn start(
        store: Store,
        chain_id: String,
        capacity: usize,
        tee: Option<Tee>,
    ) -> Result<(Self, Tap), bourse_store::StoreError> {
        let head = store.audit_chain_head(&chain_id).await?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let closing = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(write_loop(store, chain_id, head, rx, closing.clone(), tee));
        let tap = Tap {
            listener: "public",
            tx: Some(tx.clone()),
        };
        Ok((Self { tx, task, closing }, tap))
    }

    /// Writes everything queued so far, then stops the task. Call once no request can
    /// still be running (after the listeners have drained). From here on a failed write
    /// is not retried: a node going down with its database unreachable logs how many
    /// records it could not store instead of never stopping.
    pub async fn close(self) {
        self.closing.store(true, Ordering::Relaxed);
        let (done, wait) = oneshot::channel();
        let finish = async {
            if self.tx.send(Msg::Close(done)).await.is_ok() {
                let _ = wait.await;
            }
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, finish).await.is_err() {
            tracing::error!("audit writer did not finish within the shutdown timeout");
            self.task.abort();
        }
        let _ = self.task.await;
    }
}

/// A copy of every record for another consumer (surveillance), sent with `try_send`:
/// when it is behind, records are counted in `dropped` instead of slowing requests.
#[derive(Debug, Clone)]
pub struct Tee {
    /// Where the copies go.
    pub tx: mpsc::Sender<AuditEntry>,
    /// Copies the consumer was too far behind to take.
    pub dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Tee {
    fn send(&self, e: &AuditEntry) {
        if self.tx.try_send(e.clone()).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_loop(
    store: Store,
    chain_id: String,
    mut head: ChainHead,
    mut rx: mpsc::Receiver<Msg>,
    shutting_down: Arc<AtomicBool>,
    tee: Option<Tee>,
) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(MAX_BATCH);
    let mut witness = Witness::new(&head);
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut closing = None;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(e) => {
                    if let Some(t) = &tee {
                        t.send(&e);
                    }
                    batch.push(head.seal(&chain_id, *e));
                }
                Msg::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        store_batch(&store, &chain_id, &batch, &shutting_down).await;
        batch.clear();
        witness.maybe_log(&chain_id, &head, false);
        if let Some(done) = closing {
            // Whatever was queued behind the close message is written too.
            while let Ok(Msg::Record(e)) = rx.try_recv() {
                batch.push(head.seal(&chain_id, *e));
            }
            store_batch(&store, &chain_id, &batch, &shutting_down).await;
            witness.maybe_log(&chain_id, &head, true);
            let _ = done.send(());
            return;
        }
    }
}

/// Logs the chain head now and then, so that the log shipper carries anchors for
/// `bourse audit verify --anchor` out of the database's reach.
struct Witness {
    seq: i64,
    at: std::time::Instant,
}

/// A head line at least this often while records are written...
const WITNESS_EVERY: Duration = Duration::from_secs(60);
/// ...or after this many records.
const WITNESS_RECORDS: i64 = 10_000;

impl Witness {
    fn new(head: &ChainHead) -> Self {
        Self {
            seq: head.seq,
            at: std::time::Instant::now(),
        }
    }

    fn maybe_log(&mut self, chain_id: &str, head: &ChainHead, closing: bool) {
        let due = head.seq - self.seq >= WITNESS_RECORDS || self.at.elapsed() >= WITNESS_EVERY;
        if head.seq > self.seq && (due || closing) {
            tracing::info!(
                anchor = %format_args!("{chain_id}:{}:{}", head.seq, head.hash),
                "audit chain head"
            );
            self.seq = head.seq;
            self.at = std::time::Instant::now();
        }
    }
}

/// Stores one sealed batch, retrying until it is stored. A failed commit may still have
/// landed (the answer was lost), so before each retry the chain head says whether it did.
async fn store_batch(store: &Store, chain_id: &str, batch: &[AuditRecord], closing: &AtomicBool) {
    let Some(last) = batch.last() else { return };
    let mut backoff = Duration::from_millis(50);
    let mut attempt = 0u32;
    loop {
        if attempt > 0 {
            match store.audit_chain_head(chain_id).await {
                Ok(h) if h.seq >= last.seq => return,
                _ => {}
            }
        }
        match store.append_audit(batch).await {
            Ok(()) => return,
            Err(e) if closing.load(Ordering::Relaxed) => {
                tracing::error!(
                    error = %e,
                    records = batch.len(),
                    "audit write failed during shutdown; these records are not stored"
                );
                return;
            }
            Err(e) => {
                attempt += 1;
                // The store logged the driver error's kind; no record content here.
                tracing::error!(
                    error = %e,
                    records = batch.len(),
                    attempt,
                    "audit write failed; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// At most 128 characters of a client-supplied value, for details.
pub fn short(text: &str) -> String {
    text.chars().take(128).collect()
}

/// The current request's audit context, for work spawned on another task.
pub(crate) fn current() -> Option<Arc<Mutex<Context>>> {
    CONTEXT.try_with(Arc::clone).ok()
}

/// Runs `fut` with the given request's audit context (see [`current`]).
pub(crate) async fn propagate<F: Future>(ctx: Option<Arc<Mutex<Context>>>, fut: F) -> F::Output {
    match ctx {
        Some(c) => CONTEXT.scope(c, fut).await,
        None => fut.await,
    }
}
