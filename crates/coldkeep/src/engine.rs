//! [`Engine`]: the one entry point of the library.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use coldkeep_catalog::{CatalogError, SnapshotId, SnapshotRecord, SnapshotStats};
use serde::Serialize;

use coldkeep_model::{
    AuditEntry, GroupId, GroupSpec, ObjectId, Policy, PolicyId, PolicySpec, Principal,
    ProtectionGroup, Recovery, RecoveryId, Run, RunId, RunRequest, RunStatus, RunUpdate, SourceId,
    SourceRegistration, SourceSpec, Usecs,
};
use coldkeep_protect::groups::{GroupFilter, GroupInfo};
use coldkeep_protect::objects::{
    ObjectSnapshot, ObjectSnapshotFilter, ProtectedObjectInfo, ProtectedObjectSearch, RestorePoints,
};
use coldkeep_protect::policies::PolicyFilter;
use coldkeep_protect::recoveries::{
    self, PointInTimeRecovery, RecoveryError, RecoveryFilter, RecoveryRequest,
};
use coldkeep_protect::runs::{self, RunFilter};
use coldkeep_protect::scheduler::{self, TickReport};
use coldkeep_protect::{expiry, Clock, ProtectError, ProtectedRepo, Protection, SystemClock};
use coldkeep_repo::archive::{self, ArchiveError};
use coldkeep_repo::backup::{self, BackupOptions};
use coldkeep_repo::check::{self, CheckOptions, CheckReport};
use coldkeep_repo::control::Control;
use coldkeep_repo::error::{
    BackupError, CheckError, InitError, OpenError, ReadError, RestoreError,
};
use coldkeep_repo::gc::{GcError, GcOptions, GcReport};
use coldkeep_repo::keys::{KdfParams, KeyError, KeyInfo, Secret};
use coldkeep_repo::progress::Progress;
use coldkeep_repo::read::{self, FileSlice, ListEntry};
use coldkeep_repo::rebuild::{self, RebuildReport};
use coldkeep_repo::remote::{CacheRefresh, Refill, Remote};
use coldkeep_repo::repo::CatalogBehind;
use coldkeep_repo::repo::{
    self as repository, InitOptions, OpenMode, OpenOptions, Parts, Repository,
};
use coldkeep_repo::restore::{self, RestoreOptions, RestoreSummary};
use coldkeep_repo::search::{self, FileSearch, FileSearchResult};

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
    shared: Arc<ProtectedRepo>,
}

impl Drop for Engine {
    /// Runs and recoveries still executing are canceled (they end `Canceled`), and their threads
    /// are waited for: nothing of the engine outlives it.
    fn drop(&mut self) {
        self.shared.protect.stop_background_work();
    }
}

impl Engine {
    /// Creates a repository at `path` (absent or an empty directory).
    pub fn init(path: &Path, opts: &InitOptions) -> Result<Self, InitError> {
        Ok(Self::protecting(Repository::init(path, opts)?)?)
    }

    /// Creates a repository in a store and catalog the program gives ([`Parts`]; for example
    /// [`Parts::in_memory`]) instead of a directory. The store must hold no repository yet.
    /// Engines of this process exclude each other from one repository as processes do from
    /// a directory's; a store shared between processes is not locked against them.
    pub fn init_parts(parts: Parts, opts: &InitOptions) -> Result<Self, InitError> {
        Ok(Self::protecting(Repository::init_parts(parts, opts)?)?)
    }

    /// Opens the repository in a store and catalog the program gives, as `opts` say (see
    /// [`Engine::open_with`] and [`Engine::init_parts`]).
    pub fn open_parts(parts: Parts, opts: &OpenOptions) -> Result<Self, OpenError> {
        Self::started(Repository::open_parts(parts, opts)?, opts.mode)
    }

    /// Creates a repository in a store of its own — a bucket, say — which must hold none yet,
    /// with its catalog cached in a directory of `remote.cache` (see [`Remote`]).
    pub fn init_remote(remote: Remote, opts: &InitOptions) -> Result<Self, InitError> {
        Ok(Self::protecting(Repository::init_remote(remote, opts)?)?)
    }

