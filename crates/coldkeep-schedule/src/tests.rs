use coldkeep_model::{LogBackup, Retention, Weekday};

use super::*;

fn at(y: i64, m: u32, d: u32, h: u8, min: u8) -> Usecs {
    Usecs::from_civil(y, m, d, TimeOfDay::new(h, min).expect("time")).expect("date")
}

fn every(unit: TimeUnit, frequency: u32) -> Schedule {
    Schedule { unit, frequency }
}

fn policy(
    incremental: Option<Schedule>,
    full: Option<Schedule>,
    log: Option<Schedule>,
) -> PolicySpec {
    let mut p = PolicySpec::incremental("p", every(TimeUnit::Days, 1), Retention::days(7));
    p.backup.regular.incremental = incremental;
    p.backup.regular.full = full;
    p.backup.log = log.map(|schedule| LogBackup { schedule, retention: Retention::days(1) });
    p
}

#[test]
fn slots_step_from_the_anchor() {
    let anchor = at(2026, 1, 31, 2, 0);
    let now = at(2026, 3, 15, 13, 7);
    assert_eq!(
        latest_slot(every(TimeUnit::Minutes, 15), anchor, now),
        Some(at(2026, 3, 15, 13, 0))
    );
    assert_eq!(latest_slot(every(TimeUnit::Hours, 4), anchor, now), Some(at(2026, 3, 15, 10, 0)));
    assert_eq!(latest_slot(every(TimeUnit::Days, 1), anchor, now), Some(at(2026, 3, 15, 2, 0)));
    assert_eq!(
        latest_slot(every(TimeUnit::Days, 1), anchor, at(2026, 3, 15, 1, 0)),
        Some(at(2026, 3, 14, 2, 0))
    );
    // 2026-01-31 is a Saturday: weekly slots are Saturdays.
    assert_eq!(latest_slot(every(TimeUnit::Weeks, 1), anchor, now), Some(at(2026, 3, 14, 2, 0)));
    assert_eq!(latest_slot(every(TimeUnit::Weeks, 2), anchor, now), Some(at(2026, 3, 14, 2, 0)));
    assert_eq!(latest_slot(every(TimeUnit::Weeks, 3), anchor, now), Some(at(2026, 3, 14, 2, 0)));
    assert_eq!(latest_slot(every(TimeUnit::Weeks, 4), anchor, now), Some(at(2026, 2, 28, 2, 0)));
    // Monthly from the 31st clamps: Feb 28, then Mar 31.
    assert_eq!(latest_slot(every(TimeUnit::Months, 1), anchor, now), Some(at(2026, 2, 28, 2, 0)));
    assert_eq!(
        latest_slot(every(TimeUnit::Months, 1), anchor, at(2026, 3, 31, 2, 0)),
        Some(at(2026, 3, 31, 2, 0))
    );
    assert_eq!(
        latest_slot(every(TimeUnit::Months, 1), anchor, at(2026, 3, 31, 1, 59)),
        Some(at(2026, 2, 28, 2, 0))
    );
    assert_eq!(latest_slot(every(TimeUnit::Days, 1), anchor, at(2026, 1, 31, 1, 0)), None);
}

#[test]
fn blackout_windows_cover_their_hours_including_past_midnight() {
    let windows = [
        BlackoutWindow {
            day: Weekday::Monday,
            start: TimeOfDay::new(9, 0).expect("t"),
            end: TimeOfDay::new(17, 0).expect("t"),
        },
        BlackoutWindow {
            day: Weekday::Friday,
            start: TimeOfDay::new(22, 0).expect("t"),
            end: TimeOfDay::new(2, 0).expect("t"),
        },
    ];
    // 2026-11-23 is a Monday, 2026-11-27 a Friday.
    assert!(in_blackout(&windows, at(2026, 11, 23, 9, 0)));
    assert!(in_blackout(&windows, at(2026, 11, 23, 16, 59)));
    assert!(!in_blackout(&windows, at(2026, 11, 23, 17, 0)));
    assert!(!in_blackout(&windows, at(2026, 11, 24, 10, 0)), "Tuesday is free");
    assert!(in_blackout(&windows, at(2026, 11, 27, 23, 0)));
    assert!(in_blackout(&windows, at(2026, 11, 28, 1, 59)), "Friday's window runs into Saturday");
    assert!(!in_blackout(&windows, at(2026, 11, 28, 2, 0)));
    assert!(!in_blackout(&windows, at(2026, 11, 27, 1, 0)), "not Thursday night");
}

fn state(anchor: Usecs) -> GroupState {
    GroupState { anchor, not_before: anchor, paused: false, running: false }
}

