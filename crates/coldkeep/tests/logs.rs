//! Log runs (`kLog`): a log directory's appended tails and new segments are all a log run reads,
//! each log snapshot records the time range it covers, and restore points list the full and
//! incremental snapshots with the log ranges between them.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use coldkeep::model::{
    GroupSpec, LogBackup, LogRange, ObjectKind, ObjectSpec, PolicySpec, Retention, RunStatus,
    RunType, Schedule, TimeUnit, Usecs, MINUTE,
};
use coldkeep::{Engine, InitOptions, ManualClock, ProtectError, RecoveryError, RestoreOptions};
use coldkeep_testing::engine::{finished_run, t0};
use coldkeep_testing::{compare_trees, Compare, Dataset, Rng};

fn append(path: &Path, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).expect("open");
    f.write_all(data).expect("append");
}

#[test]
fn log_runs_read_only_what_was_appended_and_cover_the_time_since_the_last_capture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = Engine::init(&dir.path().join("repo"), &InitOptions::unencrypted())
        .expect("init")
        .with_clock(clock.clone())
        .expect("clock");
    let data = dir.path().join("data");
    Dataset::new(&data, 1).mixed(20, 50_000);
    let wal = dir.path().join("wal");
    std::fs::create_dir(&wal).expect("mkdir");
    let mut rng = Rng::new(9);
    append(&wal.join("000001"), &rng.bytes(4 << 20, true));

    let mut spec = PolicySpec::incremental(
        "db",
        Schedule { unit: TimeUnit::Days, frequency: 1 },
        Retention { unit: TimeUnit::Days, duration: 30, data_lock: None },
    );
    spec.backup.log = Some(LogBackup {
        schedule: Schedule { unit: TimeUnit::Minutes, frequency: 15 },
        retention: Retention { unit: TimeUnit::Days, duration: 7, data_lock: None },
    });
    let policy = engine.create_policy(spec).expect("policy");
    let objects = vec![
        ObjectSpec::new("data", ObjectKind::DirectoryTree, &data),
        ObjectSpec::new("wal", ObjectKind::LogDirectory, &wal),
    ];
    let group = engine.create_group(GroupSpec::new("db", policy.id, objects)).expect("group");
    let (data_id, wal_id) = (group.objects[0].id, group.objects[1].id);

    // The base: an incremental run captures both objects at t0.
    let base = finished_run(&engine, group.id, RunType::Regular);
    assert_eq!(base.status, RunStatus::Succeeded, "{:?}", base.message);
    assert!(base.objects.iter().all(|o| o.captured_usecs == Some(t0()) && o.log_range.is_none()));

    // 15 minutes of writes: the segment grows by 64 KiB and a new one starts.
    let (tail, segment) = (rng.bytes(64 << 10, true), rng.bytes(100_000, true));
    append(&wal.join("000001"), &tail);
    append(&wal.join("000002"), &segment);
    clock.advance(15 * MINUTE);
    let log1 = finished_run(&engine, group.id, RunType::Log);
    assert_eq!(log1.status, RunStatus::Succeeded, "{:?}", log1.message);
    let (skipped, logged) = (&log1.objects[0], &log1.objects[1]);
    assert_eq!(skipped.status, RunStatus::Skipped, "a log run leaves the data directory alone");
    assert_eq!(logged.status, RunStatus::Succeeded);
    assert_eq!(
        logged.stats.bytes_read,
        (tail.len() + segment.len()) as u64,
        "only the appended tail and the new segment are read"
    );
    let first_range = LogRange { from_usecs: t0(), to_usecs: Usecs(t0().0 + 15 * MINUTE) };
    assert_eq!(logged.log_range, Some(first_range));
    assert_eq!(log1.retention.expiry, Some(Usecs(first_range.to_usecs.0 + 7 * 24 * 60 * MINUTE)));

    // Another 15 minutes: the next log run covers from the previous capture.
    append(&wal.join("000002"), &rng.bytes(30_000, true));
    clock.advance(15 * MINUTE);
    let log2 = finished_run(&engine, group.id, RunType::Log);
    let second_range =
        LogRange { from_usecs: first_range.to_usecs, to_usecs: Usecs(t0().0 + 30 * MINUTE) };
    assert_eq!(log2.objects[1].log_range, Some(second_range));
    assert_eq!(log2.objects[1].stats.bytes_read, 30_000);

    // The latest log snapshot holds every segment whole.
    let target = dir.path().join("restored-wal");
    let snap = log2.objects[1].snapshot.expect("snapshot");
    engine.restore(snap, b"", &target, &RestoreOptions::default()).expect("restore");
    assert_eq!(compare_trees(&wal, &target, Compare::default()), Vec::<String>::new());

    // Restore points: the base, then the log ranges up to the last capture.
    let points = engine.restore_points(data_id, t0(), Usecs(t0().0 + 60 * MINUTE)).expect("points");
    let bases: Vec<_> = points.full_snapshots.iter().map(|p| (p.run, p.captured_usecs)).collect();
    assert_eq!(bases, [(base.id, t0())]);
    let ranges: Vec<_> = points.log_ranges.iter().map(|l| (l.object, l.run, l.range)).collect();
    assert_eq!(ranges, [(wal_id, log1.id, first_range), (wal_id, log2.id, second_range)]);
    let late =
        engine.restore_points(data_id, Usecs(t0().0 + 20 * MINUTE), Usecs(t0().0 + 60 * MINUTE));
    let late = late.expect("points");
    assert!(late.full_snapshots.is_empty());
    assert_eq!(late.log_ranges.len(), 1, "only the range that reaches past 09:20");

    // Point in time 09:20: the base of 09:00, and the logs as captured at 09:30.
    let at = Usecs(t0().0 + 20 * MINUTE);
    let (data_target, wal_target) = (dir.path().join("pitr-data"), dir.path().join("pitr-wal"));
    let opts = RestoreOptions::default();
    let pitr =
        engine.recover_point_in_time(data_id, at, &data_target, &wal_target, &opts).expect("pitr");
    assert_eq!((pitr.plan.base.run, pitr.plan.logs.run), (base.id, log2.id));
    assert_eq!(compare_trees(&data, &data_target, Compare::default()), Vec::<String>::new());
    assert_eq!(compare_trees(&wal, &wal_target, Compare::default()), Vec::<String>::new());
    // Before the first base, or past the last log capture: refused, nothing restored.
    let nowhere = dir.path().join("nowhere");
    let before =
        engine.recover_point_in_time(data_id, Usecs(t0().0 - 1), &nowhere, &nowhere, &opts);
    assert!(matches!(before, Err(RecoveryError::Plan(ProtectError::NoRestorePoint { .. }))));
    let after = engine.recover_point_in_time(
        data_id,
        Usecs(t0().0 + 31 * MINUTE),
        &nowhere,
        &nowhere,
        &opts,
    );
    match after {
        Err(RecoveryError::Plan(ProtectError::LogsDoNotReach { covered_until, .. })) => {
            assert_eq!(covered_until, Some(second_range.to_usecs));
        }
        other => panic!("expected LogsDoNotReach, got {other:?}"),
    }
    assert!(!nowhere.exists());
}

#[test]
fn a_log_run_of_a_group_without_log_directories_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::init(&dir.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let data = dir.path().join("data");
    Dataset::new(&data, 2).mixed(5, 10_000);
    let every = Schedule { unit: TimeUnit::Days, frequency: 1 };
    let spec = PolicySpec::incremental("p", every, Retention::days(7));
    let policy = engine.create_policy(spec).expect("policy");
    let object = ObjectSpec::new("data", ObjectKind::DirectoryTree, &data);
    let group = engine.create_group(GroupSpec::new("g", policy.id, vec![object])).expect("group");
    let skipped = finished_run(&engine, group.id, RunType::Log);
    assert_eq!(skipped.status, RunStatus::Skipped);
    assert!(engine.snapshots().expect("snapshots").is_empty());
}
