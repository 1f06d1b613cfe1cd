//! The audit trail (`audit_log`): append-only, one SHA-256 hash chain per node.
//!
//! Each record holds the hash of the one before it in its chain (`prev_hash`) and its
//! own `hash` over a canonical, length-prefixed encoding of every field
//! ([`record_hash`]), so a record that was changed, removed or moved breaks the chain
//! at that record, and [`Store::verify_audit`] names it. Chains are per node
//! (`chain_id`) so that nodes sharing a database append without coordinating; each
//! chain numbers its records from 1 without gaps.

use sha2::{Digest, Sha256};

use crate::error::db_error;
use crate::trading::RowsSql;
use crate::{Backend, Pool, Store, StoreError};

/// `prev_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the gateway knows about one finished request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEntry {
    /// When the request arrived, unix microseconds.
    pub ts_us: i64,
    /// The request id (also in `X-Request-Id`).
    pub request_id: String,
    /// `public` or `admin`.
    pub listener: String,
    /// The calling user.
    pub user_id: Option<String>,
    /// The user's session.
    pub session_id: Option<String>,
    /// The OAuth client the token was issued to.
    pub client_id: Option<String>,
    /// The account acted on when the caller is not authenticated (the target of a
    /// failed login or second factor), so its owner sees the attempt.
    pub subject_user_id: Option<String>,
    /// The admin API key (admin listener).
    pub admin_key_id: Option<String>,
    /// The peer address.
    pub source_ip: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Route template (`/v1/orders/{id}`), never the raw path; `(unmatched)` for 404s.
    pub route: String,
    /// Response status.
    pub status: i64,
    /// Microseconds from arrival to response.
    pub latency_us: i64,
    /// The problem `code` of an error response.
    pub problem_code: Option<String>,
    /// A sensitive action's name, e.g. `auth.login`.
    pub action: Option<String>,
    /// The action's details, a JSON object as text (never secrets).
    pub details: Option<String>,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Insertion order across chains (paging only; not covered by the hash).
    pub id: i64,
    /// The node's chain.
    pub chain_id: String,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// The request.
    pub entry: AuditEntry,
    /// Hash of the previous record of the chain, [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// [`record_hash`] of this record.
    pub hash: String,
}

fn put_bytes(h: &mut Sha256, b: &[u8]) {
    h.update([1u8]);
    h.update((b.len() as u64).to_be_bytes());
    h.update(b);
}

fn put_opt(h: &mut Sha256, s: Option<&str>) {
    match s {
        Some(s) => put_bytes(h, s.as_bytes()),
        None => h.update([0u8]),
    }
}

fn put_int(h: &mut Sha256, n: i64) {
    h.update([2u8]);
    h.update(n.to_be_bytes());
}

/// SHA-256 (lowercase hex) over a version tag and every field in a fixed order: texts as
/// `1 | u64 length | bytes`, a missing text as `0`, integers as `2 | i64`, all
/// big-endian, so no two different records encode alike.
pub fn record_hash(chain_id: &str, seq: i64, e: &AuditEntry, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    put_bytes(&mut h, b"bourse-audit-v1");
    put_bytes(&mut h, chain_id.as_bytes());
    put_int(&mut h, seq);
    put_int(&mut h, e.ts_us);
    put_bytes(&mut h, e.request_id.as_bytes());
    put_bytes(&mut h, e.listener.as_bytes());
    put_opt(&mut h, e.user_id.as_deref());
    put_opt(&mut h, e.session_id.as_deref());
    put_opt(&mut h, e.client_id.as_deref());
    put_opt(&mut h, e.admin_key_id.as_deref());
    put_opt(&mut h, e.source_ip.as_deref());
    put_bytes(&mut h, e.method.as_bytes());
    put_bytes(&mut h, e.route.as_bytes());
    put_int(&mut h, e.status);
    put_int(&mut h, e.latency_us);
    put_opt(&mut h, e.problem_code.as_deref());
    put_opt(&mut h, e.action.as_deref());
    put_opt(&mut h, e.details.as_deref());
    put_opt(&mut h, e.subject_user_id.as_deref());
    put_bytes(&mut h, prev_hash.as_bytes());
    hex::encode(h.finalize())
}

/// The end of a chain: the last record's `seq` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Last sequence number (0 for an empty chain).
    pub seq: i64,
    /// Its hash ([`GENESIS_HASH`] for an empty chain).
    pub hash: String,
}

