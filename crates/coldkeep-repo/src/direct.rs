//! Restore writes that bypass the page cache.
//!
//! A restore writes every byte once and reads none of them back, yet a buffered write puts
//! each of them in a new page-cache page: the kernel allocates, zeroes and copies into
//! 1.3 GB of pages for a kernel source tree, which is most of a restore's cost (and, on a
//! server, evicts the working set the machine was caching). So the aligned body of a large
//! write goes with `O_DIRECT` from a reused aligned buffer straight to the device; the partial
//! blocks at its ends, and small writes, stay buffered (a direct write must cover whole blocks,
//! and a block shared by two pieces of a file is written by both).
//!
//! A filesystem that refuses direct I/O (`EINVAL`: tmpfs before 6.6, some FUSE filesystems)
//! turns it off for the rest of the restore; the bytes are then written buffered, as before.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::OFlags;

/// Direct writes start and end on this boundary in the file and in memory: a multiple of every
/// logical block size in use (512 and 4096 bytes).
const ALIGN: u64 = 4096;

/// Writes whose aligned body is smaller than this stay buffered: for them the cost of a
/// synchronous device write outweighs the page-cache copy it saves.
const MIN_DIRECT_BODY: u64 = 64 * 1024;

/// How a restore writes file content.
#[derive(Debug)]
pub(crate) struct Writer {
    /// Cleared for good the first time the target filesystem refuses a direct write.
    direct: AtomicBool,
}

thread_local! {
    /// Each worker's staging buffer for direct writes, grown to the largest body it wrote.
    static STAGING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Writer {
    pub(crate) fn new(direct: bool) -> Self {
        Self { direct: AtomicBool::new(direct) }
    }

    /// Writes all of `data` at `offset` of `file`, which must have been opened for writing
    /// without `O_DIRECT` (and is left so).
    pub(crate) fn write_all_at(&self, file: &File, data: &[u8], offset: u64) -> io::Result<()> {
        let end = offset + data.len() as u64;
        let body_start = offset.next_multiple_of(ALIGN);
        let body_end = end - end % ALIGN;
        if !self.direct.load(Ordering::Relaxed)
            || body_end <= body_start
            || body_end - body_start < MIN_DIRECT_BODY
        {
            return file.write_all_at(data, offset);
        }
        let slice = |from: u64, to: u64| &data[(from - offset) as usize..(to - offset) as usize];
        file.write_all_at(slice(offset, body_start), offset)?;
        file.write_all_at(slice(body_end, end), body_end)?;
        let body = slice(body_start, body_end);
        match write_direct(file, body, body_start) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                tracing::debug!(
                    "direct writes refused by the target filesystem; buffered from now"
                );
                self.direct.store(false, Ordering::Relaxed);
                file.write_all_at(body, body_start)
            }
            other => other,
        }
    }
}

/// Writes `body` (a whole number of aligned blocks) at the aligned `offset` with `O_DIRECT`,
/// through the worker's staging buffer; the descriptor's flags are restored after.
fn write_direct(file: &File, body: &[u8], offset: u64) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(file)?;
    rustix::fs::fcntl_setfl(file, flags | OFlags::DIRECT)?;
    let written = STAGING.with_borrow_mut(|staging| {
        let needed = body.len() + ALIGN as usize;
        if staging.len() < needed {
            staging.resize(needed, 0);
        }
        let pad = staging.as_ptr().align_offset(ALIGN as usize);
        let aligned = &mut staging[pad..pad + body.len()];
        aligned.copy_from_slice(body);
        file.write_all_at(aligned, offset)
    });
    rustix::fs::fcntl_setfl(file, flags)?;
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Writes `pieces` (offset, length) of one pattern into a file of `size` and reads it back.
    fn round_trip(writer: &Writer, size: usize, pieces: &[(usize, usize)]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data = pattern(size);
        // One descriptor for every piece: a direct write must leave it fit for the next,
        // unaligned, buffered one.
        let file = File::create(&path).expect("create");
        file.set_len(size as u64).expect("size");
        for &(at, len) in pieces {
            writer.write_all_at(&file, &data[at..at + len], at as u64).expect("write");
        }
        drop(file);
        assert_eq!(std::fs::read(&path).expect("read back"), data, "pieces {pieces:?}");
    }

    #[test]
    fn unaligned_pieces_sharing_blocks_come_back_exact() {
        let size = 1_000_003;
        // Boundaries in the middle of blocks, a piece smaller than the threshold, one that
        // ends the file on a partial block.
        let cuts = [0, 4095, 200_001, 200_050, 731_137, size];
        let pieces: Vec<_> = cuts.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
        round_trip(&Writer::new(true), size, &pieces);
        let mut reversed = pieces.clone();
        reversed.reverse();
        round_trip(&Writer::new(true), size, &reversed);
    }

    #[test]
    fn aligned_whole_file_and_buffered_mode_come_back_exact() {
        round_trip(&Writer::new(true), 1 << 20, &[(0, 1 << 20)]);
        round_trip(&Writer::new(false), 300_000, &[(0, 300_000)]);
    }
}
