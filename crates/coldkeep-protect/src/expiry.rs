//! Expiry, the control plane's half of garbage collection: the snapshots of runs whose
//! retention has ended (no legal hold, no DataLock) are deleted, each run in one batch with its
//! audit entry. Reclaiming the space their chunks held is the data path's half
//! (`coldkeep_repo::gc::reclaim`); [`collect_garbage`] does both, in that order.

use coldkeep_catalog::{Batch, Catalog, CatalogError};
use coldkeep_model::{Principal, Run, Usecs};
use coldkeep_repo::gc::{self, GcError, GcOptions, GcReport};
use coldkeep_retention::is_expired;

use crate::{ProtectedRepo, Protection};

/// Expires what retention lets go, then reclaims the space nothing references any more.
pub fn collect_garbage(shared: &ProtectedRepo, opts: GcOptions) -> Result<GcReport, GcError> {
    let mut report = GcReport::default();
    // Retention time: a wall clock set ahead expires nothing and shortens no grace period.
    let now = shared.protect.retention_now()?;
    expire(&shared.protect, now, &mut report)?;
    gc::reclaim(&shared.repo, now, opts, &mut report)?;
    Ok(report)
}

/// Deletes the snapshots of expired runs and marks the runs.
fn expire(p: &Protection, now: Usecs, report: &mut GcReport) -> Result<(), CatalogError> {
    let _edit = p.edit();
    let gc = Principal::user("gc");
    for mut run in p.catalog.scan::<Run>(&[])? {
        if run.snapshots_deleted || !run.status.is_terminal() || !is_expired(&run.retention, now) {
            continue;
        }
        let snapshots: Vec<_> = run.objects.iter().filter_map(|o| o.snapshot).collect();
        let mut batch = Batch::new();
        let target = format!("group {} run {}", run.group, run.id);
        p.stage_audit(&mut batch, &gc, "expire", &target, &run.retention, &"snapshots deleted")?;
        for id in &snapshots {
            Catalog::stage_delete_snapshot(&mut batch, *id);
        }
        run.snapshots_deleted = true;
        Catalog::stage(&mut batch, &run);
        p.catalog.write(batch)?;
        report.runs_expired += 1;
        report.snapshots_removed += snapshots.len() as u64;
    }
    Ok(())
}
