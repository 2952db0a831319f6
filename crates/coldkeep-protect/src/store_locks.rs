//! Runs' DataLocks and legal holds, placed in the store too (`coldkeep_repo::store_lock`).
//!
//! Which retention asks for a store lock: a **Compliance** DataLock that has not ended becomes
//! the store's retention until the lock's end — nobody may lift a Compliance lock, which is
//! exactly what a COMPLIANCE retention means to the store. An **Administrative** lock does not:
//! an administrator may lift it, and a store retention could not be lifted with it. A **legal
//! hold** becomes the store's legal hold, and is lifted there with the last hold that needs it.
//!
//! Every change of a run's retention passes through here: [`place`] before the catalog commits
//! the change (a run's first retention in `runs::finish`, updates in
//! [`ProtectedRepo::update_runs`]), [`after_commit`] once it has.

use coldkeep_catalog::SnapshotId;
use coldkeep_model::{
    DataLockMode, GroupId, ObjectRun, Principal, Run, RunUpdate, SnapshotRetention, Usecs,
};
use coldkeep_repo::repo::Repository;
use coldkeep_repo::store_lock::StoreLocking;

use crate::{ProtectError, ProtectedRepo};

fn snapshots(objects: &[ObjectRun]) -> Vec<SnapshotId> {
    objects.iter().filter_map(|o| o.snapshot).collect()
}

/// The end of a Compliance lock that is still running at `now`.
fn compliance_until(retention: SnapshotRetention, now: Usecs) -> Option<Usecs> {
    retention
        .data_lock
        .filter(|l| l.mode == DataLockMode::Compliance && l.until > now)
        .map(|l| l.until)
}

/// Locks in the store what `after` asks of the snapshots of `objects` and `before` did not.
pub(crate) fn place(
    repo: &Repository,
    objects: &[ObjectRun],
    before: SnapshotRetention,
    after: SnapshotRetention,
    now: Usecs,
) -> Result<(), ProtectError> {
    let snapshots = snapshots(objects);
    if snapshots.is_empty() {
        return Ok(());
    }
    if let Some(until) = compliance_until(after, now) {
        if compliance_until(before, now).is_none_or(|b| b < until) {
            report(repo.retain_in_store(&snapshots, until.0).map_err(ProtectError::StoreLock)?);
        }
    }
    if after.legal_hold && !before.legal_hold {
        report(repo.hold_in_store(&snapshots).map_err(ProtectError::StoreLock)?);
    }
    Ok(())
}

/// Once changes committed: locks the journal entry that recorded them, and lifts the store's
/// legal hold from what no held run needs any more. Each change is a run as committed and its
/// retention before. The changes stand whatever happens here, so a failure is only logged: it
/// errs on the safe side (the entry is locked by the next lock, which locks the whole journal;
/// a hold not lifted keeps objects longer).
pub(crate) fn after_commit(shared: &ProtectedRepo, changes: &[(&Run, SnapshotRetention)]) {
    if let Err(e) = lock_after_commit(shared, changes) {
        tracing::warn!("committed, but the store's locks are not all updated: {e}");
    }
}

fn lock_after_commit(
    shared: &ProtectedRepo,
    changes: &[(&Run, SnapshotRetention)],
) -> Result<(), ProtectError> {
    let now = shared.protect.now()?;
    let repo = &shared.repo;
    for (run, _) in changes {
        if let Some(until) = compliance_until(run.retention, now) {
            if !run.snapshots_deleted {
                repo.retain_journal_in_store(until.0).map_err(ProtectError::StoreLock)?;
            }
        }
        if run.retention.legal_hold && !run.snapshots_deleted {
            repo.hold_journal_in_store().map_err(ProtectError::StoreLock)?;
        }
    }
    let released: Vec<SnapshotId> = changes
        .iter()
        .filter(|(run, before)| {
            before.legal_hold && (!run.retention.legal_hold || run.snapshots_deleted)
        })
        .flat_map(|(run, _)| snapshots(&run.objects))
        .collect();
    if !released.is_empty() {
        let held: Vec<SnapshotId> = shared
            .protect
            .catalog
            .scan::<Run>(&[])?
            .iter()
            .filter(|r| r.retention.legal_hold && !r.snapshots_deleted)
            .flat_map(|r| snapshots(&r.objects))
            .collect();
        report(repo.release_in_store(&released, &held).map_err(ProtectError::StoreLock)?);
    }
    Ok(())
}

fn report(done: StoreLocking) {
    if done == StoreLocking::Unsupported {
        tracing::debug!("the store has no lock of its own: coldkeep's rules alone protect");
    }
}

impl ProtectedRepo {
    /// Changes the retention of runs' snapshots, places or lifts legal holds, locks, deletes
    /// (the seed's `PUT /protection-groups/{id}/runs`). All or nothing: if any update is
    /// refused, none is applied; if the store cannot lock what an update asks, none is either.
    /// Every applied update is in the audit log.
    pub fn update_runs(
        &self,
        group: GroupId,
        updates: &[RunUpdate],
        principal: &Principal,
    ) -> Result<Vec<Run>, ProtectError> {
        let changed = self.protect.update_runs(group, updates, principal, &|changes, now| {
            for (run, before) in changes {
                if !run.snapshots_deleted {
                    place(&self.repo, &run.objects, *before, run.retention, now)?;
                }
            }
            Ok(())
        })?;
        let committed: Vec<(&Run, SnapshotRetention)> =
            changed.iter().map(|(run, before)| (run, *before)).collect();
        after_commit(self, &committed);
        Ok(changed.into_iter().map(|(run, _)| run).collect())
    }
}
