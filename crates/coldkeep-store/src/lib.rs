//! Chunk storage: identities, compression and immutable pack files.
//!
//! * [`ChunkKey`] / [`ChunkId`]: a chunk is named by the keyed BLAKE3 hash of its plaintext. The
//!   key is created at `init` and kept in the repository config, so chunk ids reveal nothing
//!   about content to someone who only sees the pack files (no confirmation-of-file attacks).
//! * [`PackWriter`] / [`PackFile`]: the on-disk pack format (`docs/FORMAT.md`). A pack holds
//!   frames — a large blob alone, or several small ones together — each compressed with zstd or
//!   kept raw when zstd does not make it smaller. Compressing is the CPU-heavy part of a backup;
//!   each worker thread does it for the pack it holds. Packs are written to a temporary name,
//!   fsynced, renamed and their directory fsynced; once visible they never change.
//! * [`PackDir`]: where packs live inside a repository.

mod blob;
mod id;
mod pack;
mod pack_dir;

pub use blob::{encode_frame, BlobKind, Compression};
pub use id::{ChunkId, ChunkKey, PackId, ParseIdError};
pub use pack::{
    Access, BlobEntry, Frame, PackFile, PackWriter, SealedPack, GROUP_BLOB_MAX, GROUP_TARGET,
    MAX_FRAME_LEN, PACK_MAGIC, PACK_TRAILER_MAGIC, PACK_VERSION,
};
pub use pack_dir::PackDir;

use std::path::PathBuf;

/// Errors from the chunk store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation on a pack file failed.
    #[error("{op} {}: {cause}", path.display())]
    Io { op: &'static str, path: PathBuf, cause: std::io::Error },
    /// Bytes on disk do not match what the format or a checksum requires.
    #[error("corrupted pack {pack} at offset {offset}: {reason}")]
    Corrupted { pack: PackId, offset: u64, reason: String },
    /// A writer whose earlier write or fsync failed refuses further use: the data it holds
    /// cannot be trusted to be on disk.
    #[error("pack writer is poisoned by an earlier failure")]
    Poisoned,
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self::Io { op, path: path.into(), cause }
    }
}
