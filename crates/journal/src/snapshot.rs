//! Snapshot files: `snapshot-<seq>.bin`, written atomically, checked on read.
//!
//! ```text
//! magic "BRSSNAP\0" (8) | version u32 LE (4) | reserved u32 (4) | seq u64 LE (8)
//! | len u64 LE (8) | bytes (len) | crc32 u32 LE (4) over everything before it
//! ```

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::format::{read_u32, read_u64};
use crate::journal::sync_dir;

const MAGIC: [u8; 8] = *b"BRSSNAP\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 32;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".bin";
const TEMP_SUFFIX: &str = ".bin.tmp";

/// An intact snapshot returned by [`crate::Journal::latest_snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last record the snapshot's state includes: replay from `seq + 1`.
    pub seq: u64,
    /// The caller's serialised state, exactly as written.
    pub bytes: Vec<u8>,
    /// Newer snapshot files that were passed over because they were damaged or could no
    /// longer be replayed from; worth a log line.
    pub skipped: Vec<PathBuf>,
}

fn name(seq: u64) -> String {
    format!("{PREFIX}{seq:020}{SUFFIX}")
}

pub(crate) fn write(dir: &Path, seq: u64, bytes: &[u8]) -> Result<(), JournalError> {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&seq.to_le_bytes());
    header[24..32].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.update(bytes);

    let final_path = dir.join(name(seq));
    let temp_path = dir.join(format!("{PREFIX}{seq:020}{TEMP_SUFFIX}"));
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&temp_path)?);
    out.write_all(&header)?;
    out.write_all(bytes)?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp_path, &final_path)?;
    sync_dir(dir)?;
    Ok(())
}

/// Reads and checks one snapshot; `Ok(None)` when it is damaged.
pub(crate) fn read(path: &Path, seq: u64) -> io::Result<Option<Vec<u8>>> {
    let mut data = fs::read(path)?;
    if data.len() < HEADER_LEN + 4 {
        return Ok(None);
    }
    let body_end = data.len() - 4;
    let header_ok = data[..8] == MAGIC
        && read_u32(&data[8..12]) == VERSION
        && read_u64(&data[16..24]) == seq
        && read_u64(&data[24..32]) == (body_end - HEADER_LEN) as u64;
    if !header_ok || crc32fast::hash(&data[..body_end]) != read_u32(&data[body_end..]) {
        return Ok(None);
    }
    data.truncate(body_end);
    data.drain(..HEADER_LEN);
    Ok(Some(data))
}

/// Snapshot files in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((seq, entry.path()));
    }
    found.sort_by_key(|(seq, _)| *seq);
    Ok(found)
}

/// Deletes temporary files left by a snapshot write that a crash interrupted.
pub(crate) fn remove_temporaries(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(TEMP_SUFFIX))
        {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
