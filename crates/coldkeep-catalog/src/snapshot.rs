//! Snapshot records: one per committed backup.

use coldkeep_store::ChunkId;
use serde::{Deserialize, Serialize};

pub use coldkeep_model::SnapshotId;

/// Whether a backup read every file or reused unchanged files from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupKind {
    /// Every file was read (still deduplicated against the repository).
    Full,
    /// Files whose size, mtime, ctime and inode match the parent reused its chunk lists.
    Incremental,
}

/// Something a backup could not capture exactly; the snapshot is still valid for the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Path relative to the snapshot root, as raw bytes (names need not be UTF-8).
    pub path: Vec<u8>,
    pub message: String,
}

impl Warning {
    /// The message of a device, fifo or socket left out: such entries hold no data to back up.
    pub const SPECIAL_FILE: &'static str = "skipped: special file (device, fifo or socket)";

    /// Whether the snapshot lacks data the source had there (an entry not read, not listed,
    /// or read while it changed), as opposed to a special file, which has none.
    pub fn is_loss(&self) -> bool {
        self.message != Self::SPECIAL_FILE
    }
}

/// Counters of one backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Logical size of all files.
    pub bytes: u64,
    /// Files whose content was read.
    pub files_read: u64,
    /// Files whose chunk list was reused from the parent without reading.
    pub files_reused: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Chunks (and tree blobs) this backup added to the repository.
    pub new_chunks: u64,
    /// Plaintext bytes of those new chunks.
    pub new_bytes: u64,
    /// Bytes this backup added to packs: the new chunks after compression, and pack headers and
    /// indexes.
    pub stored_bytes: u64,
}

/// The backed-up directory's own metadata, applied to a restore target that the restore
/// creates (its entries' metadata is in the trees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
}

/// A snapshot before the catalog gives it an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDraft {
    /// Start time, µs since the Unix epoch.
    pub start_time_us: i64,
    pub end_time_us: i64,
    pub hostname: String,
    /// The absolute source path that was backed up, as raw bytes.
    pub source: Vec<u8>,
    /// The tree blob of the source directory.
    pub root: ChunkId,
    /// The source directory's own metadata; `None` when the source is a single file.
    pub root_meta: Option<RootMeta>,
    pub parent: Option<SnapshotId>,
    pub kind: BackupKind,
    pub stats: SnapshotStats,
    pub warnings: Vec<Warning>,
    pub tags: Vec<String>,
}

impl SnapshotDraft {
    #[cfg(test)]
    pub(crate) fn example() -> Self {
        Self {
            start_time_us: 1,
            end_time_us: 2,
            hostname: "h".into(),
            source: b"/src".to_vec(),
            root: ChunkId::from_bytes([1; 32]),
            root_meta: Some(RootMeta {
                mode: 0o750,
                uid: 1,
                gid: 2,
                mtime_secs: 3,
                mtime_nanos: 4,
            }),
            parent: None,
            kind: BackupKind::Full,
            stats: SnapshotStats::default(),
            warnings: vec![],
            tags: vec![],
        }
    }
}

/// A committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub id: SnapshotId,
    pub start_time_us: i64,
    pub end_time_us: i64,
    pub hostname: String,
    pub source: Vec<u8>,
    pub root: ChunkId,
    pub root_meta: Option<RootMeta>,
    pub parent: Option<SnapshotId>,
    pub kind: BackupKind,
    pub stats: SnapshotStats,
    pub warnings: Vec<Warning>,
    pub tags: Vec<String>,
}

impl SnapshotRecord {
    /// Whether the backup captured everything its source held (no [`Warning::is_loss`]).
    pub fn is_complete(&self) -> bool {
        !self.warnings.iter().any(Warning::is_loss)
    }

    pub(crate) fn from_draft(id: SnapshotId, d: SnapshotDraft) -> Self {
        Self {
            id,
            start_time_us: d.start_time_us,
            end_time_us: d.end_time_us,
            hostname: d.hostname,
            source: d.source,
            root: d.root,
            root_meta: d.root_meta,
            parent: d.parent,
            kind: d.kind,
            stats: d.stats,
            warnings: d.warnings,
            tags: d.tags,
        }
    }
}
