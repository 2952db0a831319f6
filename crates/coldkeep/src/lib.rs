//! # coldkeep
//!
//! An embedded backup engine: back up directory trees into a deduplicated, compressed,
//! crash-safe snapshot repository, and get them back — whole, in part, or file by file.
//!
//! ```no_run
//! use coldkeep::{BackupOptions, Engine, InitOptions, OpenOptions, RestoreOptions, Secret};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::passphrase("correct horse battery staple");
//! let engine = Engine::init("/backups/repo".as_ref(), &InitOptions::with_secret(secret.clone()))?;
//! let snap = engine.backup("/home/me/projects".as_ref(), &BackupOptions::default())?;
//! println!("snapshot {}: {} new bytes", snap.id, snap.stats.new_bytes);
//! drop(engine);
//! let engine = Engine::open_with("/backups/repo".as_ref(), &OpenOptions::with_secret(secret))?;
//! engine.restore(snap.id, b"", "/tmp/restored".as_ref(), &RestoreOptions::default())?;
//! # Ok(()) }
//! ```
//!
//! Everything a user needs is re-exported here; the workspace's other crates are implementation.
//! See `docs/ARCHITECTURE.md` for how the pieces fit and which invariants hold them together.

mod archive;
mod backup;
mod beneath;
mod check;
mod commit_log;
mod config;
mod control;
mod direct;
mod engine;
mod error;
mod fsmeta;
mod gc;
mod journal;
mod keys;
mod progress;
mod protect;
mod read;
mod rebuild;
mod repo;
mod restore;
mod search;
mod tickets;
mod tree;

// The public API.
pub use archive::ArchiveError;
pub use backup::{BackupOptions, IMAGE_CHUNK_SIZE};
pub use check::{CheckOptions, CheckReport, Problem};
pub use coldkeep_catalog::{
    BackupKind, CatalogError, KvError, KvStore, SnapshotId, SnapshotRecord, SnapshotStats, Warning,
};
pub use coldkeep_chunker::{CdcParams, ChunkerConfig};
/// The data-protection vocabulary (the seed APIs' names): ids, times, policies, groups, runs.
pub use coldkeep_model as model;
pub use coldkeep_retention::Refusal;
/// Where a repository's objects live: the `Backend` trait, the local and in-memory backends,
/// and the conformance suite a new backend must pass.
pub use coldkeep_store::backend;
/// Failures injected at every write point (tests; see docs/RELIABILITY.md).
pub use coldkeep_store::faults;
pub use coldkeep_store::{ChunkId, PackId, StoreError};
pub use commit_log::CatalogBehind;
pub use config::{CONFIG_MAGIC, REPO_VERSION};
pub use control::{Control, Stop};
pub use engine::{Engine, RepoStats};
pub use error::{
    BackupError, CheckError, DataError, Error, ErrorKind, InitError, IoError, OpenError, ReadError,
    RecoveryError, RestoreError, Unreadable,
};
pub use gc::{GcError, GcOptions, GcReport};
pub use keys::{KdfParams, KeyError, KeyInfo, Secret, KEY_MAGIC, MIN_KEY_FILE_LEN};
pub use progress::Progress;
pub use protect::groups::{GroupFilter, GroupInfo};
pub use protect::objects::{
    LogTimeRange, ObjectSnapshot, ObjectSnapshotFilter, PointInTimePlan, ProtectedObjectInfo,
    ProtectedObjectSearch, RestorePoint, RestorePoints,
};
pub use protect::policies::PolicyFilter;
pub use protect::recoveries::{PointInTimeRecovery, RecoveryFilter, RecoveryRequest};
pub use protect::runs::RunFilter;
pub use protect::scheduler::TickReport;
pub use protect::{Clock, ManualClock, ProtectError, SystemClock};
pub use read::{FileSlice, ListEntry, MAX_READ_LEN};
pub use rebuild::RebuildReport;
pub use repo::{
    default_key_label, Decorator, Decorators, InitOptions, OpenMode, OpenOptions,
    DEFAULT_ZSTD_LEVEL, MIN_FREE_BYTES,
};
pub use restore::{RestoreOptions, RestoreSummary, WORKERS_PER_CORE};
pub use search::{FileSearch, FileSearchResult};
pub use tree::{Meta, Node, NodeKind, Piece, Timestamp, Tree, Xattr};
