//! Runs through the public API: background execution, per-object results, the seed's filters,
//! pause / resume / cancel, retries, and the retention / legal hold / DataLock rules of
//! `update_runs` — each refused attempt checked to have changed nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coldkeep::model::{
    DataLockConfig, DataLockMode, GroupId, GroupSpec, ObjectKind, ObjectSpec, PolicySpec,
    Principal, Priority, Retention, Run, RunId, RunRequest, RunStatus, RunType, RunUpdate,
    Schedule, TimeUnit, Usecs, DAY,
};
use coldkeep::{
    BackupOptions, Control, Engine, InitOptions, ManualClock, ObjectSnapshotFilter as Filter,
    ProtectError, Refusal, RunFilter,
};
use coldkeep_testing::engine::t0;
use coldkeep_testing::{compare_trees, Compare, Dataset};

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    clock: Arc<ManualClock>,
    engine: Engine,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_owned();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = Engine::init(&root.join("repo"), &InitOptions::unencrypted())
        .expect("init")
        .with_clock(clock.clone())
        .expect("clock");
    Fixture { _tmp: tmp, root, clock, engine }
}

fn policy(lock: Option<DataLockConfig>) -> PolicySpec {
    let retention = Retention { unit: TimeUnit::Days, duration: 7, data_lock: lock };
    PolicySpec::incremental("daily", Schedule { unit: TimeUnit::Days, frequency: 1 }, retention)
}

fn source(root: &Path, name: &str, seed: u64) -> PathBuf {
    let dir = root.join(name);
    Dataset::new(&dir, seed).mixed(30, 20_000);
    dir
}

fn group(f: &Fixture, lock: Option<DataLockConfig>, paths: &[&Path]) -> GroupId {
    let policy = f.engine.create_policy(policy(lock)).expect("policy");
    let objects = paths
        .iter()
        .map(|p| ObjectSpec::new(p.to_string_lossy(), ObjectKind::DirectoryTree, p))
        .collect();
    f.engine.create_group(GroupSpec::new("g", policy.id, objects)).expect("group").id
}

#[test]
fn a_run_backs_up_every_object_in_the_background_and_is_listed_with_the_seed_filters() {
    let f = fixture();
    let (a, b) = (source(&f.root, "a", 1), source(&f.root, "b", 2));
    let g = group(&f, None, &[&a, &b]);
    let started = f.engine.start_run(g, RunRequest::new(RunType::Regular)).expect("start");
    assert!(matches!(started.status, RunStatus::Accepted | RunStatus::Running));
    let run = f.engine.wait_run(g, started.id).expect("wait");
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
    assert_eq!(run.objects.len(), 2);
    assert_eq!(run.retention.expiry, Some(Usecs(t0().0 + 7 * DAY)));
    for (object, src) in run.objects.iter().zip([&a, &b]) {
        assert_eq!(object.status, RunStatus::Succeeded);
        assert!(object.stats.bytes_read > 0 && object.stats.bytes_written > 0);
        let target = f.root.join(format!("restore-{}", object.object));
        let snap = object.snapshot.expect("snapshot");
        f.engine
            .restore(snap, b"", &target, &coldkeep::RestoreOptions::default())
            .expect("restore");
        assert_eq!(compare_trees(src, &target, Compare::default()), Vec::<String>::new());
    }
    // A full run of one object: reads everything, stores nothing new.
    f.clock.advance(DAY);
    let mut request = RunRequest::new(RunType::Full);
    request.objects = Some(vec![run.objects[0].object]);
    let full = f.engine.start_run(g, request).expect("start full");
    let full = f.engine.wait_run(g, full.id).expect("wait");
    assert_eq!(full.status, RunStatus::Succeeded);
    assert_eq!(full.objects.len(), 1);
    assert_eq!(full.stats().bytes_new, 0, "deduplicated against the first run");
    assert!(full.stats().bytes_deduplicated > 0);

    let ids = |filter: RunFilter| -> Vec<_> {
        f.engine.runs(g, &filter).expect("runs").into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(RunFilter::default()), [run.id, full.id]);
    assert_eq!(ids(RunFilter { run_types: vec![RunType::Full], ..Default::default() }), [full.id]);
    assert_eq!(ids(RunFilter { max_count: Some(1), ..Default::default() }), [full.id]);
    assert_eq!(
        ids(RunFilter { start_time_usecs: Some(Usecs(t0().0 + 1)), ..Default::default() }),
        [full.id]
    );
    assert_eq!(ids(RunFilter { end_time_usecs: Some(t0()), ..Default::default() }), [run.id]);
    assert_eq!(ids(RunFilter { statuses: vec![RunStatus::Failed], ..Default::default() }), []);
    let listed = f.engine.runs(g, &RunFilter::default()).expect("runs");
    assert!(listed.iter().all(|r| r.objects.is_empty()), "object details only when asked");
    let detailed =
        f.engine.runs(g, &RunFilter { include_object_details: true, ..Default::default() });
    assert_eq!(detailed.expect("runs")[0].objects.len(), 2);
}

