//! Recoveries: durable tasks that restore files, build a download archive or recover an object to
//! a point in time, in the background, cancelable, their status and counters in the catalog.
//!
//! A recovery's record is written when it is accepted, when it starts and when it ends; while
//! it runs, `Engine::recovery` adds its live counters. A recovery
//! still marked unfinished when the repository is opened was cut short by the process ending:
//! it is marked `Failed` with the reason, never left `Running`.
//!
//! Files recovered into a directory that already has content are restored into a staging
//! directory inside the target first (so the restore keeps its guarantees: nothing written
//! through a symlink, nothing outside the target) and then moved into place with `rename`,
//! which never follows a symlink at the destination: an existing entry is replaced
//! (`overwrite_existing`) or left alone and counted as skipped.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use coldkeep_catalog::{Batch, Catalog, CatalogError, Counter};
use coldkeep_model::{
    path_of, ObjectId, Recovery, RecoveryAction, RecoveryId, RecoveryParams, RecoveryStats,
    RunStatus, Usecs,
};

use serde::Serialize;

use crate::objects::PointInTimePlan;
use crate::ProtectedRepo;
use crate::{ProtectError, Protection};
use coldkeep_repo::archive::{write_tar, ArchiveError};
use coldkeep_repo::beneath::Beneath;
use coldkeep_repo::control::{Control, Stop};
use coldkeep_repo::error::{ErrorKind, IoError, RestoreError};
use coldkeep_repo::progress::Progress;
use coldkeep_repo::read::{resolve, snapshot, Resolved};
use coldkeep_repo::restore::{self, RestoreOptions, RestoreSummary};
use coldkeep_repo::tree::{components, join, NodeKind};

/// Errors of a point-in-time recovery: no plan reaches the time, or a restore failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    #[error(transparent)]
    Plan(#[from] ProtectError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

impl RecoveryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RecoveryError::Plan(e) => e.kind(),
            RecoveryError::Restore(e) => e.kind(),
        }
    }
}

/// What a caller gives to create a recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    pub name: String,
    pub params: RecoveryParams,
}

/// The seed's `GET /data-protect/recoveries` filters; `None` and empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryFilter {
    pub ids: Vec<RecoveryId>,
    /// Recoveries started at or after this time.
    pub start_time_usecs: Option<Usecs>,
    /// Recoveries started at or before this time.
    pub end_time_usecs: Option<Usecs>,
    pub status: Vec<RunStatus>,
    pub recovery_actions: Vec<RecoveryAction>,
}

/// A recovery executing in this process.
#[derive(Debug)]
pub(crate) struct ActiveRecovery {
    pub control: Arc<Control>,
    pub progress: Arc<Progress>,
    /// Held while the record is read and rewritten, so that a cancel and the recovery's own
    /// end never overwrite each other.
    record: Mutex<()>,
}

/// The recoveries executing in this process.
pub(crate) type ActiveRecoveries = Mutex<HashMap<RecoveryId, Arc<ActiveRecovery>>>;

/// Marks every recovery left unfinished by an earlier process as `Failed`, with the reason.
pub fn fail_interrupted(p: &Protection) -> Result<(), CatalogError> {
    let now = p.now()?;
    let mut batch = Batch::new();
    for mut r in p.catalog.scan::<Recovery>(&[])? {
        if !r.status.is_terminal() {
            r.message = Some(format!(
                "interrupted: the process stopped while the recovery was {}; what it had \
                 written stays where it was written",
                r.status
            ));
            r.status = RunStatus::Failed;
            r.end_time_usecs = Some(now);
            Catalog::stage(&mut batch, &r);
        }
    }
    if !batch.is_empty() {
        p.catalog.write(batch)?;
    }
    Ok(())
}

impl Protection {
    pub fn recovery(&self, id: RecoveryId) -> Result<Recovery, ProtectError> {
        self.catalog.get(&id.key())?.ok_or(ProtectError::RecoveryNotFound(id))
    }

