//! Runs: started on demand or by the scheduler, executed in the background object by object,
//! paused / resumed / canceled through their [`Control`], listed with the seed's filters, and
//! their snapshots' retention updated under the hold and lock rules.
//!
//! While a run executes, its record lives in memory behind one mutex ([`ActiveRun`]) and every
//! change — progress from the executing thread, a pause from a caller — goes through it and is
//! persisted at once, so the two never overwrite each other. A run still marked running when the
//! repository is opened was interrupted by a crash: [`fail_interrupted`] marks it `Failed` with the
//! reason. It is not resumed: the source may have changed since, the next scheduled run will
//! cover it, and every chunk the interrupted run sealed is reused by deduplication.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coldkeep_catalog::{Batch, Catalog, CatalogError, Counter};
use coldkeep_model::{
    GroupId, LogRange, ObjectId, ObjectKind, ObjectRun, Principal, ProtectionGroup, Run, RunId,
    RunRequest, RunStats, RunStatus, RunType, RunUpdate, SnapshotRetention, Usecs,
};
use coldkeep_retention::{apply_update, initial_retention};

use crate::ProtectedRepo;
use crate::{ProtectError, Protection};
use coldkeep_catalog::BackupKind;
use coldkeep_repo::backup::{self, BackupOptions};
use coldkeep_repo::control::{Control, Stop};
use coldkeep_repo::error::BackupError;
use coldkeep_repo::progress::Progress;

/// A run executing in this process.
#[derive(Debug)]
pub(crate) struct ActiveRun {
    pub control: Arc<Control>,
    /// Live counters of the run, all its objects together.
    pub progress: Arc<Progress>,
    /// Waiting for a slot to execute in (`OnHold`).
    on_hold: AtomicBool,
    record: Mutex<Run>,
}

impl ActiveRun {
    fn group(&self) -> GroupId {
        self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner).group
    }

    /// Changes the record and persists it, under the record's lock.
    fn update(&self, p: &Protection, change: impl FnOnce(&mut Run)) -> Result<Run, ProtectError> {
        let mut run = self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.persist(p, &mut run, change)
    }

    /// Pauses, resumes or cancels the run (`action` on its control, then `status` on its
    /// record) — refused once its record has ended: its thread may still be finishing, and a
    /// late pause must not turn a `Succeeded` record back into `Paused`.
    fn steer(
        &self,
        p: &Protection,
        action: impl FnOnce(&Control) -> bool,
        status: Option<RunStatus>,
    ) -> Result<Run, ProtectError> {
        let mut run = self.record.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if run.status.is_terminal() || !action(&self.control) {
            return Err(ProtectError::RunNotActive {
                group: run.group,
                run: run.id,
                status: run.status,
            });
        }
        self.persist(p, &mut run, |r| {
            if let Some(s) = status {
                r.status = s;
            }
        })
    }

    fn persist(
        &self,
        p: &Protection,
        run: &mut Run,
        change: impl FnOnce(&mut Run),
    ) -> Result<Run, ProtectError> {
        change(run);
        // While executing, the status follows the control: a pause or cancel from any thread
        // shows at once, and the executing thread's own updates cannot undo it.
        if !run.status.is_terminal() && run.status != RunStatus::Finalizing {
            run.status = if self.control.is_canceled() {
                RunStatus::Canceling
            } else if self.control.is_paused() {
                RunStatus::Paused
            } else if self.on_hold.load(Ordering::SeqCst) {
                RunStatus::OnHold
            } else {
                RunStatus::Running
            };
        }
        p.catalog.put(&*run)?;
        Ok(run.clone())
    }
}

/// The seed's `GET /protection-groups/{id}/runs` filters; empty lists and `None` match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub run_ids: Vec<RunId>,
    /// Only runs that started at or after this time.
    pub start_time_usecs: Option<Usecs>,
    /// Only runs that started at or before this time.
    pub end_time_usecs: Option<Usecs>,
    pub run_types: Vec<RunType>,
    pub statuses: Vec<RunStatus>,
    /// The newest `n` runs that match.
    pub max_count: Option<usize>,
    /// Keep the per-object results (left out by default, as in the seed).
    pub include_object_details: bool,
}