    /// Opens the repository in a store of its own, as `opts` say, its catalog's cache first
    /// made current with the store (filled from it when absent or unusable, caught up with
    /// what other writers committed otherwise); says how. A fresh machine needs only the
    /// store's address and the key. Writers on other machines may commit meanwhile: the first
    /// commit after theirs is refused with a conflict (`ErrorKind::Conflict`) and changes
    /// nothing, and reopening sees their changes. When the cache learned of commits (it was
    /// filled or caught up), the snapshots not yet indexed for search are indexed; a cache
    /// that was current is indexed as a local catalog is (by runs and `index_snapshot`).
    pub fn open_remote(
        remote: Remote,
        opts: &OpenOptions,
    ) -> Result<(Self, CacheRefresh), OpenError> {
        let (repo, refresh) = Repository::open_remote(remote, opts, Refill::IfNeeded)?;
        let engine = Self::started(repo, opts.mode)?;
        let engine = match refresh {
            CacheRefresh::Current => engine,
            _ => engine.indexed(),
        };
        Ok((engine, refresh))
    }

    /// [`Engine::open_remote`] with a new cache, filled from the store whatever the old one
    /// held (`coldkeep rebuild-catalog` of a bucket).
    pub fn rebuild_catalog_remote(
        remote: Remote,
        opts: &OpenOptions,
    ) -> Result<(Self, CacheRefresh), OpenError> {
        let (repo, refresh) = Repository::open_remote(remote, opts, Refill::Always)?;
        Ok((Self::started(repo, opts.mode)?.indexed(), refresh))
    }

