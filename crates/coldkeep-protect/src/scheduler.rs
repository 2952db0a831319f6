//! The scheduler loop: at each tick, every live group's due slots are decided
//! ([`coldkeep_schedule::decide`]) and carried out — runs started, missed runs recorded, slots
//! consumed — and running runs of groups that abort in blackouts are canceled.
//!
//! A tick is driven by the caller (`Engine::tick`), by a host's timer or a
//! test's fake clock; the engine does not spawn a timer of its own, so a program embedding it
//! decides when (and whether) scheduling happens.

use std::sync::Arc;

use coldkeep_catalog::{Batch, Catalog, Counter};
use coldkeep_model::{
    GroupId, ProtectionGroup, Run, RunId, RunRequest, RunStatus, RunType, SnapshotRetention, Usecs,
};
use coldkeep_schedule::{anchor, decide, in_blackout, Decision, GroupState};

use crate::ProtectError;
use crate::ProtectedRepo;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub now: Usecs,
    /// Runs started, with the slot each was started for.
    pub started: Vec<(GroupId, RunId, RunType, Usecs)>,
    /// Slots whose run could not start because the group's previous run was still going; each
    /// is recorded as a run with status `Missed`.
    pub missed: Vec<(GroupId, RunId, RunType, Usecs)>,
    /// Slots that fell in a blackout window: nothing started.
    pub blacked_out: Vec<(GroupId, RunType, Usecs)>,
    /// Runs canceled because a blackout window began (groups with `abort_in_blackouts`).
    pub aborted: Vec<(GroupId, RunId)>,
}

pub fn tick(shared: &Arc<ProtectedRepo>) -> Result<TickReport, ProtectError> {
    let p = &shared.protect;
    let now = p.now()?;
    let mut report = TickReport { now, ..TickReport::default() };
    for group in p.catalog.scan::<ProtectionGroup>(&[])?.into_iter().filter(|g| !g.is_deleted) {
        let policy = p.policy(group.policy)?;
        let running = p.unfinished_run(group.id)?;
        if let Some(run) = &running {
            if group.abort_in_blackouts && in_blackout(&policy.spec.blackout_windows, now) {
                let cancel = p.control_run(
                    group.id,
                    run.id,
                    coldkeep_repo::control::Control::cancel,
                    Some(RunStatus::Canceling),
                );
                if cancel.is_ok() {
                    report.aborted.push((group.id, run.id));
                }
            }
        }
        let state = GroupState {
            anchor: anchor(group.creation_time_usecs, group.start_time),
            not_before: group.creation_time_usecs,
            paused: group.is_paused || !group.is_active,
            running: running.is_some(),
        };
        let mut last = Vec::new();
        for run_type in RunType::ALL {
            last.push((run_type, p.catalog.schedule_slot(group.id, run_type)?));
        }
        let last_slot = |t: RunType| last.iter().find(|(rt, _)| *rt == t).and_then(|(_, s)| *s);
        for decision in decide(&policy.spec, state, last_slot, now) {
            carry_out(shared, &group, decision, running.as_ref().map(|r| r.id), now, &mut report)?;
        }
    }
    Ok(report)
}

fn carry_out(
    shared: &Arc<ProtectedRepo>,
    group: &ProtectionGroup,
    decision: Decision,
    running: Option<RunId>,
    now: Usecs,
    report: &mut TickReport,
) -> Result<(), ProtectError> {
    let p = &shared.protect;
    let (run_type, slot) = (decision.run_type(), decision.slot());
    let mut batch = Batch::new();
    Catalog::stage_schedule_slot(&mut batch, group.id, run_type, slot);
    match decision {
        Decision::Start { .. } => {
            // The slot is consumed first: a crash between the two loses the slot, never runs
            // it twice.
            p.catalog.write(batch)?;
            let mut request = RunRequest::new(run_type);
            request.options.priority = group.priority;
            let run = crate::runs::start_run(shared, group.id, request, Some(slot))?;
            report.started.push((group.id, run.id, run_type, slot));
            return Ok(());
        }
        Decision::Missed { .. } => {
            let id = RunId::new(p.catalog.allocate(Counter::Run)?);
            let message = match running {
                Some(r) => format!("the previous run {r} was still running at {slot}"),
                None => format!("another run started for the same slot {slot}"),
            };
            let run = Run {
                id,
                group: group.id,
                run_type,
                status: RunStatus::Missed,
                scheduled_time_usecs: Some(slot),
                start_time_usecs: now,
                end_time_usecs: Some(now),
                options: coldkeep_model::RunOptions::default(),
                objects: vec![],
                message: Some(message),
                retention: SnapshotRetention::default(),
                snapshots_deleted: false,
            };
            Catalog::stage(&mut batch, &run);
            report.missed.push((group.id, id, run_type, slot));
        }
        Decision::Blackout { .. } => report.blacked_out.push((group.id, run_type, slot)),
        Decision::Paused { .. } | Decision::Superseded { .. } => {}
    }
    Ok(p.catalog.write(batch)?)
}
