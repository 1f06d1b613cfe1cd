use std::fs::{self, OpenOptions};
use std::io::Write;

use bourse_journal::{Journal, JournalError, JournalOptions};

use crate::{
    FRAME_OVERHEAD, assert_records, flip_byte_at, flip_byte_from_end, payload_for, record_offset,
    replay_all, segments, write_records,
};

/// Writes `n` records in one segment and returns its path.
fn journal_with(dir: &std::path::Path, n: u64) -> std::path::PathBuf {
    let (mut journal, _) = Journal::open(dir).unwrap();
    write_records(&mut journal, n, 7);
    let all = segments(dir);
    assert_eq!(all.len(), 1);
    all[0].clone()
}

/// Reopens, checks the recovery figures, appends the next record and checks everything
/// survives another reopen.
fn reopen_expecting(dir: &std::path::Path, last_seq: u64, truncated_bytes: u64) {
    let (mut journal, recovery) = Journal::open(dir).unwrap();
    assert_eq!(recovery.last_seq, last_seq);
    assert_eq!(recovery.truncated_bytes, truncated_bytes);
    let next = last_seq + 1;
    assert_eq!(journal.append(&payload_for(next)).unwrap(), next);
    assert_eq!(journal.commit().unwrap(), next);
    drop(journal);

    let (journal, recovery) = Journal::open(dir).unwrap();
    assert_eq!((recovery.last_seq, recovery.truncated_bytes), (next, 0));
    assert_records(&replay_all(&journal, 0), 1, next);
}

#[test]
fn a_record_cut_short_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with(dir.path(), 50);
    let len = fs::metadata(&path).unwrap().len();
    let last_frame = FRAME_OVERHEAD + payload_for(50).len() as u64;
    // Cut inside the last record: keep its header and a few payload bytes.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - last_frame + 14)
        .unwrap();
    reopen_expecting(dir.path(), 49, 14);
}

#[test]
fn a_cut_inside_a_record_header_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with(dir.path(), 20);
    let len = fs::metadata(&path).unwrap().len();
    let last_frame = FRAME_OVERHEAD + payload_for(20).len() as u64;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - last_frame + 5)
        .unwrap();
    reopen_expecting(dir.path(), 19, 5);
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with(dir.path(), 30);
    let garbage: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(97) ^ 0x5C).collect();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&garbage)
        .unwrap();
    reopen_expecting(dir.path(), 30, 37);
}

#[test]
fn zeroes_after_the_last_record_are_truncated() {
    // What a file system that extended the file but never wrote the data leaves.
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with(dir.path(), 30);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0; 4096])
        .unwrap();
    reopen_expecting(dir.path(), 30, 4096);
}

#[test]
fn a_flipped_byte_in_the_last_record_cuts_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with(dir.path(), 40);
    let last_frame = FRAME_OVERHEAD + payload_for(40).len() as u64;
    flip_byte_from_end(&path, 6); // inside the payload
    reopen_expecting(dir.path(), 39, last_frame);
}

#[test]
fn a_flipped_byte_in_a_middle_record_is_an_error_and_cuts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with(dir.path(), 40);
    let len = fs::metadata(&path).unwrap().len();
    // One byte in record 20's payload; records 21..=40 follow intact.
    flip_byte_at(&path, record_offset(20) + 13);
    let error = Journal::open(dir.path()).unwrap_err();
    assert!(
        matches!(&error, JournalError::Corrupt { offset, .. } if *offset == record_offset(20)),
        "{error:?}"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), len, "nothing was cut");
    // Still refused the second time: the damage is not forgotten.
    assert!(matches!(
        Journal::open(dir.path()),
        Err(JournalError::Corrupt { .. })
    ));
}

#[test]
fn a_damaged_length_in_a_middle_record_is_an_error() {
    // A bad length hides where the next record starts; the scan still finds it.
    let dir = tempfile::tempdir().unwrap();
    let path = journal_with(dir.path(), 40);
    flip_byte_at(&path, record_offset(25)); // low byte of record 25's length
    let error = Journal::open(dir.path()).unwrap_err();
    assert!(
        matches!(&error, JournalError::Corrupt { offset, .. } if *offset == record_offset(25)),
        "{error:?}"
    );
}

#[test]
fn damage_at_the_end_of_an_earlier_segment_is_an_error() {
    // An earlier segment was fsynced before the next was created, so damage there is
    // never a torn write.
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        max_segment_bytes: 2048,
    };
    let (mut journal, _) = Journal::open_with(dir.path(), options).unwrap();
    write_records(&mut journal, 300, 10);
    drop(journal);
    let all = segments(dir.path());
    assert!(all.len() > 2);
    flip_byte_from_end(&all[0], 2);
    assert!(matches!(
        Journal::open_with(dir.path(), options),
        Err(JournalError::Corrupt { path, .. }) if path == all[0]
    ));
}

#[test]
fn a_missing_segment_is_a_sequence_gap() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        max_segment_bytes: 2048,
    };
    let (mut journal, _) = Journal::open_with(dir.path(), options).unwrap();
    write_records(&mut journal, 300, 10);
    drop(journal);
    let all = segments(dir.path());
    fs::remove_file(&all[1]).unwrap();
    assert!(matches!(
        Journal::open_with(dir.path(), options),
        Err(JournalError::SequenceGap { .. })
    ));
}

#[test]
fn a_segment_torn_while_being_created_is_reset() {
    let dir = tempfile::tempdir().unwrap();
    journal_with(dir.path(), 12);
    // The crash came after creating the next segment but before its header was written.
    let next = dir.path().join(format!("segment-{:020}.log", 13));
    fs::write(&next, [b'B', b'R', b'S']).unwrap();
    reopen_expecting(dir.path(), 12, 3);
    assert_eq!(segments(dir.path()).len(), 2);
}

#[test]
fn a_foreign_file_named_like_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(format!("segment-{:020}.log", 1)),
        b"this is not a journal segment at all",
    )
    .unwrap();
    assert!(matches!(
        Journal::open(dir.path()),
        Err(JournalError::BadHeader { .. })
    ));
}
