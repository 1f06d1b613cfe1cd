use bourse_journal::{Journal, JournalError, JournalOptions, MAX_PAYLOAD_BYTES};

use crate::{assert_records, payload_for, replay_all, segments, write_records};

#[test]
fn committed_records_survive_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, recovery) = Journal::open(dir.path()).unwrap();
    assert_eq!((recovery.last_seq, recovery.truncated_bytes), (0, 0));
    assert_eq!(journal.commit().unwrap(), 0, "an empty commit is a no-op");
    write_records(&mut journal, 1000, 37);
    assert_eq!(journal.durable_seq(), 1000);
    let stats = journal.stats();
    assert_eq!((stats.commits, stats.records), (28, 1000));
    drop(journal);

    let (journal, recovery) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovery.last_seq, 1000);
    assert_eq!(recovery.records, 1000);
    assert_eq!(recovery.truncated_bytes, 0);
    assert_records(&replay_all(&journal, 0), 1, 1000);
    assert_records(&replay_all(&journal, 990), 991, 1000);
    assert!(replay_all(&journal, 1000).is_empty());
}

#[test]
fn appended_but_uncommitted_records_are_neither_replayed_nor_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    write_records(&mut journal, 3, 10);
    journal.append(b"never committed").unwrap();
    journal.append(b"nor this").unwrap();
    assert_eq!((journal.last_seq(), journal.pending_records()), (5, 2));
    assert_records(&replay_all(&journal, 0), 1, 3);
    drop(journal);

    let (mut journal, recovery) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovery.last_seq, 3);
    assert_eq!(journal.append(&payload_for(4)).unwrap(), 4);
    assert_eq!(journal.commit().unwrap(), 4);
    assert_records(&replay_all(&journal, 0), 1, 4);
}

#[test]
fn records_span_rotated_segments_and_replay_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        max_segment_bytes: 4096,
    };
    let (mut journal, _) = Journal::open_with(dir.path(), options).unwrap();
    write_records(&mut journal, 2000, 16);
    assert!(journal.segment_count() > 10, "{}", journal.segment_count());
    drop(journal);

    let (journal, recovery) = Journal::open_with(dir.path(), options).unwrap();
    assert_eq!(recovery.last_seq, 2000);
    assert_eq!(recovery.segments, segments(dir.path()).len());
    assert_records(&replay_all(&journal, 0), 1, 2000);
    assert_records(&replay_all(&journal, 1234), 1235, 2000);
}

#[test]
fn empty_and_maximum_payloads_round_trip_and_a_larger_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    let big = vec![0xA5; MAX_PAYLOAD_BYTES];
    assert_eq!(journal.append(b"").unwrap(), 1);
    assert_eq!(journal.append(&big).unwrap(), 2);
    let too_big = vec![0; MAX_PAYLOAD_BYTES + 1];
    assert!(matches!(
        journal.append(&too_big),
        Err(JournalError::PayloadTooLarge { len, .. }) if len == MAX_PAYLOAD_BYTES + 1
    ));
    assert_eq!(journal.commit().unwrap(), 2, "the refusal changed nothing");
    drop(journal);

    let (journal, _) = Journal::open(dir.path()).unwrap();
    let mut lengths = Vec::new();
    journal
        .replay(0, |seq, payload| {
            lengths.push((seq, payload.len()));
            assert!(payload.iter().all(|&b| b == 0xA5));
        })
        .unwrap();
    assert_eq!(lengths, [(1, 0), (2, MAX_PAYLOAD_BYTES)]);
}