    /// Opens an existing repository without encryption for reading and writing (see
    /// [`Engine::open_with`]). An encrypted one fails with [`OpenError::SecretRequired`].
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// Opens an existing repository without encryption read-only (see [`OpenMode::ReadOnly`]).
    pub fn open_read_only(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, &OpenOptions { mode: OpenMode::ReadOnly, ..OpenOptions::default() })
    }

    /// Opens an existing repository as `opts` say: read-write or read-only, unlocked by a
    /// secret when it is encrypted (a wrong one fails with [`KeyError::WrongKey`] before
    /// anything is read), with decorators around its catalog and store.
    ///
    /// Read-write: one process at a time ([`OpenError::Busy`] otherwise). Unfinished packs
    /// left by an interrupted backup are removed, and runs left unfinished by a crash are
    /// marked `Failed` with the reason. Refused with [`OpenError::DiskFull`] when the
    /// repository's filesystem is (nearly) full.
    ///
    /// Read-only: nothing is written, so a full disk or read-only media can be listed,
    /// restored, checked and searched. Any number of processes may read a repository at once,
    /// but not while one writes to it. Operations that would write fail with
    /// `KvError::ReadOnly` (inside their error's catalog variant) before they change anything;
    /// debris of a crash (unsealed packs, runs left `Running`) stays until the next read-write
    /// open clears it.
    pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Self, OpenError> {
        Self::started(Repository::open(path, opts)?, opts.mode)
    }

    /// The engine of an opened repository: runs and recoveries a crash left unfinished are
    /// marked `Failed` (read-write).
    fn started(repo: Repository, mode: OpenMode) -> Result<Self, OpenError> {
        let engine = Self::protecting(repo)?;
        if mode == OpenMode::ReadWrite {
            runs::fail_interrupted(&engine.shared.protect)?;
            recoveries::fail_interrupted(&engine.shared.protect)?;
        }
        Ok(engine)
    }

    /// The engine of `repo`, with its protection state loaded, on the system clock.
    fn protecting(repo: Repository) -> Result<Self, CatalogError> {
        let protect = Protection::new(repo.catalog().clone(), Arc::new(SystemClock))?;
        Ok(Self { shared: Arc::new(ProtectedRepo { protect, repo }) })
    }

    /// Recreates the catalog of the repository at `path` from its store alone — the packs'
    /// trailers and the catalog's journal — for a catalog that was lost, damaged or lost
    /// commits ([`OpenError::CatalogBehind`]). The old catalog is moved aside, not deleted.
    /// Then opens the repository as `opts` say and indexes every snapshot for search again.
    pub fn rebuild_catalog(
        path: &Path,
        opts: &OpenOptions,
    ) -> Result<(Self, RebuildReport), OpenError> {
        let report = rebuild::rebuild(path, opts)?;
        Ok(Self::open_with(path, opts)?.reindexed(report))
    }

    /// Recreates the catalog of the repository in `parts` from their store, into their
    /// catalog, which must be empty (a new `MemKv`, say); then opens it as `opts` say (see
    /// [`Engine::rebuild_catalog`]).
    pub fn rebuild_catalog_parts(
        parts: Parts,
        opts: &OpenOptions,
    ) -> Result<(Self, RebuildReport), OpenError> {
        let report = rebuild::rebuild_parts(parts.clone(), opts)?;
        Ok(Self::open_parts(parts, opts)?.reindexed(report))
    }

    /// This engine, with every snapshot of its rebuilt catalog indexed for search again.
    fn reindexed(self, report: RebuildReport) -> (Self, RebuildReport) {
        (self.indexed(), report)
    }

    /// This engine, with every snapshot of its catalog indexed for search (the ones that are
    /// already cost a lookup each). One that cannot be is logged: search misses it, as it
    /// misses what a read-only engine has not indexed.
    fn indexed(self) -> Self {
        if self.is_read_only() {
            return self;
        }
        let snapshots = match self.shared.repo.catalog().snapshots() {
            Ok(snapshots) => snapshots,
            Err(e) => {
                tracing::warn!(%e, "snapshots not indexed for search");
                return self;
            }
        };
        for snap in snapshots {
            if let Err(e) = self.index_snapshot(snap.id) {
                tracing::warn!(snapshot = %snap.id, %e, "not indexed for search");
            }
        }
        self
    }

    /// Set when the catalog holds fewer commits than the repository recorded (a damaged
    /// write-ahead log or MANIFEST made RocksDB open an older state). Only a read-only open
    /// gets this far: a read-write open is refused with [`OpenError::CatalogBehind`].
    pub fn catalog_behind(&self) -> Option<CatalogBehind> {
        self.shared.repo.catalog_behind()
    }

    /// Whether this engine was opened with [`Engine::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.shared.repo.mode() == OpenMode::ReadOnly
    }

    /// The same engine, telling time by `clock` (tests and simulations; see [`crate::ManualClock`]).
    /// Whatever the clock says, the engine's trusted time never goes back past a time it has
    /// already seen.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Result<Self, ProtectError> {
        self.shared.protect.set_clock(clock);
        Ok(self)
    }

    /// The trusted time records and schedules use: the wall clock, unless it is behind a time
    /// already seen.
    pub fn trusted_now(&self) -> Result<Usecs, ProtectError> {
        Ok(self.shared.protect.now()?)
    }

    /// The time retention, DataLock and grace periods are judged by: never behind a time already
    /// seen, and never ahead of the real time seen to pass, so a wall clock set forward ends no
    /// lock early (docs/ARCHITECTURE.md, "Time is injected and trusted").
    pub fn retention_now(&self) -> Result<Usecs, ProtectError> {
        Ok(self.shared.protect.retention_now()?)
    }

    /// The repository directory (or, for an engine built from [`Parts`], their location).
    pub fn path(&self) -> &Path {
        self.shared.repo.location()
    }

    /// Backs up `source` (a directory or a file) and commits a snapshot.
    pub fn backup(
        &self,
        source: &Path,
        opts: &BackupOptions,
    ) -> Result<SnapshotRecord, BackupError> {
        self.shared.repo.ensure_writable("back up").map_err(CatalogError::from)?;
        backup::run(&self.shared.repo, source, opts)
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>, ReadError> {
        Ok(self.shared.repo.catalog().snapshots()?)
    }

    /// One snapshot.
    pub fn snapshot(&self, id: SnapshotId) -> Result<SnapshotRecord, ReadError> {
        read::snapshot(&self.shared.repo, id)
    }

    /// Every entry under `path` in a snapshot (`""` or `"/"` for all), parents first.
    pub fn list(&self, id: SnapshotId, path: &[u8]) -> Result<Vec<ListEntry>, ReadError> {
        read::list(&self.shared.repo, &read::snapshot(&self.shared.repo, id)?, path)
    }

    /// `len` bytes (at most [`MAX_READ_LEN`](crate::MAX_READ_LEN), 8 MiB) of the file at `path` in snapshot `id`,
    /// from `offset` — the seed's download of a file by offset and length. Reads only the chunks
    /// the range overlaps.
    pub fn read_file(
        &self,
        id: SnapshotId,
        path: &[u8],
        offset: u64,
        len: u64,
    ) -> Result<FileSlice, ReadError> {
        read::read_file(
            &self.shared.repo,
            &read::snapshot(&self.shared.repo, id)?,
            path,
            offset,
            len,
        )
    }

    /// Adds a snapshot's files and directories to the file index (runs index every snapshot
    /// they make); returns how many entries were added, 0 when it was indexed already.
    pub fn index_snapshot(&self, id: SnapshotId) -> Result<u64, ReadError> {
        self.shared.repo.ensure_writable("index a snapshot").map_err(CatalogError::from)?;
        search::index_snapshot(&self.shared.repo, &read::snapshot(&self.shared.repo, id)?)
    }

    /// Files and directories of indexed snapshots whose names match, with the seed's filters,
    /// a page at a time (the seed's indexed-file search).
    pub fn search_files(&self, query: &FileSearch) -> Result<FileSearchResult, ReadError> {
        search::search(&self.shared.repo, query)
    }

    /// Writes the content of the file at `path` in a snapshot to `out`; returns its size.
    pub fn cat(&self, id: SnapshotId, path: &[u8], out: &mut dyn Write) -> Result<u64, ReadError> {
        read::cat(&self.shared.repo, &read::snapshot(&self.shared.repo, id)?, path, out)
    }

    /// Restores a snapshot, or the part of it at `path`, into `target` (absent or empty).
    pub fn restore(
        &self,
        id: SnapshotId,
        path: &[u8],
        target: &Path,
        opts: &RestoreOptions,
    ) -> Result<RestoreSummary, RestoreError> {
        restore::run(&self.shared.repo, &read::snapshot(&self.shared.repo, id)?, path, target, opts)
    }

    /// Checks the repository's structure and, with `read_data`, every stored byte.
    pub fn check(&self, opts: CheckOptions) -> Result<CheckReport, CheckError> {
        check::run(&self.shared.repo, opts)
    }

    /// Repository-wide figures.
    pub fn stats(&self) -> Result<RepoStats, ReadError> {
        let mut stats = RepoStats::default();
        for snap in self.shared.repo.catalog().snapshots()? {
            stats.snapshots += 1;
            stats.logical_bytes += snap.stats.bytes;
        }
        for (_, pack) in self.shared.repo.catalog().packs()? {
            stats.packs += 1;
            stats.pack_bytes += pack.size;
        }
        for loc in self.shared.repo.catalog().chunks() {
            stats.chunks += 1;
            stats.unique_bytes += u64::from(loc?.entry.len);
        }
        Ok(stats)
    }

    // ---- data protection: policies ----

    /// Creates a protection policy.
    pub fn create_policy(&self, spec: PolicySpec) -> Result<Policy, ProtectError> {
        self.shared.protect.create_policy(spec)
    }

    pub fn policy(&self, id: PolicyId) -> Result<Policy, ProtectError> {
        self.shared.protect.policy(id)
    }

    /// Replaces a policy; refused as [`ProtectError::Stale`] when `if_last_modified` is given
    /// and is not the policy's `last_modification_time_usecs`.
    pub fn update_policy(
        &self,
        id: PolicyId,
        spec: PolicySpec,
        if_last_modified: Option<Usecs>,
    ) -> Result<Policy, ProtectError> {
        self.shared.protect.update_policy(id, spec, if_last_modified)
    }

    /// Deletes a policy; refused as [`ProtectError::PolicyInUse`] while a group uses it.
    pub fn delete_policy(&self, id: PolicyId) -> Result<(), ProtectError> {
        self.shared.protect.delete_policy(id)
    }

    pub fn policies(&self, filter: &PolicyFilter) -> Result<Vec<Policy>, ProtectError> {
        self.shared.protect.policies(filter)
    }

    // ---- data protection: protection groups ----

    pub fn create_group(&self, spec: GroupSpec) -> Result<ProtectionGroup, ProtectError> {
        self.shared.protect.create_group(spec)
    }

    pub fn group(&self, id: GroupId) -> Result<ProtectionGroup, ProtectError> {
        self.shared.protect.group(id)
    }

    /// Replaces a group; objects that stay keep their ids. Stale updates are refused.
    pub fn update_group(
        &self,
        id: GroupId,
        spec: GroupSpec,
        if_last_modified: Option<Usecs>,
    ) -> Result<ProtectionGroup, ProtectError> {
        self.shared.protect.update_group(id, spec, if_last_modified)
    }

    /// Deletes a group, with or without its snapshots (refused, changing nothing, when any of
    /// them is under legal hold or a DataLock `principal` cannot lift).
    pub fn delete_group(
        &self,
        id: GroupId,
        delete_snapshots: bool,
        principal: &Principal,
    ) -> Result<(), ProtectError> {
        self.shared.protect.delete_group(id, delete_snapshots, principal)
    }

    pub fn groups(&self, filter: &GroupFilter) -> Result<Vec<GroupInfo>, ProtectError> {
        self.shared.protect.groups(filter)
    }

    /// The snapshots of a protected object that still exist, oldest first, with the seed's
    /// filters (`GET /data-protect/objects/{id}/snapshots`).
    pub fn object_snapshots(
        &self,
        object: ObjectId,
        filter: &ObjectSnapshotFilter,
    ) -> Result<Vec<ObjectSnapshot>, ProtectError> {
        self.shared.protect.object_snapshots(object, filter)
    }

    /// What `object` can be restored to between `from` and `to`: its full and incremental
    /// snapshots, and the time ranges the log directories protected with it cover (the seed's
    /// `POST /data-protect/snapshots/restore-points`).
    pub fn restore_points(
        &self,
        object: ObjectId,
        from: Usecs,
        to: Usecs,
    ) -> Result<RestorePoints, ProtectError> {
        self.shared.protect.restore_points(object, from, to)
    }

    /// Point-in-time recovery of `object` to `at`: restores its newest full or incremental
    /// snapshot at or before `at` into `target`, and into `logs_target` the log directory
    /// protected with it as first captured at or after `at` — every log segment the database
    /// replays to reach `at` (PostgreSQL: `restore_command` from there, `recovery_target_time`
    /// `at`). Both targets must be empty or absent.
    pub fn recover_point_in_time(
        &self,
        object: ObjectId,
        at: Usecs,
        target: &Path,
        logs_target: &Path,
        opts: &RestoreOptions,
    ) -> Result<PointInTimeRecovery, RecoveryError> {
        recoveries::point_in_time(&self.shared, object, at, target, logs_target, opts)
    }

    /// Protected objects matching a search, each with its latest snapshot and last run (the
    /// seed's `GET /data-protect/search/protected-objects`).
    pub fn search_protected_objects(
        &self,
        query: &ProtectedObjectSearch,
    ) -> Result<Vec<ProtectedObjectInfo>, ProtectError> {
        self.shared.protect.search_protected_objects(query)
    }

    // ---- sources ----

    /// Registers a source and enumerates its objects (the seed's
    /// `POST /data-protect/sources/registrations`).
    pub fn register_source(&self, spec: SourceSpec) -> Result<SourceRegistration, ProtectError> {
        self.shared.protect.register_source(spec)
    }

    pub fn source(&self, id: SourceId) -> Result<SourceRegistration, ProtectError> {
        self.shared.protect.source(id)
    }

    /// Registered sources with these ids; all of them when `ids` is empty.
    pub fn sources(&self, ids: &[SourceId]) -> Result<Vec<SourceRegistration>, ProtectError> {
        self.shared.protect.sources(ids)
    }

    /// Replaces a source's specification (refused when `if_last_modified` is stale) and
    /// enumerates it again.
    pub fn update_source(
        &self,
        id: SourceId,
        spec: SourceSpec,
        if_last_modified: Option<Usecs>,
    ) -> Result<SourceRegistration, ProtectError> {
        self.shared.protect.update_source(id, spec, if_last_modified)
    }

    /// Enumerates a source's objects again.
    pub fn refresh_source(&self, id: SourceId) -> Result<SourceRegistration, ProtectError> {
        self.shared.protect.refresh_source(id)
    }

    /// Deletes a source; refused (`SourceInUse`) while a group protects anything under it.
    pub fn delete_source(&self, id: SourceId) -> Result<(), ProtectError> {
        self.shared.protect.delete_source(id)
    }

    // ---- recoveries ----

    /// Creates a recovery (the seed's `POST /data-protect/recoveries` and
    /// `/recoveries/download-files-folders`) and executes it in the background; returns its
    /// record at once (`Accepted`).
    pub fn create_recovery(&self, request: RecoveryRequest) -> Result<Recovery, ProtectError> {
        recoveries::create(&self.shared, request)
    }

    /// A recovery's record, and its live counters while it executes in this process.
    pub fn recovery(
        &self,
        id: RecoveryId,
    ) -> Result<(Recovery, Option<SnapshotStats>), ProtectError> {
        let record = self.shared.protect.recovery(id)?;
        let live = self.shared.protect.recovery_progress(id).map(|p| p.stats());
        let live = live.filter(|_| !record.status.is_terminal());
        Ok((record, live))
    }

    /// Recoveries, oldest first, with the seed's filters.
    pub fn recoveries(&self, filter: &RecoveryFilter) -> Result<Vec<Recovery>, ProtectError> {
        self.shared.protect.recoveries(filter)
    }

    /// Cancels a recovery executing in this process (`Canceling`, then `Canceled`).
    pub fn cancel_recovery(&self, id: RecoveryId) -> Result<Recovery, ProtectError> {
        self.shared.protect.cancel_recovery(id)
    }

    /// Waits until a recovery has ended and returns its final record.
    pub fn wait_recovery(&self, id: RecoveryId) -> Result<Recovery, ProtectError> {
        loop {
            let r = self.shared.protect.recovery(id)?;
            if r.status.is_terminal() {
                return Ok(r);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Writes `paths` of a snapshot to `out` as a tar archive, as a stream (what a
    /// DownloadFilesAndFolders recovery writes to its output).
    pub fn download_files(
        &self,
        id: SnapshotId,
        paths: &[Vec<u8>],
        out: &mut dyn Write,
    ) -> Result<(), ArchiveError> {
        let repo = &self.shared.repo;
        let snap = read::snapshot(repo, id)?;
        archive::write_tar(repo, &snap, paths, out, &Progress::default(), &Control::default())
    }

    /// Every retention, hold, lock and deletion change, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>, ProtectError> {
        self.shared.protect.audit_log()
    }

    // ---- data protection: runs ----

    /// Starts a run of a group in the background (the seed's `POST /protection-groups/{id}/runs`)
    /// and returns its record at once: `Accepted`, or `Paused` with `start_suspended`.
    pub fn start_run(&self, group: GroupId, request: RunRequest) -> Result<Run, ProtectError> {
        runs::start_run(&self.shared, group, request, None)
    }

    pub fn run(&self, group: GroupId, run: RunId) -> Result<Run, ProtectError> {
        self.shared.protect.run(group, run)
    }

    /// A group's runs, oldest first, with the seed's filters.
    pub fn runs(&self, group: GroupId, filter: &RunFilter) -> Result<Vec<Run>, ProtectError> {
        self.shared.protect.runs(group, filter)
    }

    /// How many runs execute at once (2 by default; each uses every core). Runs beyond it wait
    /// `OnHold`, and a free slot goes to the highest priority, then the oldest run. 0 holds
    /// every new run until raised; runs already executing go on.
    pub fn set_max_concurrent_runs(&self, limit: usize) {
        self.shared.protect.set_max_concurrent_runs(limit);
    }

    /// The live counters of a run executing in this process (all its objects together);
    /// `RunNotActive` once it has ended — its record then holds the final figures.
    pub fn run_progress(&self, group: GroupId, run: RunId) -> Result<Arc<Progress>, ProtectError> {
        self.shared.protect.run_progress(group, run)
    }

    /// Pauses a running run at its next chunk boundary.
    pub fn pause_run(&self, group: GroupId, run: RunId) -> Result<Run, ProtectError> {
        self.shared.protect.control_run(group, run, Control::pause, Some(RunStatus::Paused))
    }

    /// Resumes a paused run where it stopped.
    pub fn resume_run(&self, group: GroupId, run: RunId) -> Result<Run, ProtectError> {
        self.shared.protect.control_run(group, run, Control::resume, Some(RunStatus::Running))
    }

    /// Cancels a run: it stops at its next chunk boundary (`Canceling`, then `Canceled`); what
    /// it wrote stays reusable, nothing is half-committed.
    pub fn cancel_run(&self, group: GroupId, run: RunId) -> Result<Run, ProtectError> {
        self.shared.protect.control_run(group, run, Control::cancel, Some(RunStatus::Canceling))
    }

    /// Waits until a run has ended and returns its final record.
    pub fn wait_run(&self, group: GroupId, run: RunId) -> Result<Run, ProtectError> {
        loop {
            let r = self.run(group, run)?;
            if r.status.is_terminal() {
                return Ok(r);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Extends or reduces retention, places or lifts legal holds, applies DataLock, deletes
    /// snapshots (the seed's `PUT /protection-groups/{id}/runs`). All or nothing; audited.
    pub fn update_runs(
        &self,
        group: GroupId,
        updates: &[RunUpdate],
        principal: &Principal,
    ) -> Result<Vec<Run>, ProtectError> {
        self.shared.update_runs(group, updates, principal)
    }

    /// Runs the scheduler once at the trusted time: starts the runs that are due, records
    /// `Missed` runs, skips blacked-out and paused slots, cancels runs of groups that abort in
    /// blackouts. Call it from a timer (every minute, say) or drive it with a [`crate::ManualClock`].
    pub fn tick(&self) -> Result<TickReport, ProtectError> {
        scheduler::tick(&self.shared)
    }

    /// The repository's key slots (an encrypted repository's; none otherwise).
    pub fn keys(&self) -> Result<Vec<KeyInfo>, KeyError> {
        match self.shared.repo.key_slots() {
            Ok((slots, _)) => slots.list(),
            Err(KeyError::NotEncrypted) => Ok(vec![]),
            Err(e) => Err(e),
        }
    }

    /// Adds a key slot that `secret` unlocks (`label` says whose it is).
    pub fn add_key(
        &self,
        secret: &Secret,
        kdf: KdfParams,
        label: &str,
    ) -> Result<KeyInfo, KeyError> {
        self.shared.repo.ensure_writable("change keys").map_err(|_| KeyError::ReadOnly)?;
        let (slots, master) = self.shared.repo.key_slots()?;
        slots.add(master, secret, kdf, label, repository::now_us())
    }

    /// Removes key slot `id`. The last slot cannot be removed ([`KeyError::LastSlot`]).
    pub fn remove_key(&self, id: &str) -> Result<(), KeyError> {
        self.shared.repo.ensure_writable("change keys").map_err(|_| KeyError::ReadOnly)?;
        self.shared.repo.key_slots()?.0.remove(id)
    }

    /// Removes expired snapshots and reclaims the space of chunks nothing references any more:
    /// two phases with `opts.grace` between them, safe against backups running at the same time
    /// and against a crash at any step (see the `gc` module).
    pub fn gc(&self, opts: GcOptions) -> Result<GcReport, GcError> {
        self.shared.repo.ensure_writable("collect garbage").map_err(CatalogError::from)?;
        expiry::collect_garbage(&self.shared, opts)
    }
}
