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
//! Everything a user needs is re-exported here: this crate is the API boundary. The crates
//! under it — the data path (`coldkeep-repo`), the control plane (`coldkeep-protect`) and
//! those below them — are implementation, and change whenever they need to.
//! See `docs/ARCHITECTURE.md` for how the pieces fit and which invariants hold them together.

mod engine;

// The public API.
pub use coldkeep_catalog::{
    BackupKind, CatalogError, KvError, KvStore, MemKv, SnapshotId, SnapshotRecord, SnapshotStats,
    Warning,
};
pub use coldkeep_chunker::{CdcParams, ChunkerConfig};
/// The data-protection vocabulary (the seed APIs' names): ids, times, policies, groups, runs.
pub use coldkeep_model as model;
pub use coldkeep_protect::groups::{GroupFilter, GroupInfo};
pub use coldkeep_protect::objects::{
    LogTimeRange, ObjectSnapshot, ObjectSnapshotFilter, PointInTimePlan, ProtectedObjectInfo,
    ProtectedObjectSearch, RestorePoint, RestorePoints,
};
pub use coldkeep_protect::policies::PolicyFilter;
pub use coldkeep_protect::recoveries::{
    PointInTimeRecovery, RecoveryError, RecoveryFilter, RecoveryRequest,
};
pub use coldkeep_protect::runs::RunFilter;
pub use coldkeep_protect::scheduler::TickReport;
pub use coldkeep_protect::{Clock, ManualClock, ProtectError, SystemClock};
pub use coldkeep_repo::archive::ArchiveError;
pub use coldkeep_repo::backup::{BackupOptions, IMAGE_CHUNK_SIZE};
pub use coldkeep_repo::check::{CheckOptions, CheckReport, Problem};
pub use coldkeep_repo::config::{CONFIG_MAGIC, REPO_VERSION};
pub use coldkeep_repo::control::{Control, Stop};
pub use coldkeep_repo::error::{
    BackupError, CheckError, DataError, Error, ErrorKind, HasErrorKind, InitError, IoError,
    OpenError, ReadError, RestoreError, Unreadable,
};
pub use coldkeep_repo::gc::{GcError, GcOptions, GcReport};
pub use coldkeep_repo::keys::{KdfParams, KeyError, KeyInfo, Secret, KEY_MAGIC, MIN_KEY_FILE_LEN};
pub use coldkeep_repo::progress::Progress;
pub use coldkeep_repo::read::{FileSlice, ListEntry, MAX_READ_LEN};
pub use coldkeep_repo::rebuild::RebuildReport;
pub use coldkeep_repo::remote::{CacheRefresh, Remote};
pub use coldkeep_repo::repo::CatalogBehind;
pub use coldkeep_repo::repo::{
    default_key_label, Decorator, Decorators, InitOptions, OpenMode, OpenOptions, Parts,
    DEFAULT_ZSTD_LEVEL, MIN_FREE_BYTES,
};
pub use coldkeep_repo::restore::{RestoreOptions, RestoreSummary, WORKERS_PER_CORE};
pub use coldkeep_repo::search::{FileSearch, FileSearchResult};
pub use coldkeep_repo::tree::{Meta, Node, NodeKind, Piece, Timestamp, Tree, Xattr};
pub use coldkeep_retention::Refusal;
/// Where a repository's objects live: the `Backend` trait, the local and in-memory backends,
/// and the conformance suite a new backend must pass.
pub use coldkeep_store::backend;
/// Failures injected at every write point (tests; see docs/RELIABILITY.md).
pub use coldkeep_store::faults;
pub use coldkeep_store::{ChunkId, PackId, StoreError};
pub use engine::{Engine, RepoStats};
