//! Chunk storage: identities, compression and immutable pack files.
//!
//! * [`ChunkKey`] / [`ChunkId`]: a chunk is named by the keyed BLAKE3 hash of its plaintext. The
//!   key is created at `init` and kept in the repository config, so chunk ids reveal nothing
//!   about content to someone who only sees the pack files (no confirmation-of-file attacks).
//! * [`PackWriter`] / [`PackFile`]: the on-disk pack format (`docs/FORMAT.md`). A pack holds
//!   frames — a large blob alone, or several small ones together — each compressed with zstd or
//!   kept raw when zstd does not make it smaller. Compressing is the CPU-heavy part of a backup;
//!   each worker thread does it for the pack it holds. A pack is written once, as a stream,
//!   and never changes.
//! * [`backend`]: where a repository's objects live — the [`Backend`] trait, a local directory,
//!   memory, and the conformance suite every backend passes. Nothing outside a backend knows
//!   where or how an object is stored.
//! * [`crypto`]: the master key, the keys derived from it, and the sealed envelope of every
//!   encrypted byte string.
//! * [`faults`]: a plan of failures at every write point, and the backend decorator that
//!   carries it out (the catalog's decorator is `coldkeep_catalog::FaultyKv`).

pub mod backend;
mod blob;
pub mod crypto;
pub mod faults;
mod id;
mod pack;

pub use backend::{
    Access, Backend, ErrorKind, LocalBackend, MemoryBackend, ObjectInfo, ObjectKind, ObjectLock,
    ObjectName, ObjectReader, ObjectWriter,
};
pub use blob::{encode_frame, BlobKind, Compression};
pub use id::{random_bytes, ChunkId, ChunkKey, PackId, ParseIdError};
pub use pack::{
    BlobEntry, Frame, PackFile, PackWriter, SealedPack, GROUP_BLOB_MAX, GROUP_TARGET,
    MAX_FRAME_LEN, PACK_MAGIC, PACK_TRAILER_MAGIC, PACK_VERSION,
};

/// Errors from the chunk store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed an operation on an object (`object` is its path or key).
    #[error("cannot {op} {object}: {cause}")]
    Backend { op: &'static str, object: String, cause: std::io::Error },
    /// A read asked for bytes outside the object.
    #[error("{object} holds {object_len} bytes: {len} bytes at offset {offset} are outside it")]
    OutOfRange { object: String, offset: u64, len: u64, object_len: u64 },
    /// Bytes on disk do not match what the format or a checksum requires.
    #[error("corrupted pack {pack} at offset {offset}: {reason}")]
    Corrupted { pack: PackId, offset: u64, reason: String },
    /// A writer whose earlier write or fsync failed refuses further use: the data it holds
    /// cannot be trusted to be on disk.
    #[error("pack writer is poisoned by an earlier failure")]
    Poisoned,
}

impl StoreError {
    /// A failure of operation `op` on `object`; its kind is the kind of `cause`.
    pub fn backend(
        op: &'static str,
        object: impl std::fmt::Display,
        cause: std::io::Error,
    ) -> Self {
        Self::Backend { op, object: object.to_string(), cause }
    }

    /// What kind of failure this is: whether the object is missing, or trying again may help.
    /// Damaged content is [`ErrorKind::Permanent`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Backend { cause, .. } => ErrorKind::of(cause),
            Self::OutOfRange { .. } | Self::Corrupted { .. } | Self::Poisoned => {
                ErrorKind::Permanent
            }
        }
    }

    /// Whether the same call may succeed if tried again.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }
}
