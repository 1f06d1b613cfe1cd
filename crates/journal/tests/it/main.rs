//! Integration tests of the journal: one binary, one module per concern.

mod crash;
mod group;
mod recovery;
mod round_trip;
mod snapshots;

use std::fs;
use std::path::{Path, PathBuf};

use bourse_journal::Journal;

/// Bytes a record takes on disk besides its payload (len, seq, crc).
pub const FRAME_OVERHEAD: u64 = 16;
/// Bytes of a segment header.
pub const SEGMENT_HEADER: u64 = 24;

/// A deterministic payload for `seq`, of varying length (0..=200 bytes), so any record can
/// be checked without remembering what was written.
pub fn payload_for(seq: u64) -> Vec<u8> {
    let len = (seq.wrapping_mul(2_654_435_761) % 201) as usize;
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// Appends records `journal.last_seq() + 1 ..= up_to` with [`payload_for`], committing
/// every `batch`.
pub fn write_records(journal: &mut Journal, up_to: u64, batch: u64) {
    while journal.last_seq() < up_to {
        let seq = journal.last_seq() + 1;
        assert_eq!(journal.append(&payload_for(seq)).unwrap(), seq);
        if seq.is_multiple_of(batch) {
            journal.commit().unwrap();
        }
    }
    assert_eq!(journal.commit().unwrap(), up_to);
}

/// Every record after `after`, owned.
pub fn replay_all(journal: &Journal, after: u64) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let delivered = journal
        .replay(after, |seq, payload| out.push((seq, payload.to_vec())))
        .unwrap();
    assert_eq!(delivered, out.len() as u64);
    out
}

/// Asserts `records` are exactly `from..=to` with [`payload_for`] payloads.
pub fn assert_records(records: &[(u64, Vec<u8>)], from: u64, to: u64) {
    let expected: Vec<u64> = (from..=to).collect();
    let seqs: Vec<u64> = records.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, expected);
    for (seq, payload) in records {
        assert_eq!(payload, &payload_for(*seq), "payload of record {seq}");
    }
}

/// Segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    found.sort();
    found
}

/// Flips every bit of the byte at `offset` from the end of `path` (1 = last byte).
pub fn flip_byte_from_end(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    let at = bytes.len() - offset as usize;
    bytes[at] ^= 0xFF;
    fs::write(path, bytes).unwrap();
}

/// Flips every bit of the byte at `offset` from the start of `path`.
pub fn flip_byte_at(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0xFF;
    fs::write(path, bytes).unwrap();
}

/// Where record `seq` starts in a single-segment journal written with [`payload_for`].
pub fn record_offset(seq: u64) -> u64 {
    SEGMENT_HEADER
        + (1..seq)
            .map(|s| FRAME_OVERHEAD + payload_for(s).len() as u64)
            .sum::<u64>()
}
