//! Retention decisions, with no I/O and no clock of their own.
//!
//! * [`initial_retention`]: the expiry and DataLock a new snapshot gets from its policy — its
//!   base retention, and every extended-retention rule that applies (a snapshot is kept until
//!   the latest of them).
//! * [`apply_update`]: the seed's run update (extend / reduce retention, legal hold on / off,
//!   DataLock, delete) under the rules: a held snapshot is never deleted; a Compliance lock is
//!   never reduced, weakened or bypassed by anyone; an Administrative lock only by a principal
//!   with that right.
//! * [`is_expired`]: whether garbage collection may remove a snapshot now.
//! * [`TrustedClock`]: the time every rule above is judged by. It never goes backwards (winding
//!   the system clock back unlocks nothing) and never runs ahead of the real time seen to pass
//!   (setting it forward unlocks nothing either).
//!
//! The engine persists what these functions return (and the clock's high-water mark) and writes
//! the audit log; keeping the rules pure keeps them testable through weeks of simulated time.

use coldkeep_model::{
    ClockState, DataLock, DataLockMode, ExtendedRetention, PolicySpec, Principal, RealTime,
    Retention, RunType, RunUpdate, SnapshotRetention, Usecs, DAY, MINUTE,
};

/// Why an update is refused. Nothing is changed when any part of an update is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the snapshots are under legal hold")]
    LegalHold,
    #[error("the snapshots are under a Compliance DataLock until {until}: nobody can reduce, remove or delete it")]
    ComplianceLock { until: Usecs },
    #[error("the snapshots are under an Administrative DataLock until {until}: {principal} lacks the right to change it")]
    AdministrativeLock { until: Usecs, principal: String },
    #[error("{principal} lacks the right to {action}")]
    NotAllowed { principal: String, action: &'static str },
    #[error("the snapshots have no expiry to lock until")]
    NoExpiry,
    #[error("an update must change something")]
    Empty,
}

/// What an accepted update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub retention: SnapshotRetention,
    /// The snapshots are to be deleted now.
    pub delete: bool,
}

/// The lock still in force at `now`, if any.
fn active_lock(r: &SnapshotRetention, now: Usecs) -> Option<DataLock> {
    r.data_lock.filter(|l| l.until > now)
}

/// The retention of the snapshots of a run of `run_type` started at `start`, under `policy`.
///
/// `earlier` are the start times of the group's earlier successful runs of the same family
/// (regular and full together; log runs are their own family): an extended-retention rule
/// applies when none of them falls in the same period as `start`, i.e. this is the period's first
/// snapshot. Log runs get the log retention and no extended retention.
pub fn initial_retention(
    policy: &PolicySpec,
    run_type: RunType,
    start: Usecs,
    earlier: &[Usecs],
) -> SnapshotRetention {
    let base = match (run_type, &policy.backup.log) {
        (RunType::Log, Some(log)) => log.retention,
        _ => policy.backup.regular.retention,
    };
    let applies = |rule: &ExtendedRetention| {
        let period = |t: Usecs| t.period(rule.every.unit, rule.every.frequency);
        !earlier.iter().any(|t| period(*t) == period(start))
    };
    let rules: Vec<Retention> = if run_type == RunType::Log {
        vec![base]
    } else {
        std::iter::once(base)
            .chain(policy.extended_retention.iter().filter(|r| applies(r)).map(|r| r.retention))
            .collect()
    };
    let expiry = rules.iter().map(|r| r.expiry(start)).max();
    // The strongest lock that applies: the latest end, Compliance if any rule asks for it
    // (erring towards protection: an Administrative period may become Compliance, never the
    // other way).
    let locks: Vec<(DataLockMode, Usecs)> = rules.iter().filter_map(|r| r.lock(start)).collect();
    let data_lock = locks.iter().map(|(_, until)| *until).max().map(|until| DataLock {
        mode: if locks.iter().any(|(m, _)| *m == DataLockMode::Compliance) {
            DataLockMode::Compliance
        } else {
            DataLockMode::Administrative
        },
        until,
    });
    SnapshotRetention { expiry, legal_hold: false, data_lock }
}

/// Checks that `principal` may get past the lock in force to do `action`.
fn past_lock(lock: Option<DataLock>, principal: &Principal) -> Result<(), Refusal> {
    match lock {
        Some(DataLock { mode: DataLockMode::Compliance, until }) => {
            Err(Refusal::ComplianceLock { until })
        }
        Some(DataLock { mode: DataLockMode::Administrative, until })
            if !principal.may_unlock_administrative =>
        {
            Err(Refusal::AdministrativeLock { until, principal: principal.name.clone() })
        }
        _ => Ok(()),
    }
}