#[test]
fn a_due_slot_starts_misses_blacks_out_or_is_paused() {
    let p = policy(Some(every(TimeUnit::Hours, 1)), None, None);
    let anchor = at(2026, 11, 23, 0, 0);
    let now = at(2026, 11, 23, 5, 10);
    let slot = at(2026, 11, 23, 5, 0);
    let none = |_| None;
    assert_eq!(
        decide(&p, state(anchor), none, now),
        vec![Decision::Start { run_type: RunType::Regular, slot }]
    );
    assert_eq!(decide(&p, state(anchor), |_| Some(slot), now), vec![], "already handled");
    let running = GroupState { running: true, ..state(anchor) };
    assert_eq!(
        decide(&p, running, none, now),
        vec![Decision::Missed { run_type: RunType::Regular, slot }]
    );
    let paused = GroupState { paused: true, ..state(anchor) };
    assert_eq!(
        decide(&p, paused, none, now),
        vec![Decision::Paused { run_type: RunType::Regular, slot }]
    );
    let mut dark = p.clone();
    dark.blackout_windows = vec![BlackoutWindow {
        day: Weekday::Monday,
        start: TimeOfDay::new(5, 0).expect("t"),
        end: TimeOfDay::new(6, 0).expect("t"),
    }];
    assert_eq!(
        decide(&dark, state(anchor), none, now),
        vec![Decision::Blackout { run_type: RunType::Regular, slot }]
    );
}

#[test]
fn nothing_is_due_before_the_group_existed() {
    let p = policy(Some(every(TimeUnit::Days, 1)), None, None);
    let created = at(2026, 11, 23, 10, 0);
    let group = GroupState {
        anchor: anchor(created, TimeOfDay::new(2, 0).expect("t")),
        not_before: created,
        paused: false,
        running: false,
    };
    assert_eq!(decide(&p, group, |_| None, at(2026, 11, 23, 23, 0)), vec![]);
    let next = at(2026, 11, 24, 2, 0);
    assert_eq!(
        decide(&p, group, |_| None, next),
        vec![Decision::Start { run_type: RunType::Regular, slot: next }]
    );
}

#[test]
fn a_full_slot_supersedes_the_incremental_one_and_logs_wait_their_turn() {
    let p = policy(
        Some(every(TimeUnit::Days, 1)),
        Some(every(TimeUnit::Weeks, 1)),
        Some(every(TimeUnit::Hours, 1)),
    );
    let anchor = at(2026, 11, 22, 0, 0);
    let now = at(2026, 11, 29, 0, 5);
    let slot = at(2026, 11, 29, 0, 0);
    assert_eq!(
        decide(&p, state(anchor), |_| None, now),
        vec![
            Decision::Start { run_type: RunType::Full, slot },
            Decision::Superseded { slot },
            Decision::Missed { run_type: RunType::Log, slot },
        ]
    );
}

/// A fake clock ticking every 5 minutes through four weeks of an hourly incremental, daily full
/// policy with a nightly blackout: every slot is decided exactly once, and the counts add up.
#[test]
fn four_weeks_of_ticks_decide_every_slot_once() {
    let mut p = policy(Some(every(TimeUnit::Hours, 1)), Some(every(TimeUnit::Days, 1)), None);
    p.blackout_windows = Weekday::ALL
        .iter()
        .map(|&day| BlackoutWindow {
            day,
            start: TimeOfDay::new(1, 0).expect("t"),
            end: TimeOfDay::new(3, 0).expect("t"),
        })
        .collect();
    let anchor = at(2026, 11, 1, 0, 0);
    let group =
        GroupState { anchor, not_before: Usecs(anchor.0 - 1), paused: false, running: false };
    let mut last = std::collections::HashMap::new();
    let mut seen = Vec::new();
    let mut now = anchor;
    while now < at(2026, 11, 29, 0, 0) {
        for d in decide(&p, group, |t| last.get(&t).copied(), now) {
            last.insert(d.run_type(), d.slot());
            seen.push(d);
        }
        now = Usecs(now.0 + 5 * MINUTE);
    }
    let count = |f: &dyn Fn(&Decision) -> bool| seen.iter().filter(|d| f(d)).count();
    let days = 28;
    assert_eq!(count(&|d| matches!(d, Decision::Start { run_type: RunType::Full, .. })), days);
    assert_eq!(count(&|d| matches!(d, Decision::Superseded { .. })), days);
    assert_eq!(
        count(&|d| matches!(d, Decision::Blackout { .. })),
        days * 2,
        "01:00 and 02:00 each night"
    );
    assert_eq!(
        count(&|d| matches!(d, Decision::Start { run_type: RunType::Regular, .. })),
        days * 21
    );
    // Every slot once: the total is every hour of four weeks plus the daily full slots.
    assert_eq!(seen.len(), days * 24 + days);
}