/// Marks every run left unfinished by an earlier process as `Failed`, with the reason.
pub fn fail_interrupted(p: &Protection) -> Result<(), CatalogError> {
    let now = p.now()?;
    let mut batch = Batch::new();
    for mut run in p.catalog.scan::<Run>(&[])? {
        if run.status.is_terminal() {
            continue;
        }
        run.message = Some(format!(
            "interrupted: the process stopped while the run was {}; snapshots it committed are kept",
            run.status
        ));
        run.status = RunStatus::Failed;
        run.end_time_usecs = Some(now);
        for o in &mut run.objects {
            if !o.status.is_terminal() {
                o.status = RunStatus::Failed;
                o.error = Some("interrupted".into());
            }
        }
        Catalog::stage(&mut batch, &run);
    }
    if !batch.is_empty() {
        p.catalog.write(batch)?;
    }
    Ok(())
}

/// Sees each run an update changes, with its retention before the change, and the trusted time;
/// may still refuse them all.
pub(crate) type BeforeCommit<'a> =
    dyn Fn(&[(&Run, SnapshotRetention)], Usecs) -> Result<(), ProtectError> + 'a;

impl Protection {
    pub fn run(&self, group: GroupId, id: RunId) -> Result<Run, ProtectError> {
        self.catalog
            .get(&coldkeep_catalog::run_key(group, id))?
            .ok_or(ProtectError::RunNotFound { group, run: id })
    }

    pub fn runs(&self, group: GroupId, filter: &RunFilter) -> Result<Vec<Run>, ProtectError> {
        self.group(group)?;
        let mut runs: Vec<Run> = self
            .catalog
            .scan::<Run>(&group.key())?
            .into_iter()
            .filter(|r| {
                (filter.run_ids.is_empty() || filter.run_ids.contains(&r.id))
                    && filter.start_time_usecs.is_none_or(|t| r.start_time_usecs >= t)
                    && filter.end_time_usecs.is_none_or(|t| r.start_time_usecs <= t)
                    && (filter.run_types.is_empty() || filter.run_types.contains(&r.run_type))
                    && (filter.statuses.is_empty() || filter.statuses.contains(&r.status))
            })
            .collect();
        if let Some(n) = filter.max_count {
            runs.drain(..runs.len().saturating_sub(n));
        }
        if !filter.include_object_details {
            for r in &mut runs {
                r.objects.clear();
            }
        }
        Ok(runs)
    }

    fn active(&self, group: GroupId, id: RunId) -> Result<Arc<ActiveRun>, ProtectError> {
        let active = self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = active.get(&id).filter(|a| a.group() == group) {
            return Ok(Arc::clone(a));
        }
        let run = self.run(group, id)?;
        Err(ProtectError::RunNotActive { group, run: id, status: run.status })
    }

    /// The live counters of a run executing in this process.
    pub fn run_progress(&self, group: GroupId, id: RunId) -> Result<Arc<Progress>, ProtectError> {
        Ok(Arc::clone(&self.active(group, id)?.progress))
    }

    /// Applies a control action to a run executing in this process.
    pub fn control_run(
        &self,
        group: GroupId,
        id: RunId,
        action: impl FnOnce(&Control) -> bool,
        status: Option<RunStatus>,
    ) -> Result<Run, ProtectError> {
        self.active(group, id)?.steer(self, action, status)
    }

    /// Changes the retention of runs' snapshots, places or lifts legal holds, locks, deletes
    /// (the seed's `PUT /protection-groups/{id}/runs`). All or nothing: if any update is refused,
    /// none is applied. Every applied update is in the audit log. `before_commit` sees each
    /// changed run with its retention before the change, and may still refuse them all (the
    /// store's own locks are placed there: [`ProtectedRepo::update_runs`](crate::ProtectedRepo)).
    pub(crate) fn update_runs(
        &self,
        group: GroupId,
        updates: &[RunUpdate],
        principal: &Principal,
        before_commit: &BeforeCommit<'_>,
    ) -> Result<Vec<(Run, SnapshotRetention)>, ProtectError> {
        let _edit = self.edit();
        self.group(group)?;
        let now = self.retention_now()?;
        // Each run once, with its retention before the request and the updates applied to it
        // in order (a request may name a run more than once).
        let mut changed: Vec<(Run, SnapshotRetention, Vec<&RunUpdate>)> = Vec::new();
        for u in updates {
            let id = u
                .run
                .ok_or_else(|| ProtectError::InvalidRequest("an update names no run".into()))?;
            let slot = if let Some(i) = changed.iter().position(|(r, _, _)| r.id == id) {
                i
            } else {
                let run = self.run(group, id)?;
                let before = run.retention;
                changed.push((run, before, Vec::new()));
                changed.len() - 1
            };
            let (run, _, applied) = &mut changed[slot];
            if !run.status.is_terminal() {
                return Err(ProtectError::InvalidRequest(format!(
                    "run {id} is still {}",
                    run.status
                )));
            }
            if run.snapshots_deleted {
                return Err(ProtectError::InvalidRequest(format!(
                    "run {id}'s snapshots are deleted"
                )));
            }
            let decision = apply_update(run.retention, u, principal, now)?;
            run.retention = decision.retention;
            run.snapshots_deleted = decision.delete;
            applied.push(u);
        }
        let mut batch = Batch::new();
        for (run, before, applied) in &changed {
            let action = if run.snapshots_deleted { "delete_snapshots" } else { "update_run" };
            let target = format!("group {group} run {}", run.id);
            self.stage_audit(
                &mut batch,
                principal,
                action,
                &target,
                &(before, applied),
                &run.retention,
            )?;
            if run.snapshots_deleted {
                for snapshot in run.objects.iter().filter_map(|o| o.snapshot) {
                    Catalog::stage_delete_snapshot(&mut batch, snapshot);
                }
            }
            Catalog::stage(&mut batch, run);
        }
        let before: Vec<(&Run, SnapshotRetention)> =
            changed.iter().map(|(run, before, _)| (run, *before)).collect();
        before_commit(&before, now)?;
        self.catalog.write(batch)?;
        Ok(changed.into_iter().map(|(run, before, _)| (run, before)).collect())
    }