/// Polls a run until `done` holds for it.
fn await_status(f: &Fixture, g: GroupId, run: RunId, done: impl Fn(RunStatus) -> bool) -> Run {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = f.engine.run(g, run).expect("run");
        if done(r.status) {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "run {run} stuck at {}", r.status);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn runs_beyond_the_limit_wait_on_hold_and_go_by_priority() {
    let f = fixture();
    f.engine.set_max_concurrent_runs(0);
    let start = |name: &str, seed: u64, priority: Priority| {
        let g = group(&f, None, &[&source(&f.root, name, seed)]);
        let mut request = RunRequest::new(RunType::Regular);
        request.options.priority = priority;
        (g, f.engine.start_run(g, request).expect("start").id)
    };
    let low_first = start("a", 1, Priority::Low);
    let low_second = start("b", 2, Priority::Low);
    let high = start("c", 3, Priority::High);
    let dropped = start("d", 4, Priority::High);
    for (g, r) in [low_first, low_second, high, dropped] {
        await_status(&f, g, r, |s| s == RunStatus::OnHold);
    }
    // Canceled while it waits: it never starts and commits nothing.
    f.engine.cancel_run(dropped.0, dropped.1).expect("cancel");
    let canceled = await_status(&f, dropped.0, dropped.1, RunStatus::is_terminal);
    assert_eq!(canceled.status, RunStatus::Canceled);
    assert!(canceled.objects.iter().all(|o| o.snapshot.is_none()));

    f.engine.set_max_concurrent_runs(1);
    let snapshot = |(g, r): (GroupId, RunId)| {
        let run = f.engine.wait_run(g, r).expect("wait");
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
        run.objects[0].snapshot.expect("snapshot")
    };
    let (a, b, c) = (snapshot(low_first), snapshot(low_second), snapshot(high));
    assert!(c < a && a < b, "high priority first, then the older run: {c} {a} {b}");
    assert_eq!(f.engine.snapshots().expect("snapshots").len(), 3);
}

#[test]
fn a_suspended_run_waits_for_resume_and_a_canceled_one_commits_nothing() {
    let f = fixture();
    let a = source(&f.root, "a", 3);
    let g = group(&f, None, &[&a]);
    let mut request = RunRequest::new(RunType::Regular);
    request.options.start_suspended = true;
    let run = f.engine.start_run(g, request.clone()).expect("start");
    assert_eq!(run.status, RunStatus::Paused);
    // One run at a time per group.
    assert!(matches!(
        f.engine.start_run(g, RunRequest::new(RunType::Regular)),
        Err(ProtectError::RunInProgress { .. })
    ));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(f.engine.run(g, run.id).expect("run").status, RunStatus::Paused);
    assert!(f.engine.snapshots().expect("snapshots").is_empty(), "nothing read while paused");
    f.engine.resume_run(g, run.id).expect("resume");
    assert_eq!(f.engine.wait_run(g, run.id).expect("wait").status, RunStatus::Succeeded);
    assert!(matches!(
        f.engine.pause_run(g, run.id),
        Err(ProtectError::RunNotActive { status: RunStatus::Succeeded, .. })
    ));

    let run = f.engine.start_run(g, request).expect("start");
    let canceling = f.engine.cancel_run(g, run.id).expect("cancel");
    assert!(matches!(canceling.status, RunStatus::Canceling | RunStatus::Canceled));
    let canceled = f.engine.wait_run(g, run.id).expect("wait");
    assert_eq!(canceled.status, RunStatus::Canceled);
    assert_eq!(canceled.objects[0].status, RunStatus::Canceled);
    assert_eq!(canceled.objects[0].snapshot, None);
    assert_eq!(f.engine.snapshots().expect("snapshots").len(), 1, "only the first run's");
    assert!(f
        .engine
        .check(coldkeep::CheckOptions { read_data: true })
        .expect("check")
        .problems
        .is_empty());
}

/// Pausing stops reading at a chunk boundary (before the first file when paused from the start,
/// wherever it is when paused mid-way); resuming goes on from there and the snapshot is complete.
#[test]
fn a_paused_backup_reads_nothing_until_resumed() {
    let f = fixture();
    let src = f.root.join("big");
    let mut data = Dataset::new(&src, 9);
    for i in 0..200 {
        let bytes = data.rng().bytes(96 << 10, false);
        data.file(format!("f{i:03}"), &bytes);
    }
    let control = Arc::new(Control::new(true, None)); // paused before it starts
    let progress = Arc::new(coldkeep::Progress::default());
    let opts = BackupOptions {
        control: Some(control.clone()),
        progress: Some(progress.clone()),
        threads: Some(2),
        ..BackupOptions::default()
    };
    let files = || progress.files.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::scope(|s| {
        let backup = s.spawn(|| f.engine.backup(&src, &opts));
        // A generous bound on the waits, which are for events, not for time to pass.
        let long = std::time::Instant::now() + Duration::from_mins(2);
        assert!(control.wait_held(1, long), "the backup reached its first checkpoint");
        assert!(!backup.is_finished(), "a paused backup does not finish");
        assert_eq!(files(), 0, "nothing read while paused");
        control.resume();
        while files() == 0 {
            std::thread::yield_now();
        }
        control.pause();
        // Both workers held at a chunk boundary: nothing moves until resumed.
        assert!(control.wait_held(2, long), "both workers stop at a checkpoint");
        let at_pause = files();
        assert!(!backup.is_finished() && at_pause < 200, "{at_pause} files read before the pause");
        for _ in 0..1_000 {
            std::thread::yield_now();
        }
        assert_eq!(files(), at_pause, "no file started while paused");
        control.resume();
        let snap = backup.join().expect("join").expect("backup");
        assert_eq!(snap.stats.files, 200);
        let target = f.root.join("restored");
        f.engine
            .restore(snap.id, b"", &target, &coldkeep::RestoreOptions::default())
            .expect("restore");
        assert_eq!(compare_trees(&src, &target, Compare::default()), Vec::<String>::new());
    });
}

#[test]
fn a_failing_object_is_retried_then_fails_the_run_and_the_others_are_kept() {
    let f = fixture();
    let a = source(&f.root, "a", 4);
    let missing = f.root.join("missing");
    let g = group(&f, None, &[&a, &missing]);
    let mut request = RunRequest::new(RunType::Regular);
    request.options.retries = 2;
    let run = f.engine.start_run(g, request).expect("start");
    let run = f.engine.wait_run(g, run.id).expect("wait");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.message.as_deref().is_some_and(|m| m.contains("missing")), "{:?}", run.message);
    assert_eq!(run.objects[0].status, RunStatus::Succeeded);
    assert!(run.objects[0].snapshot.is_some());
    assert_eq!((run.objects[1].status, run.objects[1].attempts), (RunStatus::Failed, 3));
}