    pub fn recoveries(&self, f: &RecoveryFilter) -> Result<Vec<Recovery>, ProtectError> {
        Ok(self
            .catalog
            .scan::<Recovery>(&[])?
            .into_iter()
            .filter(|r| {
                (f.ids.is_empty() || f.ids.contains(&r.id))
                    && f.start_time_usecs.is_none_or(|t| r.start_time_usecs >= t)
                    && f.end_time_usecs.is_none_or(|t| r.start_time_usecs <= t)
                    && (f.status.is_empty() || f.status.contains(&r.status))
                    && (f.recovery_actions.is_empty()
                        || f.recovery_actions.contains(&r.params.action()))
            })
            .collect())
    }

    fn active_recovery(&self, id: RecoveryId) -> Option<Arc<ActiveRecovery>> {
        let active = self.recoveries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        active.get(&id).cloned()
    }

    /// Live counters of a recovery executing in this process.
    pub fn recovery_progress(&self, id: RecoveryId) -> Option<Arc<Progress>> {
        self.active_recovery(id).map(|a| Arc::clone(&a.progress))
    }

    /// Cancels a recovery executing in this process; it stops between packs (or archive
    /// entries) and is recorded `Canceled`.
    pub fn cancel_recovery(&self, id: RecoveryId) -> Result<Recovery, ProtectError> {
        let current = self.recovery(id)?;
        let Some(active) = self.active_recovery(id).filter(|a| a.control.cancel()) else {
            return Err(ProtectError::RecoveryNotActive { id, status: current.status });
        };
        let _record = active.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut r = self.recovery(id)?;
        if !r.status.is_terminal() {
            r.status = RunStatus::Canceling;
            self.catalog.put(&r)?;
        }
        Ok(r)
    }
}

fn validate(shared: &ProtectedRepo, request: &RecoveryRequest) -> Result<(), ProtectError> {
    let invalid = |why: String| Err(ProtectError::InvalidRequest(why));
    if request.name.trim().is_empty() {
        return invalid("a recovery needs a name".into());
    }
    match &request.params {
        RecoveryParams::RecoverFiles { snapshot: id, paths, target, .. } => {
            snapshot(&shared.repo, *id)?;
            if paths.is_empty() || !path_of(target).is_absolute() {
                return invalid("RecoverFiles needs paths and an absolute target".into());
            }
        }
        RecoveryParams::DownloadFilesAndFolders { snapshot: id, paths, output } => {
            snapshot(&shared.repo, *id)?;
            let output = path_of(output);
            if paths.is_empty() || !output.is_absolute() || output.symlink_metadata().is_ok() {
                return invalid(
                    "DownloadFilesAndFolders needs paths and a new absolute output".into(),
                );
            }
        }
        RecoveryParams::PointInTime { target, logs_target, .. } => {
            if !path_of(target).is_absolute() || !path_of(logs_target).is_absolute() {
                return invalid("PointInTime needs absolute targets".into());
            }
        }
    }
    Ok(())
}

/// What a point-in-time recovery restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointInTimeRecovery {
    pub plan: PointInTimePlan,
    pub base: RestoreSummary,
    pub logs: RestoreSummary,
}

/// Restores `object` as of `at`: its base into `target`, the logs to replay into `logs_target`
/// (see [`RestorePoints::plan`](crate::objects::RestorePoints::plan)). Serves both the direct
/// call and the PointInTime recovery task.
pub fn point_in_time(
    shared: &ProtectedRepo,
    object: ObjectId,
    at: Usecs,
    target: &Path,
    logs_target: &Path,
    opts: &RestoreOptions,
) -> Result<PointInTimeRecovery, RecoveryError> {
    let repo = &shared.repo;
    let points = shared.protect.restore_points(object, Usecs(i64::MIN), Usecs(i64::MAX))?;
    let plan = points.plan(object, at)?;
    let restore = |id, dir: &Path| -> Result<RestoreSummary, RestoreError> {
        restore::run(repo, &snapshot(repo, id)?, b"", dir, opts)
    };
    let base = restore(plan.base.snapshot, target)?;
    let logs = restore(plan.logs.snapshot, logs_target)?;
    Ok(PointInTimeRecovery { plan, base, logs })
}