    /// The group's run that has not ended yet, if any (a group runs one run at a time).
    pub fn unfinished_run(&self, group: GroupId) -> Result<Option<Run>, ProtectError> {
        Ok(self.catalog.scan::<Run>(&group.key())?.into_iter().find(|r| !r.status.is_terminal()))
    }

    /// Refuses with [`ProtectError::RunInProgress`] while the group has an unfinished run.
    pub fn ensure_no_run_in_progress(&self, group: GroupId) -> Result<(), ProtectError> {
        match self.unfinished_run(group)? {
            Some(busy) => Err(ProtectError::RunInProgress { group, run: busy.id }),
            None => Ok(()),
        }
    }
}

/// Starts a run of `group` in the background and returns it as recorded (`Accepted`, or `Paused`
/// when started suspended).
pub fn start_run(
    shared: &Arc<ProtectedRepo>,
    group: GroupId,
    request: RunRequest,
    scheduled: Option<Usecs>,
) -> Result<Run, ProtectError> {
    let p = &shared.protect;
    let _edit = p.edit();
    let group = p.live_group(group)?;
    let objects = match &request.objects {
        None => group.objects.iter().map(|o| o.id).collect(),
        Some(ids) => {
            if let Some(bad) = ids.iter().find(|id| group.object(**id).is_none()) {
                return Err(ProtectError::InvalidRequest(format!(
                    "object {bad} is not in protection group {}",
                    group.id
                )));
            }
            ids.clone()
        }
    };
    p.ensure_no_run_in_progress(group.id)?;
    let id = RunId::new(p.catalog.allocate(Counter::Run)?);
    let options = request.options;
    let run = Run {
        id,
        group: group.id,
        run_type: request.run_type,
        status: if options.start_suspended { RunStatus::Paused } else { RunStatus::Accepted },
        scheduled_time_usecs: scheduled,
        start_time_usecs: p.now()?,
        end_time_usecs: None,
        objects: objects.iter().map(|&object| ObjectRun::new(object)).collect(),
        message: None,
        retention: SnapshotRetention::default(),
        snapshots_deleted: false,
        options,
    };
    p.catalog.put(&run)?;
    let deadline = run
        .options
        .total_running_time_mins
        .map(|m| Instant::now() + Duration::from_secs(u64::from(m) * 60));
    let control = Arc::new(Control::new(run.options.start_suspended, deadline));
    let active = Arc::new(ActiveRun {
        control,
        progress: Arc::new(Progress::default()),
        on_hold: AtomicBool::new(false),
        record: Mutex::new(run.clone()),
    });
    p.active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id, Arc::clone(&active));
    let owned = Arc::clone(shared);
    shared
        .protect
        .threads
        .spawn(format!("run-{id}"), move || {
            let shared = owned;
            let outcome = execute(&shared, &group, &active);
            if let Err(e) = outcome {
                tracing::error!(run = %id, error = %e, "run could not record its outcome");
            }
            shared
                .protect
                .active
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
        })
        .map_err(|e| ProtectError::InvalidRequest(format!("cannot start a run thread: {e}")))?;
    Ok(run)
}

