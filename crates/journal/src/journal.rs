//! [`Journal`]: segment files in one directory, recovery on open, group commit, replay
//! and pruning.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::format::{
    self, FRAME_OVERHEAD, Frame, FrameReader, HeaderProblem, MAX_PAYLOAD_BYTES, SEGMENT_HEADER_LEN,
};
use crate::snapshot::{self, Snapshot};

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".log";

/// Tunables of a [`Journal`]. None of them is part of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// A commit that finds the active segment at least this long first starts a new
    /// segment, so that [`Journal::prune`] can delete whole files.
    pub max_segment_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            max_segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What [`Journal::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// The last record in the journal (0 when it holds none). The next append gets
    /// `last_seq + 1`.
    pub last_seq: u64,
    /// Bytes cut from the end of the last segment: a torn write, garbage, or damaged
    /// records with no valid record after them. 0 after a clean shutdown.
    pub truncated_bytes: u64,
    /// Records scanned and verified.
    pub records: u64,
    /// Segment files in the journal.
    pub segments: usize,
}

/// How much group commit shared: records made durable and the commits (each one
/// `fsync`) that did it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits that wrote something, each ending with one `fdatasync`.
    pub commits: u64,
    /// Records those commits made durable.
    pub records: u64,
}

impl CommitStats {
    /// Records per fsync, the figure group commit exists to raise.
    pub fn records_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.records as f64 / self.commits as f64
        }
    }
}

/// What [`Journal::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Segment files deleted (every record in them was covered by a kept snapshot).
    pub segments_removed: usize,
    /// Snapshot files deleted (older than the oldest kept snapshot).
    pub snapshots_removed: usize,
}

#[derive(Debug)]
struct Segment {
    base_seq: u64,
    path: PathBuf,
}

