//! Recoveries: durable tasks that bring data back (the seed's `POST /data-protect/recoveries`
//! and `POST /data-protect/recoveries/download-files-folders`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ids::{ObjectId, RecoveryId, SnapshotId};
use crate::run::RunStatus;
use crate::time::Usecs;

/// The seed's recovery actions that coldkeep performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecoveryAction {
    /// Chosen files and folders of a snapshot, restored to a directory.
    RecoverFiles,
    /// Chosen files and folders of a snapshot, as one tar archive.
    DownloadFilesAndFolders,
    /// An object as it was at a point in time: its base snapshot and the logs to replay.
    PointInTime,
}

/// What a recovery does, with its parameters. Paths are raw bytes (they need not be UTF-8);
/// snapshot paths are relative to the snapshot root, `""` for all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoveryParams {
    RecoverFiles {
        snapshot: SnapshotId,
        paths: Vec<Vec<u8>>,
        /// Each chosen path is restored under this directory, by its last name.
        target: Vec<u8>,
        /// Replace what already exists at a destination; otherwise leave it and skip.
        overwrite_existing: bool,
    },
    DownloadFilesAndFolders {
        snapshot: SnapshotId,
        paths: Vec<Vec<u8>>,
        /// The tar archive is written here (it must not exist).
        output: Vec<u8>,
    },
    PointInTime {
        object: ObjectId,
        at: Usecs,
        target: Vec<u8>,
        logs_target: Vec<u8>,
    },
}

impl RecoveryParams {
    pub fn action(&self) -> RecoveryAction {
        match self {
            Self::RecoverFiles { .. } => RecoveryAction::RecoverFiles,
            Self::DownloadFilesAndFolders { .. } => RecoveryAction::DownloadFilesAndFolders,
            Self::PointInTime { .. } => RecoveryAction::PointInTime,
        }
    }
}

/// A path given as raw bytes, as a `Path`.
pub fn path_of(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// What a recovery has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecoveryStats {
    pub files: u64,
    pub bytes: u64,
    /// Destinations left alone because they existed (without `overwrite_existing`).
    pub skipped: u64,
}

/// A stored recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub id: RecoveryId,
    pub name: String,
    pub params: RecoveryParams,
    /// Accepted, Running, Canceling, then Succeeded, SucceededWithWarning, Failed or Canceled.
    pub status: RunStatus,
    pub start_time_usecs: Usecs,
    pub end_time_usecs: Option<Usecs>,
    pub stats: RecoveryStats,
    pub warnings: Vec<String>,
    /// Why it failed or was canceled.
    pub message: Option<String>,
}
