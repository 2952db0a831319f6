//! Typed errors, one enum per operation, each with the context (path, id) a user needs, and
//! each with a `kind()`: the umbrella [`Error`] that all of them convert into, and
//! [`ErrorKind`], are in `kind`.
//!
//! [`DataError`] is the shared "reading the repository's content failed" case: every operation
//! that reads snapshots can meet it, and wraps it rather than flattening it to text. Its kind
//! tells damage ([`ErrorKind::Corrupt`]) from a store or catalog that could not be read.
//!
//! Each error's message is whole on its own (a run's failure message is one `to_string`), so
//! an error whose message already includes its cause does not also return it as `source()`:
//! printing the chain (`{:#}` in the CLI) would repeat it. Wrappers that add nothing are
//! `transparent`.

mod kind;

use std::path::PathBuf;

pub use kind::{Error, ErrorKind, HasErrorKind};

use coldkeep_catalog::{CatalogError, KvError, RecordError, SnapshotId};
use coldkeep_store::{ChunkId, StoreError};

/// An I/O failure with the operation and path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}: {cause}", path.display())]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    pub cause: std::io::Error,
}

impl IoError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self { op, path: path.into(), cause }
    }
}

/// Reading the repository's content failed: it is damaged or incomplete, or the store or the
/// catalog holding it could not be read ([`DataError::kind`] says which).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A chunk that a snapshot references is not in the chunk index.
    #[error("chunk {0} is referenced but not in the repository")]
    MissingChunk(ChunkId),
    /// A tree blob does not decode.
    #[error("tree {id} is corrupted: {reason}")]
    Tree { id: ChunkId, reason: RecordError },
    /// A tree is structurally invalid (unsorted or duplicate names).
    #[error("tree {id} is invalid: {reason}")]
    InvalidTree { id: ChunkId, reason: String },
    /// A chunk's plaintext is not as long as the file that references it says.
    #[error("chunk {id} holds {actual} bytes where its file says {expected}")]
    ChunkLength { id: ChunkId, expected: u64, actual: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A walk of the snapshots' trees (check, gc) met a tree it could not read for a reason other
/// than damage: it stops, since what it would report or delete depends on that tree.
#[derive(Debug, thiserror::Error)]
#[error("cannot read tree {tree}: {detail}")]
pub struct Unreadable {
    pub tree: ChunkId,
    pub kind: ErrorKind,
    pub detail: String,
}

impl Unreadable {
    pub(crate) fn new(tree: ChunkId, e: &DataError) -> Self {
        Self { tree, kind: e.kind(), detail: e.to_string() }
    }
}

/// Errors creating a repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    #[error("{} already exists and is not an empty directory", .0.display())]
    AlreadyExists(PathBuf),
    #[error("invalid chunker configuration: {0}")]
    Chunker(coldkeep_chunker::ConfigError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// An encrypted repository (the default) needs a passphrase or a key file.
    #[error(
        "a new repository is encrypted: give a passphrase or a key file (or ask for no encryption)"
    )]
    SecretRequired,
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// The directory's filesystem has too little room to create a repository on.
    #[error(
        "{} is on a full disk: {} KiB free, {} MiB needed",
        path.display(), free / 1024, needed >> 20
    )]
    DiskFull { path: PathBuf, free: u64, needed: u64 },
}

