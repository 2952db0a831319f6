use coldkeep_model::{DataLockConfig, LogBackup, Schedule, TimeOfDay, TimeUnit, HOUR};
use proptest::prelude::*;

use super::*;

fn at(y: i64, m: u32, d: u32) -> Usecs {
    Usecs::from_civil(y, m, d, TimeOfDay::new(2, 0).expect("time")).expect("date")
}

fn policy(lock: Option<DataLockConfig>) -> PolicySpec {
    let retention = Retention { unit: TimeUnit::Days, duration: 7, data_lock: lock };
    let mut p =
        PolicySpec::incremental("p", Schedule { unit: TimeUnit::Days, frequency: 1 }, retention);
    p.backup.regular.full = Some(Schedule { unit: TimeUnit::Weeks, frequency: 1 });
    p.backup.log = Some(LogBackup {
        schedule: Schedule { unit: TimeUnit::Hours, frequency: 1 },
        retention: Retention::days(2),
    });
    p.extended_retention = vec![
        ExtendedRetention {
            every: Schedule { unit: TimeUnit::Weeks, frequency: 1 },
            retention: Retention { unit: TimeUnit::Weeks, duration: 4, data_lock: None },
        },
        ExtendedRetention {
            every: Schedule { unit: TimeUnit::Months, frequency: 1 },
            retention: Retention { unit: TimeUnit::Years, duration: 1, data_lock: None },
        },
    ];
    p
}

fn locked(mode: DataLockMode, until: Usecs) -> SnapshotRetention {
    SnapshotRetention {
        expiry: Some(until),
        legal_hold: false,
        data_lock: Some(DataLock { mode, until }),
    }
}

fn update() -> RunUpdate {
    RunUpdate::default()
}

#[test]
fn a_snapshot_is_kept_until_the_latest_rule_that_applies() {
    let p = policy(None);
    // Sunday 2026-11-01: first of the month and of the week → one year.
    let first = at(2026, 11, 1);
    let r = initial_retention(&p, RunType::Regular, first, &[]);
    assert_eq!(r.expiry, Some(at(2027, 11, 1)));
    // Monday: same week and month as an earlier success → base retention only.
    let monday = at(2026, 11, 2);
    assert_eq!(
        initial_retention(&p, RunType::Regular, monday, &[first]).expiry,
        Some(at(2026, 11, 9))
    );
    // Next Sunday: first of a new week, same month → four weeks.
    let sunday = at(2026, 11, 8);
    let r = initial_retention(&p, RunType::Full, sunday, &[first, monday]);
    assert_eq!(r.expiry, Some(at(2026, 12, 6)));
    // Log runs keep the log retention, whatever the extended rules.
    assert_eq!(initial_retention(&p, RunType::Log, first, &[]).expiry, Some(at(2026, 11, 3)));
    assert_eq!(r.data_lock, None);
}

#[test]
fn the_policy_lock_is_applied_from_the_start() {
    let lock = DataLockConfig { mode: DataLockMode::Compliance, unit: TimeUnit::Days, duration: 5 };
    let r = initial_retention(
        &policy(Some(lock)),
        RunType::Regular,
        at(2026, 11, 2),
        &[at(2026, 11, 1)],
    );
    assert_eq!(
        r.data_lock,
        Some(DataLock { mode: DataLockMode::Compliance, until: at(2026, 11, 7) })
    );
}

#[test]
fn retention_extends_and_reduces_by_days() {
    let now = at(2026, 1, 1);
    let r = SnapshotRetention { expiry: Some(at(2026, 1, 10)), ..Default::default() };
    let u = RunUpdate { days_to_keep: Some(5), ..update() };
    let d = apply_update(r, &u, &Principal::user("u"), now).expect("extend");
    assert_eq!(d.retention.expiry, Some(at(2026, 1, 15)));
    let u = RunUpdate { days_to_keep: Some(-8), ..update() };
    let d = apply_update(r, &u, &Principal::user("u"), now).expect("reduce");
    assert_eq!(d.retention.expiry, Some(at(2026, 1, 2)));
    assert!(!d.delete);
    assert_eq!(apply_update(r, &update(), &Principal::admin("a"), now), Err(Refusal::Empty));
}