/// Applies one run update to the current retention of its snapshots, at trusted time `now`.
///
/// Order within an update: legal hold, retention change, DataLock, delete — so an update that
/// lifts a hold and deletes does both, and one that reduces the retention and locks locks the
/// reduced expiry.
pub fn apply_update(
    current: SnapshotRetention,
    update: &RunUpdate,
    principal: &Principal,
    now: Usecs,
) -> Result<Decision, Refusal> {
    if update.days_to_keep.is_none()
        && update.enable_legal_hold.is_none()
        && update.data_lock.is_none()
        && !update.delete_snapshots
    {
        return Err(Refusal::Empty);
    }
    let mut next = current;
    let lock = active_lock(&current, now);

    if let Some(hold) = update.enable_legal_hold {
        if !principal.may_hold {
            let action = if hold { "place a legal hold" } else { "lift a legal hold" };
            return Err(Refusal::NotAllowed { principal: principal.name.clone(), action });
        }
        next.legal_hold = hold;
    }

    if let Some(days) = update.days_to_keep {
        let delta = days.saturating_mul(DAY);
        if let Some(expiry) = next.expiry {
            let new = Usecs(expiry.0.saturating_add(delta));
            if delta < 0 {
                if let Some(l) = lock.filter(|l| new < l.until) {
                    past_lock(Some(l), principal)?;
                    // An allowed reduction below an Administrative lock shortens the lock too.
                    next.data_lock = Some(DataLock { until: new.max(now), ..l });
                }
            }
            next.expiry = Some(new);
        }
    }

    if let Some(mode) = update.data_lock {
        let until = next.expiry.ok_or(Refusal::NoExpiry)?;
        let weaker = lock.is_some_and(|l| {
            l.mode == DataLockMode::Compliance && mode == DataLockMode::Administrative
        });
        let until = match lock {
            Some(l) if weaker => {
                past_lock(Some(l), principal)?;
                until
            }
            Some(l) => until.max(l.until),
            None => until,
        };
        next.data_lock = Some(DataLock { mode, until });
    }

    if update.delete_snapshots {
        if next.legal_hold {
            return Err(Refusal::LegalHold);
        }
        past_lock(active_lock(&next, now), principal)?;
    }
    Ok(Decision { retention: next, delete: update.delete_snapshots })
}

/// Whether snapshots with this retention may be removed at trusted time `now`: expired, not
/// held, not locked.
pub fn is_expired(r: &SnapshotRetention, now: Usecs) -> bool {
    !r.legal_hold && active_lock(r, now).is_none() && r.expiry.is_some_and(|e| e <= now)
}

/// How far the wall clock may run ahead of the real time measured between two observations
/// before the step is reported (NTP slews and timer granularity stay far below this).
pub const STEP_TOLERANCE: i64 = MINUTE;

/// Retention time may gain on measured real time by 1/64 of it (about 1.6 %, 5.7 days a
/// year): how a retention clock held back by a reboot's unmeasured downtime catches up with a
/// correct wall clock. It bounds how much earlier than by real time a lock can end: never by
/// more than 1/65 of the time it ran.
pub const CATCH_UP_DIVISOR: i64 = 64;

/// The time every rule above is judged by, kept from what a wrong clock could do.
///
/// * `now` (records, schedules) is the latest wall-clock time seen: winding the wall clock back
///   does not move it back.
/// * `retention_now` (expiry, DataLock, grace periods) never goes back either, and advances by
///   at most the real time measured since the last observation (a monotonic reading of the
///   same boot, [`RealTime`]) plus 1/[`CATCH_UP_DIVISOR`] of it, and never past the wall clock.
///   A wall clock set years ahead (a bad RTC, an NTP step, `faketime`) therefore ends no lock
///   and no retention early, in that process or any later one: the future time is never
///   trusted for unlocking. Where real time cannot be measured (the first observation after a
///   reboot, or without a monotonic source) retention time does not advance, so downtime delays
///   expiry — the safe side.
/// * A wall-clock step beyond real time by more than [`STEP_TOLERANCE`] is reported in
///   [`Observation::step`], for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedClock {
    state: ClockState,
}

/// What one observation of the clocks gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Time for records and schedules.
    pub now: Usecs,
    /// Time for retention and locks.
    pub retention_now: Usecs,
    /// A forward step of the wall clock that real time does not account for.
    pub step: Option<ClockStep>,
}

/// A forward step of the wall clock that real time does not account for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ClockStep {
    /// The wall clock at the previous observation and now.
    pub wall_from: Usecs,
    pub wall_to: Usecs,
    /// Real time measured in between, if it could be (not across a reboot).
    pub real_elapsed_usecs: Option<i64>,
    /// The retention time trusted instead of `wall_to`.
    pub retention_now: Usecs,
}

impl TrustedClock {
    /// A clock in the state read back from the catalog.
    pub fn new(state: ClockState) -> Self {
        Self { state }
    }

    /// Observes the wall clock and, where there is one, a reading of real time.
    pub fn observe(&mut self, wall: Usecs, real: Option<RealTime>) -> Observation {
        let s = self.state;
        let elapsed = match (s.last_real, real) {
            (Some(a), Some(b)) if a.origin == b.origin && b.elapsed >= a.elapsed => {
                Some(b.elapsed.0 - a.elapsed.0)
            }
            _ => None,
        };
        // A clock that has never observed anything (a new repository) starts from the wall,
        // and that first reading is no step.
        let fresh = s.retention == Usecs::ZERO;
        let allowance = if fresh {
            i64::MAX
        } else {
            elapsed.map_or(0, |e| e.saturating_add(e / CATCH_UP_DIVISOR))
        };
        let reachable = Usecs(s.retention.0.saturating_add(allowance));
        let retention = s.retention.max(wall.min(reachable));
        let advanced = wall.0.saturating_sub(s.last_wall.0);
        let unexplained = !fresh
            && match elapsed {
                Some(e) => advanced.saturating_sub(e) > STEP_TOLERANCE,
                None => {
                    advanced > STEP_TOLERANCE && wall.0.saturating_sub(retention.0) > STEP_TOLERANCE
                }
            };
        let step = unexplained.then_some(ClockStep {
            wall_from: s.last_wall,
            wall_to: wall,
            real_elapsed_usecs: elapsed,
            retention_now: retention,
        });
        self.state = ClockState {
            high_water: s.high_water.max(wall),
            retention,
            last_wall: wall,
            last_real: real.or(s.last_real),
        };
        Observation { now: self.state.high_water, retention_now: retention, step }
    }

    /// The state to persist.
    pub fn state(&self) -> ClockState {
        self.state
    }
}

#[cfg(test)]
mod tests;