/// Errors opening a repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("{} is not a coldkeep repository (no config file)", .0.display())]
    NotARepository(PathBuf),
    #[error("repository config {}: {reason}", path.display())]
    CorruptConfig { path: PathBuf, reason: String },
    #[error("repository format version {0} is not supported by this build")]
    UnsupportedVersion(u32),
    /// The repository is encrypted and no passphrase or key file was given.
    #[error("the repository is encrypted: give its passphrase or key file")]
    SecretRequired,
    /// A wrong passphrase or key file, or a damaged key slot.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// The catalog's journal in the store could not be read (see `Engine::rebuild_catalog`).
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// Another process has the repository open: a writer, or readers when this open writes.
    #[error("repository {} is in use by another process", .0.display())]
    Busy(PathBuf),
    /// The repository's filesystem has too little room for a read-write open (see
    /// `repo::MIN_FREE_BYTES`). A read-only open still works.
    #[error(
        "repository {} is on a full disk: {} KiB free, {} MiB needed to write to it \
         (it can still be opened read-only: list, read, restore, check)",
        path.display(), free / 1024, needed >> 20
    )]
    DiskFull { path: PathBuf, free: u64, needed: u64 },
    /// The catalog holds fewer commits than the repository recorded (`<repo>/commits`): its
    /// write-ahead log or MANIFEST was damaged and RocksDB opened an older state. Writing to it
    /// would reuse snapshot ids and let garbage collection delete the lost snapshots' packs, so
    /// it is refused; a read-only open still lists and restores what the catalog has.
    #[error(
        "the catalog of repository {} lost commits: its {table} table holds commit {catalog}, \
         but commit {recorded} was made durable (damaged catalog/*.log or MANIFEST). Nothing \
         was changed; the repository can still be opened read-only. Do not write to it: run \
         `coldkeep rebuild-catalog` to recreate the catalog from the repository's own objects",
        path.display()
    )]
    CatalogBehind { path: PathBuf, table: &'static str, catalog: u64, recorded: u64 },
    /// The catalog does not open: it is missing or damaged. The repository's own objects hold
    /// everything it indexed.
    #[error(
        "the catalog of repository {} does not open ({reason}): run `coldkeep rebuild-catalog` \
         to recreate it from the repository's own objects",
        path.display()
    )]
    CatalogUnreadable { path: PathBuf, reason: String },
    /// A catalog to rebuild into that already holds records.
    #[error("the catalog given for repository {} is not empty: rebuild into an empty one", .0.display())]
    CatalogNotEmpty(PathBuf),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors running a backup. Files that cannot be read are warnings on the snapshot, not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("backup source {}: {cause}", path.display())]
    Source { path: PathBuf, cause: std::io::Error },
    #[error("parent snapshot {0} does not exist")]
    ParentNotFound(SnapshotId),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Canceled, or past its time limit, through its [`Control`](crate::control::Control).
    #[error("backup stopped: {0:?}")]
    Stopped(crate::control::Stop),
}

/// Errors reading snapshots (list, ls, cat, stats).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("snapshot {0} does not exist")]
    SnapshotNotFound(SnapshotId),
    #[error("no such path in the snapshot: {0}")]
    PathNotFound(String),
    #[error("not a regular file: {0}")]
    NotAFile(String),
    /// A search cookie that this repository did not hand out.
    #[error("not a search cookie: {0:?}")]
    BadCookie(String),
    /// A ranged read asked for more than the download bound.
    #[error("cannot read {requested} bytes at once: at most {max}")]
    ReadTooLarge { requested: u64, max: u64 },
    #[error(transparent)]
    Data(#[from] DataError),
    /// The catalog could not be read (or holds a damaged record).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Errors restoring a snapshot. Nothing is ever written outside the target directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("restore target {} exists and is not an empty directory", .0.display())]
    TargetNotEmpty(PathBuf),
    /// An earlier restore into the target was interrupted: what it wrote is in this staging
    /// directory, never at the final names. Remove it (or restore elsewhere).
    #[error(
        "an earlier restore into this target was interrupted: its partial result is in {}; \
         remove it to restore here again",
        .0.display()
    )]
    Interrupted(PathBuf),
    /// A name in the snapshot is not a single plain path component (`..`, `/`, empty, NUL…).
    #[error("refusing hostile name {name:?} in directory {dir:?}")]
    HostilePath { dir: String, name: String },
    /// A path on the way to a write is a symlink: following it could leave the target.
    #[error("refusing to write through symlink {}", .0.display())]
    SymlinkEscape(PathBuf),
    /// Canceled (or out of time) through its control; what was written stays.
    #[error("restore stopped: {0:?}")]
    Stopped(crate::control::Stop),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl From<DataError> for RestoreError {
    fn from(e: DataError) -> Self {
        Self::Read(ReadError::Data(e))
    }
}

/// Errors that stop `check` itself (damage it finds is reported, not returned as an error): a
/// catalog or store that cannot be read is not evidence of damage, so it is not reported as
/// such.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    #[error(transparent)]
    Catalog(#[from] KvError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<coldkeep_chunker::ConfigError> for InitError {
    fn from(e: coldkeep_chunker::ConfigError) -> Self {
        Self::Chunker(e)
    }
}

// The catalog backend's own failures reach `init` and `open` before any record is read.
impl From<KvError> for InitError {
    fn from(e: KvError) -> Self {
        Self::Catalog(e.into())
    }
}

impl From<KvError> for OpenError {
    fn from(e: KvError) -> Self {
        Self::Catalog(e.into())
    }
}
