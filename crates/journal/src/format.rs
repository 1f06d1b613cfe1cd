//! The on-disk format of segment files and a buffered frame reader shared by recovery
//! and replay.
//!
//! A segment file is a 24-byte header followed by records:
//!
//! ```text
//! header: magic "BRSJRNL\0" (8) | version u32 LE (4) | reserved u32 (4) | base_seq u64 LE (8)
//! record: len u32 LE (4) | seq u64 LE (8) | payload (len) | crc32 u32 LE (4)
//! ```
//!
//! The CRC-32 (IEEE, `crc32fast`) covers `len`, `seq` and the payload, so a flipped bit in
//! the length is caught like any other.

use std::fs::File;
use std::io::{self, Read};

/// First bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"BRSJRNL\0";
/// Format version written in every segment header.
pub(crate) const SEGMENT_VERSION: u32 = 1;
/// Size of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 24;
/// `len` + `seq` before the payload.
pub(crate) const FRAME_HEAD_LEN: usize = 12;
/// The CRC after the payload.
pub(crate) const FRAME_TAIL_LEN: usize = 4;
/// Bytes a record takes on disk besides its payload.
pub(crate) const FRAME_OVERHEAD: usize = FRAME_HEAD_LEN + FRAME_TAIL_LEN;

/// The largest payload a record may carry. Part of the format: a length field above it is
/// corruption, which keeps a damaged length from making recovery read a whole file as one
/// record.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Encodes a segment header for a segment whose first record will be `base_seq`.
pub(crate) fn segment_header(base_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&base_seq.to_le_bytes());
    header
}

/// Why a segment header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Not a journal segment.
    Magic,
    /// A version this build does not read.
    Version(u32),
}

/// Parses a segment header, returning its base sequence number.
pub(crate) fn parse_segment_header(
    header: &[u8; SEGMENT_HEADER_LEN],
) -> Result<u64, HeaderProblem> {
    if header[..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::Magic);
    }
    let version = read_u32(&header[8..12]);
    if version != SEGMENT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    Ok(read_u64(&header[16..24]))
}

/// Appends one encoded record to `out`. The caller has checked the payload length.
pub(crate) fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_BYTES);
    let start = out.len();
    // The caller checked `payload.len() <= MAX_PAYLOAD_BYTES`, which fits in a u32.
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks one complete frame at the start of `bytes` (which may hold more after it).
/// Returns `(seq, payload range, frame length)` when the length is sane, the frame fits
/// and its CRC matches.
pub(crate) fn check_frame(bytes: &[u8]) -> Option<(u64, std::ops::Range<usize>, usize)> {
    if bytes.len() < FRAME_OVERHEAD {
        return None;
    }
    let len = read_u32(&bytes[..4]) as usize;
    if len > MAX_PAYLOAD_BYTES || bytes.len() < FRAME_OVERHEAD + len {
        return None;
    }
    let body_end = FRAME_HEAD_LEN + len;
    let stored = read_u32(&bytes[body_end..body_end + FRAME_TAIL_LEN]);
    if crc32fast::hash(&bytes[..body_end]) != stored {
        return None;
    }
    Some((
        read_u64(&bytes[4..12]),
        FRAME_HEAD_LEN..body_end,
        body_end + FRAME_TAIL_LEN,
    ))
}

pub(crate) fn read_u32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(b)
}

pub(crate) fn read_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

/// What the next bytes of a segment hold.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A whole record whose CRC matched.
    Record {
        /// Its sequence number (not yet checked against the expected one).
        seq: u64,
        /// Its payload, borrowed from the reader's buffer.
        payload: &'a [u8],
    },
    /// The file ends exactly at a record boundary.
    End,
    /// The file ends inside a record (a torn write, or a damaged length field).
    Partial,
    /// A complete frame that is not a valid record.
    Bad(&'static str),
}

/// Reads frames from a file through one large buffer that is reused for every record, so
/// a replay allocates nothing per record.
pub(crate) struct FrameReader {
    file: File,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// File offset of `buf[start]`.
    offset: u64,
}

/// Read size: large enough that syscalls do not dominate small records.
const READ_CHUNK: usize = 1 << 20;

impl FrameReader {
    /// Wraps `file`, whose read position is at file offset `offset`.
    pub(crate) fn new(file: File, offset: u64) -> Self {
        Self {
            file,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            eof: false,
            offset,
        }
    }

    /// File offset of the next unread frame.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes at least `need` unread bytes available unless the file ends first.
    fn fill(&mut self, need: usize) -> io::Result<()> {
        if self.end - self.start >= need || self.eof {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need.max(READ_CHUNK), 0);
        }
        while self.end < need {
            let n = match self.file.read(&mut self.buf[self.end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                break;
            }
            self.end += n;
        }
        Ok(())
    }

    /// Reads the next frame. After `Partial` or `Bad` the reader stays where it was.
    pub(crate) fn next_frame(&mut self) -> io::Result<Frame<'_>> {
        self.fill(FRAME_HEAD_LEN)?;
        let available = self.end - self.start;
        if available == 0 {
            return Ok(Frame::End);
        }
        if available < FRAME_HEAD_LEN {
            return Ok(Frame::Partial);
        }
        let len = read_u32(&self.buf[self.start..]) as usize;
        if len > MAX_PAYLOAD_BYTES {
            return Ok(Frame::Bad("length field above the maximum payload size"));
        }
        let total = FRAME_OVERHEAD + len;
        self.fill(total)?;
        if self.end - self.start < total {
            return Ok(Frame::Partial);
        }
        let frame = &self.buf[self.start..self.start + total];
        match check_frame(frame) {
            Some((seq, range, _)) => {
                self.start += total;
                self.offset += total as u64;
                Ok(Frame::Record {
                    seq,
                    payload: &frame[range],
                })
            }
            None => Ok(Frame::Bad("checksum mismatch")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_any_flipped_bit_is_caught() {
        let mut out = Vec::new();
        encode_record(&mut out, 42, b"hello journal");
        let (seq, range, len) = check_frame(&out).expect("valid frame");
        assert_eq!(
            (seq, &out[range], len),
            (42, &b"hello journal"[..], out.len())
        );
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut damaged = out.clone();
                damaged[byte] ^= 1 << bit;
                assert!(check_frame(&damaged).is_none(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn header_round_trips_and_refuses_foreign_files() {
        let header = segment_header(7);
        assert_eq!(parse_segment_header(&header), Ok(7));
        let mut foreign = header;
        foreign[0] = b'X';
        assert_eq!(parse_segment_header(&foreign), Err(HeaderProblem::Magic));
        let mut future = header;
        future[8] = 2;
        assert_eq!(
            parse_segment_header(&future),
            Err(HeaderProblem::Version(2))
        );
    }
}