#[test]
fn legal_hold_needs_the_right_and_blocks_deletion_and_expiry() {
    let now = at(2026, 1, 1);
    let r = SnapshotRetention { expiry: Some(at(2025, 12, 1)), ..Default::default() };
    let place_hold = RunUpdate { enable_legal_hold: Some(true), ..update() };
    assert!(matches!(
        apply_update(r, &place_hold, &Principal::user("u"), now),
        Err(Refusal::NotAllowed { .. })
    ));
    let on_hold =
        apply_update(r, &place_hold, &Principal::admin("dso"), now).expect("hold").retention;
    assert!(on_hold.legal_hold);
    assert!(!is_expired(&on_hold, now), "an expired snapshot under hold is kept");
    assert!(is_expired(&r, now));
    let delete = RunUpdate { delete_snapshots: true, ..update() };
    assert_eq!(
        apply_update(on_hold, &delete, &Principal::admin("dso"), now),
        Err(Refusal::LegalHold)
    );
    let lift_and_delete =
        RunUpdate { enable_legal_hold: Some(false), delete_snapshots: true, ..update() };
    let d = apply_update(on_hold, &lift_and_delete, &Principal::admin("dso"), now)
        .expect("lift, delete");
    assert!(d.delete && !d.retention.legal_hold);
}

#[test]
fn nobody_reduces_removes_weakens_or_bypasses_a_compliance_lock() {
    let now = at(2026, 1, 1);
    let r = locked(DataLockMode::Compliance, at(2026, 6, 1));
    for who in [Principal::user("u"), Principal::admin("root")] {
        for u in [
            RunUpdate { days_to_keep: Some(-1), ..update() },
            RunUpdate { delete_snapshots: true, ..update() },
            RunUpdate { data_lock: Some(DataLockMode::Administrative), ..update() },
        ] {
            assert_eq!(
                apply_update(r, &u, &who, now),
                Err(Refusal::ComplianceLock { until: at(2026, 6, 1) }),
                "{u:?} by {who}"
            );
        }
        assert!(!is_expired(&r, at(2026, 5, 31)));
    }
    // Extending is always allowed, and the lock holds.
    let d = apply_update(
        r,
        &RunUpdate { days_to_keep: Some(30), ..update() },
        &Principal::user("u"),
        now,
    )
    .expect("extend");
    assert_eq!(d.retention.data_lock, r.data_lock);
    // Once the lock has ended, the snapshots can go.
    let later = at(2026, 6, 2);
    let delete = RunUpdate { delete_snapshots: true, ..update() };
    assert!(apply_update(r, &delete, &Principal::user("u"), later).expect("after the lock").delete);
}

#[test]
fn an_administrative_lock_yields_only_to_the_right() {
    let now = at(2026, 1, 1);
    let r = locked(DataLockMode::Administrative, at(2026, 6, 1));
    let reduce = RunUpdate { days_to_keep: Some(-100), ..update() };
    assert!(matches!(
        apply_update(r, &reduce, &Principal::user("u"), now),
        Err(Refusal::AdministrativeLock { .. })
    ));
    let d = apply_update(r, &reduce, &Principal::admin("a"), now).expect("admin reduces");
    let new_expiry = Usecs(at(2026, 6, 1).0 - 100 * DAY);
    assert_eq!(d.retention.expiry, Some(new_expiry));
    assert_eq!(d.retention.data_lock.map(|l| l.until), Some(new_expiry));
    let delete = RunUpdate { delete_snapshots: true, ..update() };
    assert!(apply_update(r, &delete, &Principal::user("u"), now).is_err());
    assert!(apply_update(r, &delete, &Principal::admin("a"), now).expect("admin deletes").delete);
}