/// Records a recovery as `Accepted` and executes it on a background thread.
pub fn create(
    shared: &Arc<ProtectedRepo>,
    request: RecoveryRequest,
) -> Result<Recovery, ProtectError> {
    validate(shared, &request)?;
    let p = &shared.protect;
    let record = Recovery {
        id: RecoveryId::new(p.catalog.allocate(Counter::Recovery)?),
        name: request.name,
        params: request.params,
        status: RunStatus::Accepted,
        start_time_usecs: p.now()?,
        end_time_usecs: None,
        stats: RecoveryStats::default(),
        warnings: vec![],
        message: None,
    };
    p.catalog.put(&record)?;
    let active = Arc::new(ActiveRecovery {
        control: Arc::new(Control::default()),
        progress: Arc::new(Progress::default()),
        record: Mutex::new(()),
    });
    p.recoveries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(record.id, Arc::clone(&active));
    let (owned, mut running) = (Arc::clone(shared), record.clone());
    let threads = &shared.protect.threads;
    threads
        .spawn(format!("recovery-{}", record.id), move || {
            let shared = owned;
            let p = &shared.protect;
            running.status = RunStatus::Running;
            let outcome = p.catalog.put(&running).map_err(ProtectError::from).and_then(|()| {
                let (id, params) = (running.id, &running.params);
                execute(&shared, id, params, &active, &mut running.stats, &mut running.warnings)
            });
            let progress = active.progress.stats();
            running.stats.files = running.stats.files.max(progress.files);
            running.stats.bytes = running.stats.bytes.max(progress.bytes);
            (running.status, running.message) = match outcome {
                Ok(()) if running.warnings.is_empty() => (RunStatus::Succeeded, None),
                Ok(()) => (RunStatus::SucceededWithWarning, None),
                Err(e) if canceled(&e) => (RunStatus::Canceled, Some("canceled".into())),
                Err(e) => (RunStatus::Failed, Some(e.to_string())),
            };
            running.end_time_usecs = p.now().ok();
            let _record = active.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(e) = p.catalog.put(&running) {
                tracing::error!(recovery = %running.id, error = %e, "recovery could not record its end");
            }
            p.recoveries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&running.id);
        })
        .map_err(|e| ProtectError::InvalidRequest(format!("cannot start a recovery thread: {e}")))?;
    Ok(record)
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ProtectError + 'a {
    move |e| ProtectError::Io(IoError::new(op, path, e))
}

/// Whether an error is the recovery's control stopping it.
fn canceled(e: &ProtectError) -> bool {
    matches!(
        e,
        ProtectError::Restore(RestoreError::Stopped(Stop::Canceled))
            | ProtectError::Archive(ArchiveError::Stopped(Stop::Canceled))
    )
}

