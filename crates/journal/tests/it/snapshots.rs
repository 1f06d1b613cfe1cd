use std::fs::{self, OpenOptions};

use bourse_journal::{Journal, JournalError, JournalOptions};

use crate::{assert_records, flip_byte_at, replay_all, segments, write_records};

fn snapshot_path(dir: &std::path::Path, seq: u64) -> std::path::PathBuf {
    dir.join(format!("snapshot-{seq:020}.bin"))
}

fn state_at(seq: u64) -> Vec<u8> {
    format!("state after {seq} commands")
        .into_bytes()
        .repeat(50)
}

#[test]
fn start_is_the_latest_snapshot_plus_exactly_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    write_records(&mut journal, 60, 8);
    journal.write_snapshot(60, &state_at(60)).unwrap();
    write_records(&mut journal, 100, 8);
    drop(journal);

    let (journal, _) = Journal::open(dir.path()).unwrap();
    let snapshot = journal.latest_snapshot().unwrap().unwrap();
    assert_eq!(snapshot.seq, 60);
    assert_eq!(snapshot.bytes, state_at(60));
    assert!(snapshot.skipped.is_empty());
    assert_records(&replay_all(&journal, snapshot.seq), 61, 100);
}

#[test]
fn no_snapshot_means_replay_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    write_records(&mut journal, 5, 8);
    assert_eq!(journal.latest_snapshot().unwrap(), None);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    write_records(&mut journal, 90, 8);
    journal.write_snapshot(30, &state_at(30)).unwrap();
    journal.write_snapshot(60, &state_at(60)).unwrap();
    journal.write_snapshot(90, &state_at(90)).unwrap();
    drop(journal);
    // 90: one flipped byte in the state; 60: cut short.
    flip_byte_at(&snapshot_path(dir.path(), 90), 100);
    let sixty = snapshot_path(dir.path(), 60);
    let len = fs::metadata(&sixty).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&sixty)
        .unwrap()
        .set_len(len - 1)
        .unwrap();

    let (journal, _) = Journal::open(dir.path()).unwrap();
    let snapshot = journal.latest_snapshot().unwrap().unwrap();
    assert_eq!(snapshot.seq, 30);
    assert_eq!(snapshot.bytes, state_at(30));
    assert_eq!(
        snapshot.skipped,
        [snapshot_path(dir.path(), 90), snapshot_path(dir.path(), 60)]
    );
    assert_records(&replay_all(&journal, 30), 31, 90);
}

#[test]
fn a_snapshot_of_records_not_yet_durable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    write_records(&mut journal, 10, 8);
    journal.append(b"pending").unwrap();
    assert!(matches!(
        journal.write_snapshot(11, b"too early"),
        Err(JournalError::SnapshotAhead {
            snapshot_seq: 11,
            durable_seq: 10
        })
    ));
    assert!(!snapshot_path(dir.path(), 11).exists());
}

#[test]
fn a_leftover_temporary_snapshot_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    write_records(&mut journal, 10, 8);
    journal.write_snapshot(5, &state_at(5)).unwrap();
    drop(journal);
    // A crash between writing the temporary file and renaming it.
    let temp = dir.path().join(format!("snapshot-{:020}.bin.tmp", 10));
    fs::write(&temp, b"half a snapshot").unwrap();

    let (journal, _) = Journal::open(dir.path()).unwrap();
    assert!(!temp.exists());
    assert_eq!(journal.latest_snapshot().unwrap().unwrap().seq, 5);
}

#[test]
fn pruning_keeps_what_the_kept_snapshots_need() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        max_segment_bytes: 2048,
    };
    let (mut journal, _) = Journal::open_with(dir.path(), options).unwrap();
    for seq in [100, 200, 300, 400] {
        write_records(&mut journal, seq, 10);
        journal.write_snapshot(seq, &state_at(seq)).unwrap();
    }
    write_records(&mut journal, 450, 10);
    let before = segments(dir.path()).len();

    let report = journal.prune(2).unwrap();
    assert_eq!(report.snapshots_removed, 2);
    assert!(report.segments_removed > 0);
    assert_eq!(segments(dir.path()).len(), before - report.segments_removed);
    assert!(journal.first_seq() > 1 && journal.first_seq() <= 301);
    assert!(!snapshot_path(dir.path(), 200).exists());
    assert!(snapshot_path(dir.path(), 300).exists());
    assert!(matches!(
        journal.replay(0, |_, _| {}),
        Err(JournalError::SequenceGap { .. })
    ));
    drop(journal);

    let (journal, recovery) = Journal::open_with(dir.path(), options).unwrap();
    assert_eq!(recovery.last_seq, 450);
    assert_eq!(journal.latest_snapshot().unwrap().unwrap().seq, 400);
    assert_records(&replay_all(&journal, 400), 401, 450);
    // The newest snapshot goes bad: the other kept one still has its records.
    flip_byte_at(&snapshot_path(dir.path(), 400), 40);
    let snapshot = journal.latest_snapshot().unwrap().unwrap();
    assert_eq!(snapshot.seq, 300);
    assert_records(&replay_all(&journal, 300), 301, 450);
    // Both bad: the journal no longer starts at 1, so there is nothing to start from.
    flip_byte_at(&snapshot_path(dir.path(), 300), 40);
    assert!(matches!(
        journal.latest_snapshot(),
        Err(JournalError::NoUsableSnapshot { .. })
    ));
}

#[test]
fn pruning_without_a_snapshot_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        max_segment_bytes: 2048,
    };
    let (mut journal, _) = Journal::open_with(dir.path(), options).unwrap();
    write_records(&mut journal, 300, 10);
    let before = segments(dir.path()).len();
    assert_eq!(journal.prune(1).unwrap(), Default::default());
    assert_eq!(segments(dir.path()).len(), before);
    assert_records(&replay_all(&journal, 0), 1, 300);
}
