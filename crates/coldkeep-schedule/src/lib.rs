//! Scheduling decisions, with no I/O and no clock of their own.
//!
//! A schedule "every N units" has *slots*: instants `anchor + k·N units` (k ≥ 0), where the
//! anchor is the group's start time of day on the day the group was created. Months step by
//! calendar months (the day of the month clamps: a group anchored on the 31st runs on Feb 28).
//!
//! [`decide`] looks at one group at time `now`: for each run type whose latest slot is newer than
//! the last slot already handled, the slot is *due*, and becomes exactly one [`Decision`]:
//! * `Start` — nothing else is running and no blackout window covers `now`;
//! * `Missed` — the group's previous run is still going (the seed's definition of `Missed`);
//! * `Blackout` — a blackout window of the policy covers `now`: no new run is started;
//! * `Paused` — the group is paused or inactive;
//! * `Superseded` — an incremental slot due with a full one, which covers it.
//!
//! Only the latest slot counts: after a long pause or downtime, one run starts, not a backlog.
//! When a full and an incremental slot fall due together the full run wins and the incremental
//! slot is consumed by it. The engine persists each run type's last handled slot, so a restart
//! neither repeats nor loses a slot.

use coldkeep_model::{
    BlackoutWindow, PolicySpec, RunType, Schedule, TimeOfDay, TimeUnit, Usecs, DAY, MINUTE,
};

/// What to do about one due slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Start {
        run_type: RunType,
        slot: Usecs,
    },
    Missed {
        run_type: RunType,
        slot: Usecs,
    },
    Blackout {
        run_type: RunType,
        slot: Usecs,
    },
    Paused {
        run_type: RunType,
        slot: Usecs,
    },
    /// An incremental slot due together with a full one: the full run covers it.
    Superseded {
        slot: Usecs,
    },
}

impl Decision {
    pub fn run_type(&self) -> RunType {
        match *self {
            Self::Start { run_type, .. }
            | Self::Missed { run_type, .. }
            | Self::Blackout { run_type, .. }
            | Self::Paused { run_type, .. } => run_type,
            Self::Superseded { .. } => RunType::Regular,
        }
    }

    /// The slot this decision consumes.
    pub fn slot(&self) -> Usecs {
        match *self {
            Self::Start { slot, .. }
            | Self::Missed { slot, .. }
            | Self::Blackout { slot, .. }
            | Self::Paused { slot, .. }
            | Self::Superseded { slot } => slot,
        }
    }
}

/// What [`decide`] needs to know about a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupState {
    /// The first slot: the group's start time of day on its creation day ([`anchor`]).
    pub anchor: Usecs,
    /// Slots at or before this are not due (the group's creation time, so that creating a group
    /// at 10:00 with a 02:00 start time does not run at once).
    pub not_before: Usecs,
    /// Paused or inactive: due slots are consumed without starting anything.
    pub paused: bool,
    /// A run of the group is in progress.
    pub running: bool,
}

/// The anchor of a group created at `created` with start time `start`.
pub fn anchor(created: Usecs, start: TimeOfDay) -> Usecs {
    Usecs(created.start_of_day().0 + start.minutes() * MINUTE)
}

/// The latest slot of `schedule` at or before `now`, or `None` before the anchor.
pub fn latest_slot(schedule: Schedule, anchor: Usecs, now: Usecs) -> Option<Usecs> {
    if now < anchor || schedule.frequency == 0 {
        return None;
    }
    let n = schedule.frequency;
    let fixed = |step: i64| {
        let step = step * i64::from(n);
        Usecs(anchor.0 + (now.0 - anchor.0) / step * step)
    };
    Some(match schedule.unit {
        TimeUnit::Minutes => fixed(MINUTE),
        TimeUnit::Hours => fixed(60 * MINUTE),
        TimeUnit::Days => fixed(DAY),
        TimeUnit::Weeks => fixed(7 * DAY),
        TimeUnit::Months | TimeUnit::Years => {
            let months_per_step = if schedule.unit == TimeUnit::Years { 12 * n } else { n };
            let months =
                (now.period(TimeUnit::Months, 1) - anchor.period(TimeUnit::Months, 1)).max(0);
            // Estimate the step count by calendar months, then step back while past `now`.
            let mut k = (months / i64::from(months_per_step)) as u32;
            loop {
                let slot = anchor.plus(TimeUnit::Months, k * months_per_step);
                if slot <= now || k == 0 {
                    break slot;
                }
                k -= 1;
            }
        }
    })
}

/// Whether a blackout window covers `t`.
pub fn in_blackout(windows: &[BlackoutWindow], t: Usecs) -> bool {
    let minute = t.minute_of_day();
    let yesterday = Usecs(t.0 - DAY).weekday();
    windows.iter().any(|w| {
        let (start, end) = (w.start.minutes(), w.end.minutes());
        if start <= end {
            w.day == t.weekday() && (start..end).contains(&minute)
        } else {
            // Runs past midnight: the evening of its day, or the morning after.
            (w.day == t.weekday() && minute >= start) || (w.day == yesterday && minute < end)
        }
    })
}

/// The schedule of each run type in `policy`, full first (it wins a tie).
fn schedules(policy: &PolicySpec) -> impl Iterator<Item = (RunType, Schedule)> + '_ {
    let regular = &policy.backup.regular;
    [
        regular.full.map(|s| (RunType::Full, s)),
        regular.incremental.map(|s| (RunType::Regular, s)),
        policy.backup.log.map(|l| (RunType::Log, l.schedule)),
    ]
    .into_iter()
    .flatten()
}

/// The decisions for one group at `now`. `last_slot(run_type)` is the last slot already handled
/// for that run type. At most one `Start` is returned (a group runs one run at a time).
pub fn decide(
    policy: &PolicySpec,
    group: GroupState,
    last_slot: impl Fn(RunType) -> Option<Usecs>,
    now: Usecs,
) -> Vec<Decision> {
    let mut out: Vec<Decision> = Vec::new();
    let mut started = group.running;
    let mut regular_slot_taken_by_full = false;
    for (run_type, schedule) in schedules(policy) {
        let Some(slot) = latest_slot(schedule, group.anchor, now) else { continue };
        let handled = last_slot(run_type).unwrap_or(group.not_before).max(group.not_before);
        if slot <= handled {
            continue;
        }
        let decision = if group.paused {
            Decision::Paused { run_type, slot }
        } else if in_blackout(&policy.blackout_windows, now) {
            Decision::Blackout { run_type, slot }
        } else if run_type == RunType::Regular && regular_slot_taken_by_full {
            Decision::Superseded { slot }
        } else if started {
            Decision::Missed { run_type, slot }
        } else {
            started = true;
            regular_slot_taken_by_full = run_type == RunType::Full;
            Decision::Start { run_type, slot }
        };
        out.push(decision);
    }
    out
}

#[cfg(test)]
mod tests;