#[test]
fn legal_hold_and_delete_follow_the_rules_and_are_audited() {
    let f = fixture();
    let a = source(&f.root, "a", 5);
    let g = group(&f, None, &[&a]);
    let run = f.engine.start_run(g, RunRequest::new(RunType::Regular)).expect("start");
    let run = f.engine.wait_run(g, run.id).expect("wait");
    let snapshot = run.objects[0].snapshot.expect("snapshot");
    let (user, dso) = (Principal::user("alice"), Principal::admin("dso"));
    let hold = RunUpdate { run: Some(run.id), enable_legal_hold: Some(true), ..Default::default() };
    let delete = RunUpdate { run: Some(run.id), delete_snapshots: true, ..Default::default() };

    assert!(matches!(
        f.engine.update_runs(g, std::slice::from_ref(&hold), &user),
        Err(ProtectError::Refused(Refusal::NotAllowed { .. }))
    ));
    f.engine.update_runs(g, &[hold], &dso).expect("hold");
    for who in [&user, &dso] {
        assert!(matches!(
            f.engine.update_runs(g, std::slice::from_ref(&delete), who),
            Err(ProtectError::Refused(Refusal::LegalHold))
        ));
    }
    assert!(matches!(
        f.engine.delete_group(g, true, &dso),
        Err(ProtectError::Refused(Refusal::LegalHold))
    ));
    assert!(f.engine.run(g, run.id).expect("run").retention.legal_hold);
    assert!(f.engine.snapshot(snapshot).is_ok(), "the held snapshot is still there");

    let release = RunUpdate {
        run: Some(run.id),
        enable_legal_hold: Some(false),
        delete_snapshots: true,
        ..Default::default()
    };
    let done = f.engine.update_runs(g, &[release], &dso).expect("lift and delete");
    assert!(done[0].snapshots_deleted);
    assert!(f.engine.snapshot(snapshot).is_err(), "deleted");
    let audit = f.engine.audit_log().expect("audit");
    let actions: Vec<_> = audit.iter().map(|e| (e.principal.as_str(), e.action.as_str())).collect();
    assert_eq!(actions, [("dso", "update_run"), ("dso", "delete_snapshots")]);
    assert!(audit[0].after.contains("\"legal_hold\":true"), "{}", audit[0].after);
}