impl ChainHead {
    /// The head of a chain with no records.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// Seals `entry` as the next record of `chain_id` and moves the head to it.
    pub fn seal(&mut self, chain_id: &str, entry: AuditEntry) -> AuditRecord {
        let seq = self.seq + 1;
        let prev_hash = std::mem::take(&mut self.hash);
        let hash = record_hash(chain_id, seq, &entry, &prev_hash);
        self.seq = seq;
        self.hash.clone_from(&hash);
        AuditRecord {
            id: 0,
            chain_id: chain_id.to_owned(),
            seq,
            entry,
            prev_hash,
            hash,
        }
    }
}

/// How a chain is broken at its first bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditBreak {
    /// The record with this `seq` is not there (the next one found has `found`).
    Missing {
        /// The expected sequence number.
        seq: i64,
        /// The sequence number found instead.
        found: i64,
    },
    /// The record's `prev_hash` is not the previous record's hash: a record before it
    /// was removed or replaced, or records were swapped.
    OutOfOrder {
        /// The record.
        seq: i64,
    },
    /// The record's contents do not match its hash: it was changed.
    Changed {
        /// The record.
        seq: i64,
    },
    /// An anchor names this record, but the chain ends before it (at `last`): records
    /// were cut off the end.
    Truncated {
        /// The anchored record.
        seq: i64,
        /// The chain's last record now (0: no records at all).
        last: i64,
    },
    /// The anchored record is there and the chain links up, but its hash is not the
    /// anchored one: the chain was rewritten from this record or earlier.
    Rewritten {
        /// The anchored record.
        seq: i64,
    },
}

/// A chain head written down outside the database (`bourse audit head`, or the
/// writer's periodic log line): `chain:seq:hash`. Verifying against it detects what a
/// chain alone cannot: records cut off its end, or the whole chain recomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    /// The chain.
    pub chain_id: String,
    /// The record's sequence number.
    pub seq: i64,
    /// Its hash, lowercase hex.
    pub hash: String,
}

impl std::str::FromStr for AuditAnchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.rsplitn(3, ':');
        let (Some(hash), Some(seq), Some(chain_id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("expected CHAIN:SEQ:HASH".into());
        };
        let seq: i64 = seq
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or("SEQ must be a positive integer")?;
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("HASH must be 64 lowercase hex digits".into());
        }
        if chain_id.is_empty() {
            return Err("CHAIN must not be empty".into());
        }
        Ok(Self {
            chain_id: chain_id.to_owned(),
            seq,
            hash: hash.to_owned(),
        })
    }
}

impl std::fmt::Display for AuditAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.chain_id, self.seq, self.hash)
    }
}

impl AuditBreak {
    /// The sequence number of the first bad record.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Missing { seq, .. }
            | Self::OutOfOrder { seq }
            | Self::Changed { seq }
            | Self::Truncated { seq, .. }
            | Self::Rewritten { seq } => *seq,
        }
    }
}

impl std::fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { seq, found } => write!(
                f,
                "record seq {seq} is missing (removed): the chain goes on at seq {found}"
            ),
            Self::OutOfOrder { seq } => write!(
                f,
                "record seq {seq} does not follow record seq {}: its prev_hash is not that \
                 record's hash (records were reordered, or one before it was replaced)",
                seq - 1
            ),
            Self::Changed { seq } => write!(
                f,
                "record seq {seq} was changed: its contents do not match its hash"
            ),
            Self::Truncated { seq, last } => write!(
                f,
                "record seq {seq} is anchored but the chain ends at seq {last}: records \
                 were removed from its end"
            ),
            Self::Rewritten { seq } => write!(
                f,
                "record seq {seq} does not have its anchored hash: the chain was rewritten \
                 from this record or earlier"
            ),
        }
    }
}

/// The result of walking every chain.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// Records checked (up to each chain's first break).
    pub records: u64,
    /// Chains found.
    pub chains: u64,
    /// The first break of each broken chain, by chain id.
    pub breaks: Vec<(String, AuditBreak)>,
}

/// Walks one chain's records in `seq` order.
#[derive(Debug)]
struct ChainWalk {
    expected: i64,
    prev: String,
}

impl ChainWalk {
    fn new() -> Self {
        Self {
            expected: 1,
            prev: GENESIS_HASH.to_owned(),
        }
    }

