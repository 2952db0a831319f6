//! A simulated month of scheduling, driven by a fake clock: a daily incremental at 02:00, a weekly
//! full, a Saturday-night blackout window, a monthly extended retention, and one slow run (paused
//! past the next slot). Every run's status and every snapshot's expiry is checked.

use std::sync::Arc;

use coldkeep::model::{
    BlackoutWindow, ExtendedRetention, GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Retention,
    RunStatus, RunType, Schedule, TimeOfDay, TimeUnit, Usecs, Weekday, DAY,
};
use coldkeep::{Engine, InitOptions, ManualClock, RunFilter};
use coldkeep_testing::Dataset;

fn at(day: u32, h: u8, m: u8) -> Usecs {
    Usecs::from_civil(2026, 11, day, TimeOfDay::new(h, m).expect("time")).expect("date")
}

#[test]
fn a_month_of_schedule_with_blackouts_and_a_slow_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 7);
    data.mixed(20, 10_000);
    // 2026-11-01 is a Sunday.
    let clock = Arc::new(ManualClock::new(at(1, 0, 0)));
    let engine = Engine::init(&tmp.path().join("repo"), &InitOptions::unencrypted())
        .expect("init")
        .with_clock(clock.clone())
        .expect("clock");
    let mut spec = PolicySpec::incremental(
        "daily",
        Schedule { unit: TimeUnit::Days, frequency: 1 },
        Retention::days(7),
    );
    spec.backup.regular.full = Some(Schedule { unit: TimeUnit::Weeks, frequency: 1 });
    spec.blackout_windows = vec![BlackoutWindow {
        day: Weekday::Saturday,
        start: TimeOfDay::new(1, 0).expect("t"),
        end: TimeOfDay::new(3, 0).expect("t"),
    }];
    spec.extended_retention = vec![ExtendedRetention {
        every: Schedule { unit: TimeUnit::Months, frequency: 1 },
        retention: Retention { unit: TimeUnit::Years, duration: 1, data_lock: None },
    }];
    let policy = engine.create_policy(spec).expect("policy");
    let mut spec = GroupSpec::new(
        "web",
        policy.id,
        vec![ObjectSpec::new("src", ObjectKind::DirectoryTree, &src)],
    );
    spec.start_time = TimeOfDay::new(2, 0).expect("t");
    let group = engine.create_group(spec).expect("group");

    // Tick every 6 hours and at 02:05; the run of Nov 10 is slow (paused) until after Nov 11's
    // slot.
    let mut slow = None;
    for day in 1..=30 {
        for (h, m) in [(0, 0), (2, 5), (6, 0), (12, 0), (18, 0)] {
            clock.set(at(day, h, m));
            let report = engine.tick().expect("tick");
            for &(g, run, _, _) in &report.started {
                if day == 10 {
                    engine.pause_run(g, run).expect("pause");
                    slow = Some(run);
                } else {
                    engine.wait_run(g, run).expect("wait");
                }
            }
            if day == 11 && (h, m) == (2, 5) {
                assert_eq!(report.missed.len(), 1, "Nov 11's slot finds Nov 10's run still going");
                let run = slow.expect("slow run");
                engine.resume_run(group.id, run).expect("resume");
                engine.wait_run(group.id, run).expect("wait");
            }
            if (h, m) != (2, 5) {
                assert!(report.started.is_empty() && report.missed.is_empty(), "day {day} {h}:{m}");
            }
        }
    }

    let runs = engine
        .runs(group.id, &RunFilter { include_object_details: true, ..Default::default() })
        .expect("runs");
    let day_of = |t: Usecs| ((t.0 - at(1, 0, 0).0) / DAY + 1) as u32;
    let mut expected_days: Vec<u32> = (1..=30).filter(|d| ![7, 14, 21, 28].contains(d)).collect(); // Saturdays: blackout
    let days: Vec<u32> =
        runs.iter().map(|r| day_of(r.scheduled_time_usecs.expect("scheduled"))).collect();
    assert_eq!(days, expected_days, "one run per slot, none on blacked-out Saturdays");
    expected_days.retain(|d| *d != 11);
    for run in &runs {
        let day = day_of(run.start_time_usecs);
        assert_eq!(run.scheduled_time_usecs, Some(at(day, 2, 0)));
        if day == 11 {
            assert_eq!(run.status, RunStatus::Missed, "{:?}", run.message);
            assert!(run.objects.is_empty());
            continue;
        }
        assert_eq!(run.status, RunStatus::Succeeded, "day {day}: {:?}", run.message);
        let sunday = [1, 8, 15, 22, 29].contains(&day);
        assert_eq!(
            run.run_type,
            if sunday { RunType::Full } else { RunType::Regular },
            "day {day}"
        );
        assert!(run.objects[0].snapshot.is_some());
        // The first snapshot of the month is kept a year; the others a week.
        let expiry = if day == 1 {
            at(1, 2, 5).plus(TimeUnit::Years, 1)
        } else {
            Usecs(run.start_time_usecs.0 + 7 * DAY)
        };
        assert_eq!(run.retention.expiry, Some(expiry), "day {day}");
    }
    assert_eq!(runs.iter().filter(|r| r.status == RunStatus::Succeeded).count(), 25);
    assert_eq!(engine.snapshots().expect("snapshots").len(), 25);
}