#[test]
fn a_compliance_lock_holds_against_everyone_and_the_clock_until_it_ends() {
    let f = fixture();
    let a = source(&f.root, "a", 6);
    let lock = DataLockConfig { mode: DataLockMode::Compliance, unit: TimeUnit::Days, duration: 5 };
    let g = group(&f, Some(lock), &[&a]);
    let run = f.engine.start_run(g, RunRequest::new(RunType::Regular)).expect("start");
    let run = f.engine.wait_run(g, run.id).expect("wait");
    let until = Usecs(run.start_time_usecs.0 + 5 * DAY);
    assert_eq!(
        run.retention.data_lock.map(|l| (l.mode, l.until)),
        Some((DataLockMode::Compliance, until))
    );

    let admin = Principal::admin("root");
    let reduce = RunUpdate { run: Some(run.id), days_to_keep: Some(-6), ..Default::default() };
    let delete = RunUpdate { run: Some(run.id), delete_snapshots: true, ..Default::default() };
    let weaken = RunUpdate {
        run: Some(run.id),
        data_lock: Some(DataLockMode::Administrative),
        ..Default::default()
    };
    // Four days on, then the system clock is wound back: still locked, whatever anyone asks.
    f.clock.advance(4 * DAY);
    f.engine.trusted_now().expect("observe");
    f.clock.set(Usecs(t0().0 - 30 * DAY));
    for u in [&reduce, &delete, &weaken] {
        let refused = f.engine.update_runs(g, std::slice::from_ref(u), &admin);
        assert!(
            matches!(refused, Err(ProtectError::Refused(Refusal::ComplianceLock { .. }))),
            "{refused:?}"
        );
    }
    // An all-or-nothing batch: an allowed extension with a refused delete changes nothing.
    let extend = RunUpdate { run: Some(run.id), days_to_keep: Some(10), ..Default::default() };
    assert!(f.engine.update_runs(g, &[extend, delete.clone()], &admin).is_err());
    assert_eq!(f.engine.run(g, run.id).expect("run").retention, run.retention);
    assert!(f.engine.audit_log().expect("audit").is_empty());

    // Once the lock has ended (by real time passing), the snapshots can go.
    f.clock.set(Usecs(t0().0 + 4 * DAY));
    f.clock.advance(until.0 - (t0().0 + 4 * DAY) + 1);
    let done = f.engine.update_runs(g, &[delete], &Principal::user("ops")).expect("after the lock");
    assert!(done[0].snapshots_deleted);
}