/// The append-only command log: one writer, records numbered 1, 2, 3… without gaps.
///
/// [`append`](Self::append) only buffers; [`commit`](Self::commit) writes everything
/// buffered and `fdatasync`s once, and only then is any of it durable. A record must
/// not be acknowledged to anyone before the commit that covers it returned `Ok`.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    options: JournalOptions,
    /// Sorted by `base_seq`; the last one is the active segment.
    segments: Vec<Segment>,
    active: File,
    active_len: u64,
    pending: Vec<u8>,
    next_seq: u64,
    durable_seq: u64,
    poisoned: bool,
    stats: CommitStats,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` with default options. See
    /// [`open_with`](Self::open_with).
    pub fn open(dir: impl AsRef<Path>) -> Result<(Self, Recovery), JournalError> {
        Self::open_with(dir, JournalOptions::default())
    }

    /// Opens (or creates) the journal in `dir`, verifying every record.
    ///
    /// Recovery rules:
    /// - Every record's CRC is checked, and sequence numbers must run on without a gap
    ///   from one record and one segment to the next.
    /// - Damage at the end of the last segment (a record cut short, a bad checksum or
    ///   length, garbage) with no valid record after it is a torn tail: the file is
    ///   truncated at the last good record and the bytes cut are reported.
    /// - Damage with a valid record anywhere after it, or in any segment but the last
    ///   (those were complete and fsynced before the next one was created), is an error:
    ///   nothing is cut, because an acknowledged record may lie behind it.
    /// - Whatever survives is fsynced before this returns, so records that reached the
    ///   page cache before a crash but were never committed are durable before anything
    ///   is appended after them.
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<(Self, Recovery), JournalError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        snapshot::remove_temporaries(&dir)?;
        let mut segments = list_segments(&dir)?;
        if segments.is_empty() {
            let path = create_segment(&dir, 1)?;
            sync_dir(&dir)?;
            segments.push(Segment { base_seq: 1, path });
        }

        let mut expected = segments[0].base_seq;
        let mut truncated_bytes = 0;
        let mut records = 0;
        let count = segments.len();
        // Each segment is checked on its own from its base sequence number (they are
        // independent files), in parallel, a few at a time; the results are then
        // chained in order, so the first damaged or out-of-sequence segment is the
        // one reported, exactly as a serial scan would.
        let width = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut scans = Vec::with_capacity(count);
        for (c, chunk) in segments.chunks(width).enumerate() {
            let results: Vec<Result<Scan, JournalError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(j, segment)| {
                        let is_last = c * width + j + 1 == count;
                        scope.spawn(move || scan_segment(segment, segment.base_seq, is_last))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            scans.extend(results);
        }
        for (segment, scan) in segments.iter().zip(scans) {
            if segment.base_seq != expected {
                return Err(JournalError::SequenceGap {
                    path: segment.path.clone(),
                    expected,
                    found: segment.base_seq,
                });
            }
            let scan = scan?;
            records += scan.next_seq - expected;
            expected = scan.next_seq;
            truncated_bytes += scan.truncated_bytes;
        }

        let active_path = &segments[count - 1].path;
        let active = OpenOptions::new().append(true).open(active_path)?;
        let active_len = active.metadata()?.len();
        active.sync_data()?;
        let last_seq = expected - 1;
        let recovery = Recovery {
            last_seq,
            truncated_bytes,
            records,
            segments: count,
        };
        let journal = Self {
            dir,
            options,
            segments,
            active,
            active_len,
            pending: Vec::with_capacity(64 * 1024),
            next_seq: expected,
            durable_seq: last_seq,
            poisoned: false,
            stats: CommitStats::default(),
        };
        Ok((journal, recovery))
    }

    /// Buffers one record and returns its sequence number. Nothing is written, and the
    /// record is not durable, until [`commit`](Self::commit).
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(JournalError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let seq = self.next_seq;
        format::encode_record(&mut self.pending, seq, payload);
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes every buffered record and `fdatasync`s once for all of them; returns the
    /// last durable sequence number. With nothing buffered it returns at once.
    ///
    /// After an error the journal is poisoned (see [`JournalError::Poisoned`]): none of
    /// the buffered records may be acknowledged, and the journal must be reopened.
    pub fn commit(&mut self) -> Result<u64, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if self.pending.is_empty() {
            return Ok(self.durable_seq);
        }
        if let Err(e) = self.write_pending() {
            self.poisoned = true;
            return Err(e.into());
        }
        self.stats.commits += 1;
        self.stats.records += self.next_seq - 1 - self.durable_seq;
        self.durable_seq = self.next_seq - 1;
        self.pending.clear();
        Ok(self.durable_seq)
    }

    fn write_pending(&mut self) -> io::Result<()> {
        // Rotate before writing, not after: a failure here leaves the batch unwritten,
        // rather than making a durable batch look failed. A segment only rotates once it
        // holds a record, so the new base is always above the old one.
        let active_base = self.segments[self.segments.len() - 1].base_seq;
        if self.active_len >= self.options.max_segment_bytes && active_base <= self.durable_seq {
            let base_seq = self.durable_seq + 1;
            let path = create_segment(&self.dir, base_seq)?;
            sync_dir(&self.dir)?;
            self.active = OpenOptions::new().append(true).open(&path)?;
            self.active_len = SEGMENT_HEADER_LEN as u64;
            self.segments.push(Segment { base_seq, path });
        }
        self.active.write_all(&self.pending)?;
        self.active_len += self.pending.len() as u64;
        self.active.sync_data()
    }

    /// Calls `apply(seq, payload)` for every durable record with `seq > after_seq`, in
    /// order, and returns how many it delivered. `after_seq` is a snapshot's sequence
    /// number, or 0 to replay everything.
    ///
    /// Records are read through one 1 MiB buffer and handed out as borrowed slices, so
    /// nothing is allocated per record; every CRC is checked again.
    pub fn replay<F>(&self, after_seq: u64, mut apply: F) -> Result<u64, JournalError>
    where
        F: FnMut(u64, &[u8]),
    {
        let last = self.durable_seq;
        if after_seq >= last {
            return Ok(0);
        }
        let first = self.first_seq();
        if after_seq + 1 < first {
            // The records in between were pruned; replaying would silently skip them.
            return Err(JournalError::SequenceGap {
                path: self.dir.clone(),
                expected: after_seq + 1,
                found: first,
            });
        }
        let mut delivered = 0;
        let mut seen = after_seq;
        for (i, segment) in self.segments.iter().enumerate() {
            let segment_last = self
                .segments
                .get(i + 1)
                .map_or(last, |next| next.base_seq - 1);
            if segment_last <= after_seq {
                continue;
            }
            let mut file = File::open(&segment.path)?;
            read_header(&mut file, segment)?;
            let mut reader = FrameReader::new(file, SEGMENT_HEADER_LEN as u64);
            let mut expected = segment.base_seq;
            loop {
                let offset = reader.offset();
                match reader.next_frame()? {
                    Frame::Record { seq, payload } => {
                        if seq != expected {
                            return Err(JournalError::SequenceGap {
                                path: segment.path.clone(),
                                expected,
                                found: seq,
                            });
                        }
                        expected += 1;
                        if seq > after_seq {
                            apply(seq, payload);
                            delivered += 1;
                            seen = seq;
                        }
                        if seq == segment_last {
                            break;
                        }
                    }
                    Frame::End => break,
                    Frame::Partial => {
                        return Err(corrupt(segment, offset, "record cut short"));
                    }
                    Frame::Bad(reason) => return Err(corrupt(segment, offset, reason)),
                }
            }
        }
        if seen != last {
            let segment = &self.segments[self.segments.len() - 1];
            return Err(corrupt(
                segment,
                0,
                "journal ends before its last durable record",
            ));
        }
        Ok(delivered)
    }

    /// Writes a snapshot of the state after applying every record up to `seq`, atomically
    /// (temporary file, fsync, rename, directory fsync) as `snapshot-<seq>.bin` with a
    /// CRC. `seq` must be durable already.
    pub fn write_snapshot(&self, seq: u64, bytes: &[u8]) -> Result<(), JournalError> {
        if seq > self.durable_seq {
            return Err(JournalError::SnapshotAhead {
                snapshot_seq: seq,
                durable_seq: self.durable_seq,
            });
        }
        snapshot::write(&self.dir, seq, bytes)
    }

    /// The newest intact snapshot from which the journal can still be replayed, or `None`
    /// when there is none and the journal starts at record 1 (replay everything).
    ///
    /// A damaged snapshot (bad CRC, short file) is skipped and the next older one tried;
    /// the skipped files are listed in [`Snapshot::skipped`]. An intact snapshot newer
    /// than the durable journal is an error, since acknowledged records would be missing.
    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>, JournalError> {
        let first_seq = self.first_seq();
        let mut skipped = Vec::new();
        for (seq, path) in snapshot::list(&self.dir)?.into_iter().rev() {
            let Some(bytes) = snapshot::read(&path, seq)? else {
                skipped.push(path);
                continue;
            };
            if seq > self.durable_seq {
                return Err(JournalError::SnapshotAhead {
                    snapshot_seq: seq,
                    durable_seq: self.durable_seq,
                });
            }
            if seq + 1 < first_seq {
                // Intact, but the records after it were pruned.
                skipped.push(path);
                continue;
            }
            return Ok(Some(Snapshot {
                seq,
                bytes,
                skipped,
            }));
        }
        if first_seq > 1 {
            return Err(JournalError::NoUsableSnapshot { first_seq });
        }
        Ok(None)
    }

    /// Deletes what is no longer needed to start: keeps the newest `keep_snapshots`
    /// (at least 1) intact, usable snapshots and the segments needed to replay from the
    /// oldest of them; deletes older snapshots and every segment (never the active one)
    /// whose records all lie at or before it. Keeping two lets a damaged newest snapshot
    /// fall back to the previous one. Does nothing when there is no usable snapshot.
    pub fn prune(&mut self, keep_snapshots: usize) -> Result<PruneReport, JournalError> {
        let first_seq = self.first_seq();
        let mut kept = Vec::new();
        let all = snapshot::list(&self.dir)?;
        for (seq, path) in all.iter().rev() {
            if kept.len() == keep_snapshots.max(1) {
                break;
            }
            if *seq <= self.durable_seq
                && *seq + 1 >= first_seq
                && snapshot::read(path, *seq)?.is_some()
            {
                kept.push(*seq);
            }
        }
        let Some(&oldest_kept) = kept.last() else {
            return Ok(PruneReport::default());
        };
        let mut report = PruneReport::default();
        // Oldest first, so the journal stays contiguous if this is interrupted.
        while self.segments.len() > 1 && self.segments[1].base_seq <= oldest_kept + 1 {
            let segment = self.segments.remove(0);
            fs::remove_file(&segment.path)?;
            report.segments_removed += 1;
        }
        for (seq, path) in &all {
            if *seq < oldest_kept {
                fs::remove_file(path)?;
                report.snapshots_removed += 1;
            }
        }
        sync_dir(&self.dir)?;
        Ok(report)
    }

    /// The directory holding the segments and snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The oldest record still held (1 unless segments were pruned). When the journal is
    /// empty this is the sequence number the first append will get.
    pub fn first_seq(&self) -> u64 {
        self.segments[0].base_seq
    }

    /// The last appended record, durable or not (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The last record made durable by a commit, or found on open.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Records appended but not yet committed.
    pub fn pending_records(&self) -> u64 {
        self.next_seq - 1 - self.durable_seq
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Commits and records since this journal was opened.
    pub fn stats(&self) -> CommitStats {
        self.stats
    }
}

fn corrupt(segment: &Segment, offset: u64, reason: &'static str) -> JournalError {
    JournalError::Corrupt {
        path: segment.path.clone(),
        offset,
        reason,
    }
}

fn segment_name(base_seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{base_seq:020}{SEGMENT_SUFFIX}")
}

fn list_segments(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(base_seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push(Segment {
            base_seq,
            path: entry.path(),
        });
    }
    segments.sort_by_key(|s| s.base_seq);
    Ok(segments)
}

/// Creates a segment holding only its header, fsynced. The caller fsyncs the directory.
fn create_segment(dir: &Path, base_seq: u64) -> io::Result<PathBuf> {
    let path = dir.join(segment_name(base_seq));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(&format::segment_header(base_seq))?;
    file.sync_data()?;
    Ok(path)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_header(file: &mut File, segment: &Segment) -> Result<(), JournalError> {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact(&mut header)?;
    let bad = |reason: String| JournalError::BadHeader {
        path: segment.path.clone(),
        reason,
    };
    match format::parse_segment_header(&header) {
        Ok(base) if base == segment.base_seq => Ok(()),
        Ok(base) => Err(bad(format!(
            "header says base seq {base}, file name says {}",
            segment.base_seq
        ))),
        Err(HeaderProblem::Magic) => Err(bad("not a bourse journal segment".into())),
        Err(HeaderProblem::Version(v)) => Err(bad(format!("unsupported format version {v}"))),
    }
}

struct Scan {
    next_seq: u64,
    truncated_bytes: u64,
}

fn scan_segment(segment: &Segment, expected: u64, is_last: bool) -> Result<Scan, JournalError> {
    if segment.base_seq != expected {
        return Err(JournalError::SequenceGap {
            path: segment.path.clone(),
            expected,
            found: segment.base_seq,
        });
    }
    let mut file = File::open(&segment.path)?;
    let len = file.metadata()?.len();
    if len < SEGMENT_HEADER_LEN as u64 {
        if !is_last {
            return Err(JournalError::BadHeader {
                path: segment.path.clone(),
                reason: "file shorter than its header".into(),
            });
        }
        // A crash while the segment was being created: it holds no record yet.
        let mut file = OpenOptions::new().write(true).open(&segment.path)?;
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&format::segment_header(segment.base_seq))?;
        file.sync_all()?;
        return Ok(Scan {
            next_seq: expected,
            truncated_bytes: len,
        });
    }
    read_header(&mut file, segment)?;
    let mut reader = FrameReader::new(file, SEGMENT_HEADER_LEN as u64);
    let mut next_seq = expected;
    loop {
        let offset = reader.offset();
        let reason = match reader.next_frame()? {
            Frame::Record { seq, .. } => {
                if seq != next_seq {
                    return Err(JournalError::SequenceGap {
                        path: segment.path.clone(),
                        expected: next_seq,
                        found: seq,
                    });
                }
                next_seq += 1;
                continue;
            }
            Frame::End => {
                return Ok(Scan {
                    next_seq,
                    truncated_bytes: 0,
                });
            }
            Frame::Partial => "record cut short by the end of the file",
            Frame::Bad(reason) => reason,
        };
        if !is_last || valid_record_after(&segment.path, offset, next_seq)? {
            return Err(corrupt(segment, offset, reason));
        }
        let file = OpenOptions::new().write(true).open(&segment.path)?;
        file.set_len(offset)?;
        file.sync_all()?;
        return Ok(Scan {
            next_seq,
            truncated_bytes: len - offset,
        });
    }
}

/// Whether a valid record with a sequence number of at least `next_seq` starts anywhere
/// after the damaged frame at `offset`. Any such record means the damage is in the
/// middle of the log, not a torn tail. Only runs on damage, so reading the rest of one
/// segment into memory is fine.
fn valid_record_after(path: &Path, offset: u64, next_seq: u64) -> io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest)?;
    // A record of seq s needs at least (s - next_seq) frames before it.
    let max_seq = next_seq.saturating_add(rest.len() as u64 / FRAME_OVERHEAD as u64);
    for start in 1..rest.len().saturating_sub(FRAME_OVERHEAD - 1) {
        let candidate = &rest[start..];
        let seq = format::read_u64(&candidate[4..12]);
        if (next_seq..=max_seq).contains(&seq) && format::check_frame(candidate).is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}