/// Backs up each object of the run, then decides its status and its snapshots' retention.
fn execute(
    shared: &ProtectedRepo,
    group: &ProtectionGroup,
    active: &ActiveRun,
) -> Result<(), ProtectError> {
    let p = &shared.protect;
    active.on_hold.store(true, Ordering::SeqCst);
    let run = active.update(p, |_| {})?;
    let slot = p.admission.admit(run.id, run.options.priority, &active.control);
    active.on_hold.store(false, Ordering::SeqCst);
    let _slot = match slot {
        Ok(slot) => slot,
        Err(stop) => {
            active.update(p, |r| {
                for o in &mut r.objects {
                    o.status = if stop == Stop::Canceled {
                        RunStatus::Canceled
                    } else {
                        RunStatus::Failed
                    };
                    o.error = Some(format!("{stop:?} before it started"));
                }
            })?;
            return finish(shared, group, active, Some(stop));
        }
    };
    let run = active.update(p, |_| {})?;
    let mut stopped = None;
    for (i, object) in run.objects.iter().enumerate() {
        let Some(spec) = group.object(object.object).map(|o| o.spec.clone()) else { continue };
        if run.run_type == RunType::Log && spec.kind != ObjectKind::LogDirectory {
            active.update(p, |r| {
                r.objects[i].status = RunStatus::Skipped;
                r.objects[i].error = Some("a kLog run backs up log directories only".into());
            })?;
            continue;
        }
        let captured = p.now()?;
        let log_range = if run.run_type == RunType::Log {
            let previous = previous_capture(p, group.id, object.object, run.id)?;
            Some(LogRange { from_usecs: previous.unwrap_or(captured), to_usecs: captured })
        } else {
            None
        };
        let opts = BackupOptions {
            kind: if run.run_type == RunType::Full {
                BackupKind::Full
            } else {
                BackupKind::Incremental
            },
            tags: vec![
                format!("group={}", group.id),
                format!("run={}", run.id),
                format!("object={}", object.object),
            ],
            control: Some(Arc::clone(&active.control)),
            progress: Some(Arc::clone(&active.progress)),
            disk_image: spec.kind == ObjectKind::DiskImage,
            append_only: spec.kind == ObjectKind::LogDirectory,
            ..BackupOptions::default()
        };
        let attempts_allowed = run.options.retries + 1;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            active.update(p, |r| r.objects[i].status = RunStatus::Running)?;
            match backup::run(&shared.repo, spec.path(), &opts).map(|snap| {
                // Runs make their snapshots searchable; a snapshot that cannot be indexed is
                // still a good snapshot (`Engine::index_snapshot` can try again).
                let indexed = coldkeep_repo::search::index_snapshot(&shared.repo, &snap);
                (snap, indexed.err().map(|e| format!("not indexed: {e}")))
            }) {
                Err(e @ BackupError::Stopped(_)) => break Err(e),
                Err(e) if attempts < attempts_allowed => {
                    tracing::warn!(run = %run.id, object = %object.object, error = %e, "retrying");
                }
                other => break other,
            }
        };
        active.update(p, |r| {
            let o = &mut r.objects[i];
            o.attempts = attempts;
            match &result {
                Ok((snap, not_indexed)) => {
                    let s = &snap.stats;
                    o.snapshot = Some(snap.id);
                    o.captured_usecs = Some(captured);
                    o.log_range = log_range;
                    o.warnings = snap
                        .warnings
                        .iter()
                        .map(|w| format!("{}: {}", String::from_utf8_lossy(&w.path), w.message))
                        .chain(not_indexed.clone())
                        .collect();
                    o.status = if o.warnings.is_empty() {
                        RunStatus::Succeeded
                    } else {
                        RunStatus::SucceededWithWarning
                    };
                    o.stats = RunStats {
                        files: s.files,
                        bytes_read: s.bytes_read,
                        bytes_new: s.new_bytes,
                        bytes_written: s.stored_bytes,
                        bytes_deduplicated: s.bytes_read.saturating_sub(s.new_bytes),
                    };
                }
                Err(BackupError::Stopped(stop)) => {
                    o.status = if *stop == Stop::Canceled {
                        RunStatus::Canceled
                    } else {
                        RunStatus::Failed
                    };
                    o.error = Some(format!("{stop:?}"));
                }
                Err(e) => {
                    o.status = RunStatus::Failed;
                    o.error = Some(e.to_string());
                }
            }
        })?;
        if let Err(BackupError::Stopped(stop)) = result {
            stopped = Some(stop);
            break;
        }
    }
    finish(shared, group, active, stopped)
}

/// When `object` was last captured by a successful run of `group` other than `this`, if ever.
fn previous_capture(
    p: &Protection,
    group: GroupId,
    object: ObjectId,
    this: RunId,
) -> Result<Option<Usecs>, ProtectError> {
    let runs = p.catalog.scan::<Run>(&group.key())?;
    Ok(runs
        .iter()
        .filter(|r| r.id != this && !r.snapshots_deleted)
        .flat_map(|r| &r.objects)
        .filter(|o| o.object == object && o.status.is_success())
        .filter_map(|o| o.captured_usecs)
        .max())
}

