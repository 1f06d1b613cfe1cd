//! A writer killed with SIGKILL at a random moment loses no acknowledged record.
//!
//! The test binary re-runs itself as the child: the same test function, started with
//! `CHILD_ENV` set, becomes the writer. SIGKILL ends the process, not the machine, so this
//! checks the write path and recovery (torn batches, no lost acknowledged record), not
//! the disk's fsync, which no test on one machine can check.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bourse_journal::Journal;

use crate::{assert_records, payload_for, replay_all};

const CHILD_ENV: &str = "BOURSE_JOURNAL_CRASH_CHILD_DIR";
const TEST_NAME: &str = "crash::sigkill_mid_stream_loses_no_acknowledged_record";

/// The child: append batches of 1..=40 records and commit, printing each durable seq
/// after the commit returned, until killed (or a minute passes if nobody kills it).
fn run_writer(dir: &Path) {
    let (mut journal, _) = Journal::open(dir).unwrap();
    let mut stdout = std::io::stdout().lock();
    let started = Instant::now();
    let mut batch = 1;
    while started.elapsed() < Duration::from_secs(60) {
        for _ in 0..batch {
            let seq = journal.last_seq() + 1;
            journal.append(&payload_for(seq)).unwrap();
        }
        let durable = journal.commit().unwrap();
        writeln!(stdout, "DURABLE {durable}").unwrap();
        stdout.flush().unwrap();
        batch = batch % 40 + 1;
    }
}

fn random_below(bound: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish() % bound
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_record() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_writer(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = 0;
    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.strip_prefix("DURABLE ")?.parse::<u64>().ok())
                .max()
        });
        // Let it get going (the first acknowledgement), then kill at a random moment.
        thread::sleep(Duration::from_millis(150 + random_below(400)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let reported = reader.join().unwrap();
        let reported =
            reported.unwrap_or_else(|| panic!("round {round}: child acknowledged nothing"));
        assert!(reported >= acknowledged, "acknowledgements only grow");
        acknowledged = reported;

        let (journal, recovery) = Journal::open(dir.path()).unwrap();
        assert!(
            recovery.last_seq >= acknowledged,
            "round {round}: acknowledged {acknowledged}, recovered only {}",
            recovery.last_seq
        );
        assert_records(&replay_all(&journal, 0), 1, recovery.last_seq);
        eprintln!(
            "round {round}: acknowledged {acknowledged}, recovered {}, cut {} bytes",
            recovery.last_seq, recovery.truncated_bytes
        );
    }
}
