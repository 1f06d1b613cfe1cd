//! `cargo bench -p bourse-journal --bench journal`: durable commands/s with group commit
//! at several batch sizes, the same through the `GroupCommitter` writer thread with many
//! producers, and replay speed over 1 M records. Prints one line.
//!
//! Files go to `BOURSE_JOURNAL_BENCH_DIR` if set, else the system temp directory; put it
//! on the disk the journal will live on, since the figures are fsync latency.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bourse_journal::{GroupCommitOptions, GroupCommitter, Journal};

const PAYLOAD: [u8; 100] = [0x42; 100];
const RUN: Duration = Duration::from_secs(3);
const REPLAY_RECORDS: u64 = 1_000_000;
const PRODUCERS: usize = 64;

fn bench_root() -> PathBuf {
    std::env::var_os("BOURSE_JOURNAL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// Appends `batch` records and commits, repeatedly for `RUN`: (commands/s, ms per commit).
fn batched(batch: u64) -> (f64, f64) {
    let dir = tempfile::tempdir_in(bench_root()).unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    let started = Instant::now();
    while started.elapsed() < RUN {
        for _ in 0..batch {
            journal.append(&PAYLOAD).unwrap();
        }
        journal.commit().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = journal.stats();
    (
        stats.records as f64 / elapsed,
        elapsed * 1000.0 / stats.commits as f64,
    )
}

/// `PRODUCERS` threads, each keeping `in_flight` submissions outstanding (1 = submit and
/// wait; more stands for many connections per thread, as the async server will have),
/// for `RUN`: (commands/s, commands per fsync).
fn writer_thread(in_flight: usize) -> (f64, f64) {
    let dir = tempfile::tempdir_in(bench_root()).unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let committer = GroupCommitter::spawn(journal, GroupCommitOptions::default()).unwrap();
    let started = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let submitter = committer.submitter();
            thread::spawn(move || {
                let (done, completions) = mpsc::channel();
                let mut outstanding = 0;
                while started.elapsed() < RUN {
                    while outstanding < in_flight {
                        let done = done.clone();
                        submitter
                            .submit(PAYLOAD.to_vec(), move |result| {
                                let _ = done.send(result.map(|_| ()));
                            })
                            .unwrap();
                        outstanding += 1;
                    }
                    completions.recv().unwrap().unwrap();
                    outstanding -= 1;
                }
                for _ in 0..outstanding {
                    completions.recv().unwrap().unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = committer.stats();
    drop(committer.shutdown());
    (stats.records as f64 / elapsed, stats.records_per_commit())
}

/// Writes `REPLAY_RECORDS`, then times reopening (which verifies every record) and a
/// full replay: (open records/s, replay records/s).
fn replay() -> (f64, f64) {
    let dir = tempfile::tempdir_in(bench_root()).unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    for seq in 1..=REPLAY_RECORDS {
        journal.append(&PAYLOAD).unwrap();
        if seq.is_multiple_of(4096) {
            journal.commit().unwrap();
        }
    }
    journal.commit().unwrap();
    drop(journal);

    let started = Instant::now();
    let (journal, recovery) = Journal::open(dir.path()).unwrap();
    let open = started.elapsed().as_secs_f64();
    assert_eq!(recovery.last_seq, REPLAY_RECORDS);

    let started = Instant::now();
    let mut checksum = 0u64;
    let replayed = journal
        .replay(0, |seq, payload| {
            checksum = checksum.wrapping_add(seq ^ u64::from(payload[0]));
        })
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    black_box(checksum);
    assert_eq!(replayed, REPLAY_RECORDS);
    (
        REPLAY_RECORDS as f64 / open,
        REPLAY_RECORDS as f64 / elapsed,
    )
}

fn main() {
    let mut line = String::from("journal (100 B payloads, one fdatasync per commit):");
    for batch in [1, 64, 512] {
        let (rate, ms_per_fsync) = batched(batch);
        line += &format!(" batch {batch}: {rate:.0} cmd/s ({ms_per_fsync:.2} ms/commit);");
    }
    for in_flight in [1, 16] {
        let (rate, per_fsync) = writer_thread(in_flight);
        let total = PRODUCERS * in_flight;
        line += &format!(
            " GroupCommitter, {PRODUCERS} threads x {in_flight} = {total} in flight: \
             {rate:.0} cmd/s, {per_fsync:.1} cmd/fsync;"
        );
    }
    let (open, replay) = replay();
    line += &format!(
        " 1M records: open+verify {open:.0} rec/s, replay {replay:.0} rec/s (warm page cache)"
    );
    println!("{line}");
}