#[test]
fn a_clock_set_years_ahead_ends_no_lock_and_no_retention_even_after_a_restart() {
    let f = fixture();
    let a = source(&f.root, "a", 7);
    let lock = DataLockConfig { mode: DataLockMode::Compliance, unit: TimeUnit::Days, duration: 5 };
    let g = group(&f, Some(lock), &[&a]);
    let run = f.engine.start_run(g, RunRequest::new(RunType::Regular)).expect("start");
    let run = f.engine.wait_run(g, run.id).expect("wait");
    let snapshot = run.objects[0].snapshot.expect("snapshot");
    let expiry = run.retention.expiry.expect("expiry");
    let delete = RunUpdate { run: Some(run.id), delete_snapshots: true, ..Default::default() };
    let admin = Principal::admin("root");

    // One command with the wall clock five years ahead, a minute of real time later.
    f.clock.advance(60_000_000);
    f.clock.set(Usecs(t0().0 + 5 * 365 * DAY));
    assert!(matches!(
        f.engine.update_runs(g, std::slice::from_ref(&delete), &admin),
        Err(ProtectError::Refused(Refusal::ComplianceLock { .. }))
    ));
    let gc = f.engine.gc(coldkeep::GcOptions::default()).expect("gc");
    assert_eq!(gc.runs_expired, 0, "{gc:?}");
    assert!(f.engine.snapshot(snapshot).is_ok());
    assert!(f.engine.retention_now().expect("now") < Usecs(t0().0 + DAY));
    let steps: Vec<_> = f
        .engine
        .audit_log()
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "clock_step")
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0].after.contains("\"real_elapsed_usecs\":60000000"), "{}", steps[0].after);

    // The future time persisted as the high-water mark does not unlock anything after a
    // restart either, with the clock right again: only real time does.
    let repo = f.engine.path().to_owned();
    drop(f.engine);
    let right = Usecs(t0().0 + 60_000_000);
    f.clock.set(right);
    let engine = Engine::open(&repo).expect("reopen").with_clock(f.clock.clone()).expect("clock");
    assert_eq!(engine.gc(coldkeep::GcOptions::default()).expect("gc").runs_expired, 0);
    assert!(engine.update_runs(g, std::slice::from_ref(&delete), &admin).is_err());
    f.clock.advance(expiry.0 - right.0);
    assert_eq!(engine.gc(coldkeep::GcOptions::default()).expect("gc").runs_expired, 1);
    assert!(engine.snapshot(snapshot).is_err(), "expired once real time reached the expiry");
}