fn execute(
    shared: &ProtectedRepo,
    id: RecoveryId,
    params: &RecoveryParams,
    active: &ActiveRecovery,
    stats: &mut RecoveryStats,
    warnings: &mut Vec<String>,
) -> Result<(), ProtectError> {
    let opts = RestoreOptions {
        progress: Some(Arc::clone(&active.progress)),
        control: Some(Arc::clone(&active.control)),
        ..RestoreOptions::default()
    };
    match params {
        RecoveryParams::RecoverFiles { snapshot: snap_id, paths, target, overwrite_existing } => {
            let snap = snapshot(&shared.repo, *snap_id)?;
            let target = path_of(target);
            std::fs::create_dir_all(target).map_err(io_err("create", target))?;
            let into = Beneath::open(target).map_err(io_err("open", target))?;
            let staging = format!(".coldkeep-recovery-{id}").into_bytes();
            into.mkdir(&staging).map_err(io_err("create", &into.display(&staging)))?;
            let mut failed = Vec::new();
            let mut moves = Moves {
                into: &into,
                staging: &staging,
                overwrite: *overwrite_existing,
                stats,
                moved_aside: 0,
            };
            let mut outcome = Ok(());
            for (i, path) in paths.iter().enumerate() {
                let stage = join(&staging, i.to_string().as_bytes());
                let mut one = || -> Result<(), ProtectError> {
                    into.mkdir(&stage).map_err(io_err("create", &into.display(&stage)))?;
                    let at = into.subdir(&stage).map_err(io_err("open", &into.display(&stage)))?;
                    let summary = restore::run_beneath(&shared.repo, &snap, path, &at, &opts)?;
                    warnings.extend(summary.warnings);
                    // What the restore made, and where it goes.
                    let is_dir = match resolve(&shared.repo, &snap, path)? {
                        Resolved::Root(_) => true,
                        Resolved::Node(node) => matches!(node.kind, NodeKind::Dir { .. }),
                    };
                    match components(path).last() {
                        Some(name) if is_dir => moves.place(&stage, name),
                        Some(name) => moves.place(&join(&stage, name), name),
                        None => moves.merge(&stage, b""),
                    }
                };
                match one() {
                    Ok(()) => {}
                    Err(e) if canceled(&e) => {
                        outcome = Err(e);
                        break;
                    }
                    // One path that fails does not stop the others.
                    Err(e) => failed.push(format!("{}: {e}", String::from_utf8_lossy(path))),
                }
            }
            // A direct child of the target: removing it never follows a symlink put in its place.
            let _ = std::fs::remove_dir_all(into.display(&staging));
            outcome?;
            if failed.is_empty() {
                Ok(())
            } else {
                Err(ProtectError::PathsNotRecovered { total: paths.len(), failed })
            }
        }
        RecoveryParams::DownloadFilesAndFolders { snapshot: id, paths, output } => {
            let snap = snapshot(&shared.repo, *id)?;
            let output = path_of(output);
            let file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(output)
                .map_err(io_err("create", output))?;
            let mut out = std::io::BufWriter::new(file);
            Ok(write_tar(&shared.repo, &snap, paths, &mut out, &active.progress, &active.control)?)
        }
        RecoveryParams::PointInTime { object, at, target, logs_target } => {
            let (target, logs_target) = (path_of(target), path_of(logs_target));
            let done = point_in_time(shared, *object, *at, target, logs_target, &opts).map_err(
                |e| match e {
                    RecoveryError::Plan(e) => e,
                    RecoveryError::Restore(e) => ProtectError::Restore(e),
                },
            )?;
            warnings.extend(done.base.warnings);
            warnings.extend(done.logs.warnings);
            Ok(())
        }
    }
}

/// Moving what a recovery restored into staging to where it goes, all beneath the target's
/// descriptor: no path component is followed as a symlink, and a symlink where an entry goes is
/// replaced, not followed.
struct Moves<'a> {
    into: &'a Beneath,
    staging: &'a [u8],
    overwrite: bool,
    stats: &'a mut RecoveryStats,
    /// Entries replaced so far (each moved aside into staging under a name of its own).
    moved_aside: usize,
}

impl Moves<'_> {
    /// Moves `from` to `to`: into place when nothing is there; merged into an existing
    /// directory entry by entry; otherwise replacing what is there (which is moved into
    /// staging, and goes with it) when `overwrite`, else leaving it and counting it skipped.
    fn place(&mut self, from: &[u8], to: &[u8]) -> Result<(), ProtectError> {
        let t = self.into;
        let shown = t.display(to);
        let Some(existing) = t.stat(to).map_err(io_err("inspect", &shown))? else {
            return t.rename(from, to).map_err(io_err("move into place", &shown));
        };
        let incoming = t.stat(from).map_err(io_err("inspect", &t.display(from)))?;
        let dir = Some(rustix::fs::FileType::Directory);
        if Some(existing) == dir && incoming == dir {
            return self.merge(from, to);
        }
        if !self.overwrite {
            self.stats.skipped += 1;
            return Ok(());
        }
        self.moved_aside += 1;
        let aside = [self.staging, format!("/replaced-{}", self.moved_aside).as_bytes()].concat();
        t.rename(to, &aside).map_err(io_err("move aside", &shown))?;
        t.rename(from, to).map_err(io_err("replace", &shown))
    }

    /// Places every entry of the directory `from` into the existing directory `to`.
    fn merge(&mut self, from: &[u8], to: &[u8]) -> Result<(), ProtectError> {
        let names = self.into.list(from).map_err(io_err("list", &self.into.display(from)))?;
        for name in names {
            self.place(&join(from, &name), &join(to, &name))?;
        }
        Ok(())
    }
}