#[test]
fn locking_needs_an_expiry_and_never_shortens_a_lock() {
    let now = at(2026, 1, 1);
    let forever = SnapshotRetention::default();
    let lock = RunUpdate { data_lock: Some(DataLockMode::Compliance), ..update() };
    assert_eq!(apply_update(forever, &lock, &Principal::user("u"), now), Err(Refusal::NoExpiry));
    let r = SnapshotRetention { expiry: Some(at(2026, 2, 1)), ..Default::default() };
    let d = apply_update(r, &lock, &Principal::user("u"), now).expect("lock");
    assert_eq!(
        d.retention.data_lock,
        Some(DataLock { mode: DataLockMode::Compliance, until: at(2026, 2, 1) })
    );
}

/// A clock that has seen only `t`, and a real-time reading `real` µs after the origin.
fn clock_at(t: Usecs) -> TrustedClock {
    TrustedClock::new(ClockState::starting_at(t))
}

#[allow(clippy::unnecessary_wraps)] // observe takes an Option
fn real(elapsed: i64) -> Option<RealTime> {
    Some(RealTime { origin: 7, elapsed: Usecs(elapsed) })
}

#[test]
fn winding_the_clock_back_unlocks_nothing() {
    let r = locked(DataLockMode::Compliance, at(2026, 6, 1));
    let mut clock = clock_at(at(2026, 7, 1));
    assert_eq!(clock.observe(at(2026, 7, 1), real(0)).now, at(2026, 7, 1));
    // The system clock is wound back into the locked period: trusted time stays where it was.
    let seen = clock.observe(at(2026, 3, 1), real(DAY));
    assert_eq!((seen.now, seen.retention_now), (at(2026, 7, 1), at(2026, 7, 1)));
    assert_eq!(seen.step, None);
    // And the other way round: a clock that has only seen the locked period keeps the lock.
    let mut clock = clock_at(at(2026, 3, 1));
    let delete = RunUpdate { delete_snapshots: true, ..update() };
    let now = clock.observe(at(2026, 1, 1), real(0)).retention_now;
    assert!(apply_update(r, &delete, &Principal::admin("a"), now).is_err());
}

#[test]
fn setting_the_clock_forward_unlocks_nothing() {
    let until = at(2026, 3, 8);
    let r = locked(DataLockMode::Compliance, until);
    let mut clock = clock_at(at(2026, 3, 1));
    clock.observe(at(2026, 3, 1), real(HOUR));
    // One reading years ahead, one hour of real time later: records see the wall clock, the
    // lock does not move past the hour (and its catch-up allowance), and the step is reported.
    let seen = clock.observe(at(2031, 3, 1), real(2 * HOUR));
    assert_eq!(seen.now, at(2031, 3, 1));
    assert_eq!(seen.retention_now, Usecs(at(2026, 3, 1).0 + HOUR + HOUR / CATCH_UP_DIVISOR));
    let step = seen.step.expect("a step is reported");
    assert_eq!(
        (step.wall_from, step.wall_to, step.real_elapsed_usecs),
        (at(2026, 3, 1), at(2031, 3, 1), Some(HOUR))
    );
    let delete = RunUpdate { delete_snapshots: true, ..update() };
    assert!(apply_update(r, &delete, &Principal::admin("a"), seen.retention_now).is_err());
    assert!(!is_expired(&r, seen.retention_now));
    // A restart (another boot: real time since the last reading unknown) trusts nothing new.
    let mut restarted = TrustedClock::new(clock.state());
    let after = restarted.observe(at(2031, 3, 2), Some(RealTime { origin: 8, elapsed: Usecs(0) }));
    assert_eq!(after.retention_now, seen.retention_now);
    assert!(after.step.is_some(), "an unmeasured jump is reported too");
    // The wall clock is corrected; the lock ends when real time has passed, not before.
    let mut clock = restarted;
    let week_less_a_day = 6 * DAY;
    let t = clock.observe(
        Usecs(at(2026, 3, 7).0),
        Some(RealTime { origin: 8, elapsed: Usecs(week_less_a_day) }),
    );
    assert!(t.retention_now < until, "{t:?}");
    let t = clock.observe(at(2026, 3, 9), Some(RealTime { origin: 8, elapsed: Usecs(8 * DAY) }));
    assert_eq!(t.retention_now, at(2026, 3, 9));
    assert!(apply_update(r, &delete, &Principal::user("u"), t.retention_now).is_ok());
}