    fn step(&mut self, r: &AuditRecord) -> Result<(), AuditBreak> {
        if r.seq != self.expected {
            return Err(AuditBreak::Missing {
                seq: self.expected,
                found: r.seq,
            });
        }
        if r.prev_hash != self.prev {
            return Err(AuditBreak::OutOfOrder { seq: r.seq });
        }
        if record_hash(&r.chain_id, r.seq, &r.entry, &r.prev_hash) != r.hash {
            return Err(AuditBreak::Changed { seq: r.seq });
        }
        self.prev.clone_from(&r.hash);
        self.expected += 1;
        Ok(())
    }
}

/// Filter and cursor of [`Store::list_audit`], newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Records whose actor (user, OAuth client or admin key) has this id.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only security events (actions `auth.*` and `wallet.*`) of this user.
    pub security_events_of: Option<String>,
    /// Arrived at or after (unix microseconds).
    pub from_us: Option<i64>,
    /// Arrived before (unix microseconds).
    pub to_us: Option<i64>,
    /// Only records with a smaller `id` (the cursor).
    pub before_id: Option<i64>,
    /// Page size, brought into `1..=`[`crate::MAX_PAGE_SIZE`].
    pub limit: u32,
}

macro_rules! audit_columns {
    () => {
        "chain_id, seq, ts_us, request_id, listener, user_id, session_id, client_id, \
         admin_key_id, source_ip, method, route, status, latency_us, problem_code, action, \
         details, subject_user_id, prev_hash, hash"
    };
}

static INSERT_AUDIT: RowsSql = RowsSql::new(
    concat!("INSERT INTO audit_log (", audit_columns!(), ") VALUES"),
    20,
    "",
);

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    chain_id: String,
    seq: i64,
    ts_us: i64,
    request_id: String,
    listener: String,
    user_id: Option<String>,
    session_id: Option<String>,
    client_id: Option<String>,
    admin_key_id: Option<String>,
    source_ip: Option<String>,
    method: String,
    route: String,
    status: i64,
    latency_us: i64,
    problem_code: Option<String>,
    action: Option<String>,
    details: Option<String>,
    subject_user_id: Option<String>,
    prev_hash: String,
    hash: String,
}

impl From<Row> for AuditRecord {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            chain_id: r.chain_id,
            seq: r.seq,
            entry: AuditEntry {
                ts_us: r.ts_us,
                request_id: r.request_id,
                listener: r.listener,
                user_id: r.user_id,
                session_id: r.session_id,
                client_id: r.client_id,
                admin_key_id: r.admin_key_id,
                source_ip: r.source_ip,
                method: r.method,
                route: r.route,
                status: r.status,
                latency_us: r.latency_us,
                problem_code: r.problem_code,
                action: r.action,
                details: r.details,
                subject_user_id: r.subject_user_id,
            },
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

mod sql_sqlite {
    pub const HEAD: &str =
        "SELECT seq, hash FROM audit_log WHERE chain_id = ?1 ORDER BY seq DESC LIMIT 1";
    pub const CHAINS: &str = "SELECT DISTINCT chain_id FROM audit_log ORDER BY chain_id";
    pub const CHAIN_PAGE: &str = concat!(
        "SELECT id, ",
        audit_columns!(),
        " FROM audit_log WHERE chain_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    );
    pub const LIST: &str = concat!(
        "SELECT id, ",
        audit_columns!(),
        " FROM audit_log WHERE (?1 IS NULL OR user_id = ?1 OR admin_key_id = ?1 OR client_id = ?1)",
        " AND (?2 IS NULL OR action = ?2)",
        " AND (?3 IS NULL OR ((user_id = ?3 OR subject_user_id = ?3) AND action IS NOT NULL AND ",
        "(action LIKE 'auth.%' OR action LIKE 'wallet.%')))",
        " AND (?4 IS NULL OR ts_us >= ?4) AND (?5 IS NULL OR ts_us < ?5)",
        " AND (?6 IS NULL OR id < ?6) ORDER BY id DESC LIMIT ?7"
    );
}

mod sql_postgres {
    pub const HEAD: &str =
        "SELECT seq, hash FROM audit_log WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1";
    pub const CHAINS: &str = "SELECT DISTINCT chain_id FROM audit_log ORDER BY chain_id";
    pub const CHAIN_PAGE: &str = concat!(
        "SELECT id, ",
        audit_columns!(),
        " FROM audit_log WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    pub const LIST: &str = concat!(
        "SELECT id, ",
        audit_columns!(),
        " FROM audit_log WHERE ($1::text IS NULL OR user_id = $1 OR admin_key_id = $1 OR client_id = $1)",
        " AND ($2::text IS NULL OR action = $2)",
        " AND ($3::text IS NULL OR ((user_id = $3 OR subject_user_id = $3) AND action IS NOT NULL AND ",
        "(action LIKE 'auth.%' OR action LIKE 'wallet.%')))",
        " AND ($4::bigint IS NULL OR ts_us >= $4) AND ($5::bigint IS NULL OR ts_us < $5)",
        " AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7"
    );
}

/// Rows read per round trip while verifying.
const VERIFY_PAGE: i64 = 2000;

impl Store {
    /// Appends sealed records (one chain, consecutive `seq`) in one transaction, in
    /// multi-row statements.
    pub async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        macro_rules! insert_all {
            ($tx:ident, $backend:expr) => {{
                let mut rest = records;
                while !rest.is_empty() {
                    let (take, sql) = INSERT_AUDIT.for_rows($backend, rest.len());
                    let (chunk, tail) = rest.split_at(take);
                    let mut q = sqlx::query(sql);
                    for r in chunk {
                        let e = &r.entry;
                        q = q
                            .bind(&r.chain_id)
                            .bind(r.seq)
                            .bind(e.ts_us)
                            .bind(&e.request_id)
                            .bind(&e.listener)
                            .bind(&e.user_id)
                            .bind(&e.session_id)
                            .bind(&e.client_id)
                            .bind(&e.admin_key_id)
                            .bind(&e.source_ip)
                            .bind(&e.method)
                            .bind(&e.route)
                            .bind(e.status)
                            .bind(e.latency_us)
                            .bind(&e.problem_code)
                            .bind(&e.action)
                            .bind(&e.details)
                            .bind(&e.subject_user_id)
                            .bind(&r.prev_hash)
                            .bind(&r.hash);
                    }
                    q.execute(&mut *$tx).await?;
                    rest = tail;
                }
                $tx.commit().await
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    insert_all!(tx, Backend::Sqlite)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    insert_all!(tx, Backend::Postgres)
                }
                .await
            }
        }
        .map_err(|e| db_error("append_audit", e))
    }

