//! [`Engine`]: the one entry point of the library.

use std::io::Write;
use std::path::Path;

use coldkeep_catalog::{SnapshotId, SnapshotRecord};
use serde::Serialize;

use crate::backup::{self, BackupOptions};
use crate::check::{self, CheckOptions, CheckReport};
use crate::error::{BackupError, CheckError, InitError, OpenError, ReadError, RestoreError};
use crate::read::{self, ListEntry};
use crate::repo::{InitOptions, Repository};
use crate::restore::{self, RestoreOptions, RestoreSummary};

/// Repository-wide figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepoStats {
    pub snapshots: u64,
    pub packs: u64,
    /// Bytes of all pack files.
    pub pack_bytes: u64,
    pub chunks: u64,
    /// Plaintext bytes of all stored chunks (after deduplication, before compression).
    pub unique_bytes: u64,
    /// Logical bytes of all snapshots added up (what restoring every snapshot would write).
    pub logical_bytes: u64,
}

/// A coldkeep repository, open for backup, restore and inspection.
///
/// One process opens a repository at a time (the catalog is locked while it is open); within the
/// process an `Engine` may be shared between threads.
#[derive(Debug)]
pub struct Engine {
    repo: Repository,
}

impl Engine {
    /// Creates a repository at `path` (absent or an empty directory).
    pub fn init(path: &Path, opts: &InitOptions) -> Result<Self, InitError> {
        Ok(Self { repo: Repository::init(path, opts)? })
    }

    /// Opens an existing repository. Unfinished packs left by an interrupted backup are removed.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Ok(Self { repo: Repository::open(path)? })
    }

    /// The repository directory.
    pub fn path(&self) -> &Path {
        &self.repo.root
    }

    /// Backs up `source` (a directory or a file) and commits a snapshot.
    pub fn backup(
        &self,
        source: &Path,
        opts: &BackupOptions,
    ) -> Result<SnapshotRecord, BackupError> {
        backup::run(&self.repo, source, opts)
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>, ReadError> {
        Ok(self.repo.catalog.snapshots()?)
    }

    /// One snapshot.
    pub fn snapshot(&self, id: SnapshotId) -> Result<SnapshotRecord, ReadError> {
        read::snapshot(&self.repo, id)
    }

    /// Every entry under `path` in a snapshot (`""` or `"/"` for all), parents first.
    pub fn list(&self, id: SnapshotId, path: &[u8]) -> Result<Vec<ListEntry>, ReadError> {
        read::list(&self.repo, &read::snapshot(&self.repo, id)?, path)
    }

    /// Writes the content of the file at `path` in a snapshot to `out`; returns its size.
    pub fn cat(&self, id: SnapshotId, path: &[u8], out: &mut dyn Write) -> Result<u64, ReadError> {
        read::cat(&self.repo, &read::snapshot(&self.repo, id)?, path, out)
    }

    /// Restores a snapshot, or the part of it at `path`, into `target` (absent or empty).
    pub fn restore(
        &self,
        id: SnapshotId,
        path: &[u8],
        target: &Path,
        opts: &RestoreOptions,
    ) -> Result<RestoreSummary, RestoreError> {
        restore::run(&self.repo, &read::snapshot(&self.repo, id)?, path, target, opts)
    }

    /// Checks the repository's structure and, with `read_data`, every stored byte.
    pub fn check(&self, opts: CheckOptions) -> Result<CheckReport, CheckError> {
        check::run(&self.repo, opts)
    }

    /// Repository-wide figures.
    pub fn stats(&self) -> Result<RepoStats, ReadError> {
        let mut stats = RepoStats::default();
        for snap in self.repo.catalog.snapshots()? {
            stats.snapshots += 1;
            stats.logical_bytes += snap.stats.bytes;
        }
        for (_, pack) in self.repo.catalog.packs()? {
            stats.packs += 1;
            stats.pack_bytes += pack.size;
        }
        for loc in self.repo.catalog.chunks() {
            stats.chunks += 1;
            stats.unique_bytes += u64::from(loc?.entry.len);
        }
        Ok(stats)
    }
}