#[test]
fn a_clock_that_keeps_time_is_followed_exactly() {
    let mut clock = clock_at(at(2026, 1, 1));
    clock.observe(at(2026, 1, 1), real(0));
    for day in 1..=30 {
        let t = Usecs(at(2026, 1, 1).0 + day * DAY);
        let seen = clock.observe(t, real(day * DAY));
        assert_eq!((seen.now, seen.retention_now, seen.step), (t, t, None));
    }
}

fn any_principal() -> impl Strategy<Value = Principal> {
    (any::<bool>(), any::<bool>()).prop_map(|(admin, hold)| Principal {
        name: "p".into(),
        may_unlock_administrative: admin,
        may_hold: hold,
    })
}

fn any_update() -> impl Strategy<Value = RunUpdate> {
    (
        proptest::option::of(-400i64..400),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![
            Just(DataLockMode::Compliance),
            Just(DataLockMode::Administrative)
        ]),
        any::<bool>(),
    )
        .prop_map(|(days, hold, lock, delete)| RunUpdate {
            run: None,
            days_to_keep: days,
            enable_legal_hold: hold,
            data_lock: lock,
            delete_snapshots: delete,
        })
}

proptest! {
    /// Whatever anyone asks, at any time before a Compliance lock ends, the snapshots stay: the
    /// expiry is never before the lock's end, the lock is never weakened or shortened, and no
    /// deletion is accepted.
    #[test]
    fn a_compliance_lock_survives_any_sequence_of_updates(
        steps in proptest::collection::vec((any_update(), any_principal(), 0i64..200), 1..30)
    ) {
        let until = at(2026, 6, 1);
        let mut r = locked(DataLockMode::Compliance, until);
        let mut clock = clock_at(at(2026, 1, 1));
        let mut real_days = 0;
        for (u, who, day) in steps {
            // The system clock jumps around (real time passes a day a step); only trusted time
            // judges, and by real time the lock has not ended while fewer than 151 days passed.
            real_days += 1;
            let seen = clock.observe(Usecs(at(2026, 1, 1).0 + day * DAY), real(real_days * DAY));
            let now = seen.retention_now;
            prop_assert!(now.0 <= at(2026, 1, 1).0 + real_days * DAY + real_days * DAY / CATCH_UP_DIVISOR);
            if let Ok(d) = apply_update(r, &u, &who, now) {
                {
                    if now < until {
                        prop_assert!(!d.delete, "deleted under a Compliance lock");
                        let l = d.retention.data_lock.expect("lock kept");
                        prop_assert_eq!(l.mode, DataLockMode::Compliance);
                        prop_assert!(l.until >= until);
                        prop_assert!(d.retention.expiry.expect("expiry") >= until);
                    }
                    if d.delete { break; }
                    r = d.retention;
                }
            }
            prop_assert!(now >= until || !is_expired(&r, now));
        }
    }
}

#[test]
fn a_new_clock_starts_from_the_wall_and_reports_no_step() {
    let mut clock = TrustedClock::new(ClockState::starting_at(Usecs::ZERO));
    let seen = clock.observe(at(2026, 5, 1), None);
    assert_eq!((seen.now, seen.retention_now, seen.step), (at(2026, 5, 1), at(2026, 5, 1), None));
    // Without a real-time source nothing more is trusted for retention, only for records.
    let later = clock.observe(at(2026, 5, 9), None);
    assert_eq!((later.now, later.retention_now), (at(2026, 5, 9), at(2026, 5, 1)));
    assert!(later.step.is_some());
}