#[test]
fn an_objects_snapshots_are_listed_with_the_seed_filters() {
    let f = fixture();
    let (a, b) = (source(&f.root, "a", 1), source(&f.root, "b", 2));
    let g = group(&f, None, &[&a, &b]);
    let objects: Vec<_> = f.engine.group(g).expect("group").objects.iter().map(|o| o.id).collect();
    let run = |run_type: RunType| {
        let started = f.engine.start_run(g, RunRequest::new(run_type)).expect("start");
        let done = f.engine.wait_run(g, started.id).expect("wait");
        assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.message);
        f.clock.advance(DAY);
        done
    };
    let (first, full, third) = (run(RunType::Regular), run(RunType::Full), run(RunType::Regular));
    let snaps = |filter: Filter| -> Vec<_> {
        let listed = f.engine.object_snapshots(objects[1], &filter).expect("object snapshots");
        assert!(listed.iter().all(|s| s.object == objects[1] && s.group == g));
        listed.into_iter().map(|s| s.run).collect()
    };
    assert_eq!(snaps(Filter::default()), [first.id, full.id, third.id]);
    assert_eq!(snaps(Filter { run_types: vec![RunType::Full], ..Filter::default() }), [full.id]);
    assert_eq!(snaps(Filter { run_instance_ids: vec![third.id], ..Filter::default() }), [third.id]);
    let from =
        Filter { run_start_from_time_usecs: Some(full.start_time_usecs), ..Filter::default() };
    assert_eq!(snaps(from), [full.id, third.id]);
    let to = Filter { run_start_to_time_usecs: Some(full.start_time_usecs), ..Filter::default() };
    assert_eq!(snaps(to), [first.id, full.id]);
    let other_group = Filter { protection_group_ids: vec![GroupId::new(99)], ..Filter::default() };
    assert_eq!(snaps(other_group), []);
    let listed = f.engine.object_snapshots(objects[1], &Filter::default()).expect("listed");
    assert_eq!(listed[0].snapshot, first.objects[1].snapshot.expect("snapshot"));
    assert_eq!(listed[0].expiry_time_usecs, first.retention.expiry);

    // Deleted snapshots are no longer listed; an unknown object is an error.
    let delete = RunUpdate { run: Some(first.id), delete_snapshots: true, ..RunUpdate::default() };
    f.engine.update_runs(g, &[delete], &Principal::user("ops")).expect("delete");
    assert_eq!(snaps(Filter::default()), [full.id, third.id]);
    assert!(matches!(
        f.engine.object_snapshots(coldkeep::model::ObjectId::new(999), &Filter::default()),
        Err(ProtectError::ObjectNotFound(_))
    ));
}

#[test]
fn protected_objects_are_found_with_their_latest_snapshot_and_last_run() {
    let f = fixture();
    let (a, b) = (source(&f.root, "alpha", 1), source(&f.root, "beta", 2));
    let g = group(&f, None, &[&a, &b]);
    let ids: Vec<_> = f.engine.group(g).expect("group").objects.iter().map(|o| o.id).collect();
    let first = f.engine.start_run(g, RunRequest::new(RunType::Regular)).expect("start");
    let first = f.engine.wait_run(g, first.id).expect("wait");
    f.clock.advance(DAY);
    let mut only_alpha = RunRequest::new(RunType::Full);
    only_alpha.objects = Some(vec![ids[0]]);
    let second = f.engine.start_run(g, only_alpha).expect("start");
    let second = f.engine.wait_run(g, second.id).expect("wait");

    let search =
        |q: coldkeep::ProtectedObjectSearch| f.engine.search_protected_objects(&q).expect("search");
    let all = search(coldkeep::ProtectedObjectSearch::default());
    assert_eq!(all.len(), 2);
    let alpha = &all[0];
    assert_eq!(alpha.object.id, ids[0]);
    assert_eq!(alpha.latest_snapshot.as_ref().map(|s| s.run), Some(second.id), "the newest");
    assert_eq!(alpha.last_run, Some((second.id, RunStatus::Succeeded)));
    assert_eq!(all[1].latest_snapshot.as_ref().map(|s| s.run), Some(first.id));
    assert_eq!(all[1].last_run, Some((first.id, RunStatus::Succeeded)));

    let by = |s: &str| {
        search(coldkeep::ProtectedObjectSearch { search_string: s.into(), ..Default::default() })
    };
    assert_eq!(by("BETA").len(), 1, "substring of the path, any case");
    assert_eq!(by("g*").len(), 2, "prefix of the group name");
    assert_eq!(by("gamma").len(), 0);
    let of_run = search(coldkeep::ProtectedObjectSearch {
        run_instance_ids: vec![second.id],
        ..Default::default()
    });
    assert_eq!(of_run.iter().map(|o| o.object.id).collect::<Vec<_>>(), [ids[0]]);
}