    /// The last record of `chain_id`, or the genesis head for a new chain.
    pub async fn audit_chain_head(&self, chain_id: &str) -> Result<ChainHead, StoreError> {
        let row: Option<(i64, String)> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(sql_sqlite::HEAD)
                    .bind(chain_id)
                    .fetch_optional(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(sql_postgres::HEAD)
                    .bind(chain_id)
                    .fetch_optional(p)
                    .await
            }
        }
        .map_err(|e| db_error("audit_chain_head", e))?;
        Ok(row.map_or_else(ChainHead::genesis, |(seq, hash)| ChainHead { seq, hash }))
    }

    /// Walks every chain from its first record and reports the first break of each.
    pub async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        self.verify_audit_anchored(&[]).await
    }

    /// Every chain's head, by chain id: what to write down outside the database, as
    /// [`AuditAnchor`]s for a later [`Store::verify_audit_anchored`].
    pub async fn audit_heads(&self) -> Result<Vec<AuditAnchor>, StoreError> {
        let mut heads = Vec::new();
        for chain_id in self.audit_chains().await? {
            let h = self.audit_chain_head(&chain_id).await?;
            heads.push(AuditAnchor {
                chain_id,
                seq: h.seq,
                hash: h.hash,
            });
        }
        Ok(heads)
    }

    async fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(sql_sqlite::CHAINS).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_scalar(sql_postgres::CHAINS).fetch_all(p).await,
        }
        .map_err(|e| db_error("audit_chains", e))
    }

    /// [`Store::verify_audit`], and each anchored record must still be there with its
    /// anchored hash: this also catches records cut off a chain's end and a chain
    /// recomputed from scratch, which a chain cannot show by itself.
    pub async fn verify_audit_anchored(
        &self,
        anchors: &[AuditAnchor],
    ) -> Result<AuditReport, StoreError> {
        let op = "verify_audit";
        let mut chains = self.audit_chains().await?;
        for a in anchors {
            if !chains.contains(&a.chain_id) {
                chains.push(a.chain_id.clone());
            }
        }
        chains.sort();
        let mut report = AuditReport {
            chains: chains.len() as u64,
            ..AuditReport::default()
        };
        for chain in chains {
            let mut walk = ChainWalk::new();
            let mut after = 0i64;
            let mut pins: Vec<&AuditAnchor> =
                anchors.iter().filter(|a| a.chain_id == chain).collect();
            pins.sort_by_key(|a| a.seq);
            let mut pins = pins.into_iter().peekable();
            let mut broken = false;
            'pages: loop {
                let rows: Vec<Row> = match &self.pool {
                    Pool::Sqlite(p) => {
                        sqlx::query_as(sql_sqlite::CHAIN_PAGE)
                            .bind(&chain)
                            .bind(after)
                            .bind(VERIFY_PAGE)
                            .fetch_all(p)
                            .await
                    }
                    Pool::Postgres(p) => {
                        sqlx::query_as(sql_postgres::CHAIN_PAGE)
                            .bind(&chain)
                            .bind(after)
                            .bind(VERIFY_PAGE)
                            .fetch_all(p)
                            .await
                    }
                }
                .map_err(|e| db_error(op, e))?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                for r in rows {
                    let r = AuditRecord::from(r);
                    if let Err(b) = walk.step(&r) {
                        report.breaks.push((chain.clone(), b));
                        broken = true;
                        break 'pages;
                    }
                    while let Some(a) = pins.next_if(|a| a.seq <= r.seq) {
                        if a.seq == r.seq && a.hash != r.hash {
                            report
                                .breaks
                                .push((chain.clone(), AuditBreak::Rewritten { seq: a.seq }));
                            broken = true;
                            break 'pages;
                        }
                    }
                    report.records += 1;
                }
            }
            if let (false, Some(a)) = (broken, pins.next()) {
                report.breaks.push((
                    chain.clone(),
                    AuditBreak::Truncated {
                        seq: a.seq,
                        last: walk.expected - 1,
                    },
                ));
            }
        }
        Ok(report)
    }

    /// A page of audit records, newest first.
    pub async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::from(q.limit.clamp(1, crate::MAX_PAGE_SIZE));
        let rows: Vec<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(sql_sqlite::LIST)
                    .bind(&q.actor)
                    .bind(&q.action)
                    .bind(&q.security_events_of)
                    .bind(q.from_us)
                    .bind(q.to_us)
                    .bind(q.before_id)
                    .bind(limit)
                    .fetch_all(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(sql_postgres::LIST)
                    .bind(&q.actor)
                    .bind(&q.action)
                    .bind(&q.security_events_of)
                    .bind(q.from_us)
                    .bind(q.to_us)
                    .bind(q.before_id)
                    .bind(limit)
                    .fetch_all(p)
                    .await
            }
        }
        .map_err(|e| db_error("list_audit", e))?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: i64) -> AuditEntry {
        AuditEntry {
            ts_us: n,
            request_id: format!("r{n}"),
            listener: "public".into(),
            method: "GET".into(),
            route: "/healthz".into(),
            status: 200,
            ..AuditEntry::default()
        }
    }

    #[test]
    fn a_walk_names_the_first_changed_missing_or_moved_record() {
        let mut head = ChainHead::genesis();
        let chain: Vec<_> = (1..=5).map(|n| head.seal("c", entry(n))).collect();
        let walk = |rs: &[AuditRecord]| {
            let mut w = ChainWalk::new();
            rs.iter().try_for_each(|r| w.step(r))
        };
        assert_eq!(walk(&chain), Ok(()));

        let mut changed = chain.clone();
        changed[2].entry.status = 500;
        assert_eq!(walk(&changed), Err(AuditBreak::Changed { seq: 3 }));

        let mut removed = chain.clone();
        removed.remove(1);
        assert_eq!(
            walk(&removed),
            Err(AuditBreak::Missing { seq: 2, found: 3 })
        );

        let mut swapped = chain.clone();
        swapped.swap(1, 2);
        (swapped[1].seq, swapped[2].seq) = (2, 3);
        assert_eq!(walk(&swapped), Err(AuditBreak::OutOfOrder { seq: 2 }));
    }

    #[test]
    fn the_encoding_keeps_fields_apart() {
        let mut a = entry(1);
        a.user_id = Some("ab".into());
        a.session_id = Some("c".into());
        let mut b = entry(1);
        b.user_id = Some("a".into());
        b.session_id = Some("bc".into());
        assert_ne!(
            record_hash("c", 1, &a, GENESIS_HASH),
            record_hash("c", 1, &b, GENESIS_HASH)
        );
        let mut c = entry(1);
        c.user_id = Some(String::new());
        assert_ne!(
            record_hash("c", 1, &entry(1), GENESIS_HASH),
            record_hash("c", 1, &c, GENESIS_HASH)
        );
    }
}