/// The run's final status, and the retention of the snapshots it made.
fn finish(
    shared: &ProtectedRepo,
    group: &ProtectionGroup,
    active: &ActiveRun,
    stopped: Option<Stop>,
) -> Result<(), ProtectError> {
    let p = &shared.protect;
    let run = active.update(p, |r| r.status = RunStatus::Finalizing)?;
    let policy = p.policy(group.policy)?;
    let family = |t: RunType| if t == RunType::Log { RunType::Log } else { RunType::Regular };
    let earlier: Vec<Usecs> = p
        .catalog
        .scan::<Run>(&group.id.key())?
        .iter()
        .filter(|r| {
            r.id != run.id && r.status.is_success() && family(r.run_type) == family(run.run_type)
        })
        .map(|r| r.start_time_usecs)
        .collect();
    let retention = initial_retention(&policy.spec, run.run_type, run.start_time_usecs, &earlier);
    let now = p.now()?;
    let mut failed: Vec<String> = run
        .objects
        .iter()
        .filter(|o| o.status == RunStatus::Failed)
        .map(|o| format!("object {}: {}", o.object, o.error.as_deref().unwrap_or("failed")))
        .collect();
    // The store's own lock goes on before the catalog records the retention that asks for it.
    // Should it fail, the snapshots keep coldkeep's own lock and the run says it failed.
    let locked = crate::store_locks::place(
        &shared.repo,
        &run.objects,
        SnapshotRetention::default(),
        retention,
        now,
    );
    if let Err(e) = &locked {
        failed.push(format!("its snapshots could not be locked in the store: {e}"));
    }
    let done = active.update(p, |r| {
        r.end_time_usecs = Some(now);
        r.retention = retention;
        (r.status, r.message) = match stopped {
            Some(Stop::Canceled) => (RunStatus::Canceled, Some("canceled".into())),
            Some(Stop::TimedOut) => (
                RunStatus::Failed,
                Some(format!(
                    "exceeded its total running time of {} minutes",
                    r.options.total_running_time_mins.unwrap_or(0)
                )),
            ),
            None if !failed.is_empty() => (RunStatus::Failed, Some(failed.join("; "))),
            None if r.objects.iter().all(|o| o.status == RunStatus::Skipped) => {
                (RunStatus::Skipped, Some("no object of this group takes this run type".into()))
            }
            None if r.warnings().next().is_some() => (RunStatus::SucceededWithWarning, None),
            None => (RunStatus::Succeeded, None),
        };
    })?;
    if locked.is_ok() {
        crate::store_locks::after_commit(shared, &[(&done, SnapshotRetention::default())]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use coldkeep_catalog::MemKv;
    use coldkeep_model::{ObjectId, RunOptions};

    #[test]
    fn runs_left_unfinished_by_a_crash_are_failed_with_the_reason() {
        let catalog = Catalog::new(Arc::new(MemKv::new()));
        let p = Protection::new(catalog, Arc::new(ManualClock::new(Usecs(1_000)))).expect("new");
        let object = |status| ObjectRun { status, ..ObjectRun::new(ObjectId::new(1)) };
        let run = |id, status: RunStatus| Run {
            id: RunId::new(id),
            group: GroupId::new(1),
            run_type: RunType::Regular,
            status,
            scheduled_time_usecs: None,
            start_time_usecs: Usecs(10),
            end_time_usecs: None,
            options: RunOptions::default(),
            objects: vec![object(status)],
            message: None,
            retention: SnapshotRetention::default(),
            snapshots_deleted: false,
        };
        for (id, status) in
            [(1, RunStatus::Running), (2, RunStatus::Paused), (3, RunStatus::Succeeded)]
        {
            p.catalog.put(&run(id, status)).expect("put");
        }
        fail_interrupted(&p).expect("recover");
        let runs = p.catalog.scan::<Run>(&[]).expect("scan");
        let statuses: Vec<_> = runs.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [RunStatus::Failed, RunStatus::Failed, RunStatus::Succeeded]);
        assert!(runs[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("while the run was Running")));
        assert!(runs[1].message.as_deref().is_some_and(|m| m.contains("while the run was Paused")));
        assert_eq!(runs[0].objects[0].status, RunStatus::Failed);
        assert_eq!(runs[0].end_time_usecs, Some(Usecs(1_000)));
        assert_eq!(runs[2], run(3, RunStatus::Succeeded), "finished runs are left alone");
    }
}
