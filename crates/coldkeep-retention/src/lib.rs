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
//! * [`TrustedClock`]: the time every rule above is judged by. It never goes backwards: winding
//!   the system clock back does not unlock anything.
//!
//! The engine persists what these functions return (and the clock's high-water mark) and writes
//! the audit log; keeping the rules pure keeps them testable through weeks of simulated time.

use coldkeep_model::{
    DataLock, DataLockMode, ExtendedRetention, PolicySpec, Principal, Retention, RunType,
    RunUpdate, SnapshotRetention, Usecs, DAY,
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

/// A clock that never goes backwards: the latest time it has seen, persisted by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedClock {
    high_water: Usecs,
}

impl TrustedClock {
    /// A clock that has already seen `high_water` (read back from the catalog).
    pub fn new(high_water: Usecs) -> Self {
        Self { high_water }
    }

    /// The trusted time given the system's `now`: `now`, unless the system clock is behind a
    /// time already seen, in which case that time.
    pub fn observe(&mut self, system_now: Usecs) -> Usecs {
        self.high_water = self.high_water.max(system_now);
        self.high_water
    }

    /// The latest time seen, to persist.
    pub fn high_water(&self) -> Usecs {
        self.high_water
    }
}

#[cfg(test)]
mod tests;
