//! Garbage collection through the public API: expired snapshots go and their space comes back
//! in two phases; held snapshots stay; a backup running during a collection loses nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coldkeep::model::{
    GroupId, GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, RunUpdate,
    Schedule, SnapshotId, TimeUnit, Usecs, DAY,
};
use coldkeep::{
    BackupOptions, CheckOptions, Control, Engine, GcOptions, InitOptions, ManualClock,
    RestoreOptions,
};
use coldkeep_testing::engine::{backed_up, t0};
use coldkeep_testing::{compare_trees, Compare, Dataset};

fn now_gc() -> GcOptions {
    GcOptions { grace: Duration::ZERO, ..GcOptions::default() }
}

struct Fixture {
    tmp: tempfile::TempDir,
    clock: Arc<ManualClock>,
    engine: Engine,
    group: GroupId,
    src: PathBuf,
}

/// A group with one-day retention protecting `src`.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = Engine::init(&tmp.path().join("repo"), &InitOptions::unencrypted())
        .expect("init")
        .with_clock(clock.clone())
        .expect("clock");
    let policy = engine
        .create_policy(PolicySpec::incremental(
            "short",
            Schedule { unit: TimeUnit::Days, frequency: 1 },
            Retention::days(1),
        ))
        .expect("policy");
    let src = tmp.path().join("src");
    let object = ObjectSpec::new("src", ObjectKind::DirectoryTree, &src);
    let group =
        engine.create_group(GroupSpec::new("g", policy.id, vec![object])).expect("group").id;
    Fixture { tmp, clock, engine, group, src }
}

fn fill(dir: &Path, seed: u64) {
    let _ = std::fs::remove_dir_all(dir);
    Dataset::new(dir, seed).mixed(40, 60_000);
}

fn pack_bytes(f: &Fixture) -> u64 {
    f.engine.stats().expect("stats").pack_bytes
}

fn assert_restores(f: &Fixture, snap: SnapshotId, expected: &Path, name: &str) {
    let target = f.tmp.path().join(name);
    f.engine.restore(snap, b"", &target, &RestoreOptions::default()).expect("restore");
    assert_eq!(compare_trees(expected, &target, Compare::default()), Vec::<String>::new());
}

#[test]
fn expired_snapshots_go_and_their_space_comes_back_after_the_grace_period() {
    let f = fixture();
    fill(&f.src, 1);
    let (_, old) = backed_up(&f.engine, f.group);
    let before = pack_bytes(&f);
    fill(&f.src, 2); // entirely new content
    f.clock.advance(DAY / 2);
    let (_, new) = backed_up(&f.engine, f.group);
    f.clock.advance(DAY * 3 / 4); // the first run has expired, the second has not

    let first = f.engine.gc(GcOptions::default()).expect("gc");
    assert_eq!((first.runs_expired, first.snapshots_removed), (1, 1));
    assert!(first.packs_condemned > 0, "{first:?}");
    assert_eq!(first.packs_deleted, 0, "condemned packs wait out the grace period");
    assert!(f.engine.snapshot(old).is_err());
    // Within the grace period nothing is deleted.
    f.clock.advance(30 * 60 * 1_000_000);
    assert_eq!(f.engine.gc(GcOptions::default()).expect("gc").packs_deleted, 0);
    f.clock.advance(31 * 60 * 1_000_000);
    let second = f.engine.gc(GcOptions::default()).expect("gc");
    assert_eq!(second.packs_deleted, first.packs_condemned);
    assert!(second.bytes_freed > before / 2, "{second:?}, first backup took {before}");

    let check = f.engine.check(CheckOptions { read_data: true }).expect("check");
    assert!(check.problems.is_empty() && check.unindexed_packs.is_empty(), "{check:?}");
    assert_restores(&f, new, &f.src, "restored");
    let audit = f.engine.audit_log().expect("audit");
    assert_eq!(audit.iter().filter(|e| e.action == "expire").count(), 1);
}

#[test]
fn held_snapshots_are_never_collected() {
    let f = fixture();
    fill(&f.src, 3);
    let (run_under_hold, snapshot_under_hold) = backed_up(&f.engine, f.group);
    let kept = f.tmp.path().join("kept");
    std::fs::rename(&f.src, &kept).expect("keep the source");
    fill(&f.src, 4);
    let hold = RunUpdate {
        run: Some(run_under_hold),
        enable_legal_hold: Some(true),
        ..Default::default()
    };
    f.engine.update_runs(f.group, &[hold], &Principal::admin("dso")).expect("hold");
    f.clock.advance(10 * DAY);
    for _ in 0..2 {
        let report = f.engine.gc(now_gc()).expect("gc");
        assert_eq!(report.runs_expired, 0);
        assert_eq!(report.packs_deleted, 0);
    }
    assert_restores(&f, snapshot_under_hold, &kept, "restored");
}

/// A collection while a backup runs (held mid-way) removes the expired snapshot, but unindexes
/// nothing the backup may still reuse: the backup's snapshot is complete and restorable at once,
/// and stays so through later collections.
#[test]
fn a_backup_running_during_gc_loses_no_chunk() {
    let f = fixture();
    fill(&f.src, 5);
    let (_, old) = backed_up(&f.engine, f.group);
    f.clock.advance(2 * DAY); // the only snapshot has expired: all its packs are dead

    // A backup of the same content starts, reads the index, and is held at its first file.
    let control = Arc::new(Control::new(true, None));
    let opts = BackupOptions { control: Some(control.clone()), ..BackupOptions::default() };
    std::thread::scope(|s| {
        let backup = s.spawn(|| f.engine.backup(&f.src, &opts));
        // Held at its first file: it has read the chunk index.
        let long = std::time::Instant::now() + Duration::from_mins(2);
        assert!(control.wait_held(1, long), "the backup never reached its first file");
        for _ in 0..2 {
            let during = f.engine.gc(now_gc()).expect("gc during the backup");
            assert_eq!((during.packs_condemned, during.packs_deleted), (0, 0), "{during:?}");
        }
        assert!(f.engine.snapshot(old).is_err(), "the expired snapshot went");
        control.resume();
        let snap = backup.join().expect("join").expect("backup");
        let check = f.engine.check(CheckOptions { read_data: true }).expect("check");
        assert!(check.problems.is_empty(), "{check:?}");
        assert_restores(&f, snap.id, &f.src, "restored");
        for _ in 0..2 {
            let after = f.engine.gc(now_gc()).expect("gc after the backup");
            assert_eq!(after.packs_deleted, 0, "everything is referenced again: {after:?}");
        }
        assert_restores(&f, snap.id, &f.src, "restored-again");
    });
}

/// Packs no record names (here: another repository's, as a catalog that lost them would see
/// them) wait out the grace period, and those holding trees no snapshot reaches are kept.
#[test]
fn unindexed_packs_wait_for_the_grace_period_and_lost_trees_are_never_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let small = InitOptions { pack_target_size: 64 << 10, ..InitOptions::unencrypted() };
    let other = Engine::init(&tmp.path().join("other"), &small).expect("init other");
    let src = tmp.path().join("src");
    fill(&src, 5);
    other.backup(&src, &BackupOptions::default()).expect("backup");
    drop(other);
    let lost = coldkeep_testing::pack_files(&tmp.path().join("other"));
    assert!(lost.len() > 2, "{lost:?}");

    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time");
    let clock = Arc::new(ManualClock::new(Usecs(wall.as_micros() as i64)));
    let repo = tmp.path().join("repo");
    let engine = Engine::init(&repo, &small).expect("init").with_clock(clock.clone()).expect("c");
    for pack in &lost {
        let sub = pack.parent().and_then(Path::file_name).expect("fan-out dir");
        std::fs::create_dir_all(repo.join("packs").join(sub)).expect("mkdir");
        std::fs::copy(pack, repo.join("packs").join(sub).join(pack.file_name().expect("name")))
            .expect("copy");
    }
    let young = engine.gc(GcOptions::default()).expect("gc");
    assert_eq!((young.orphan_packs_deleted, young.orphan_packs_waiting), (0, lost.len() as u64));

    clock.advance(2 * 3600 * 1_000_000);
    let old = engine.gc(GcOptions::default()).expect("gc");
    assert!(!old.orphan_packs_kept.is_empty(), "{old:?}");
    assert!(old.orphan_packs_deleted > 0, "packs of data alone go: {old:?}");
    assert_eq!(old.orphan_packs_kept.len() as u64 + old.orphan_packs_deleted, lost.len() as u64);
    let check = engine.check(CheckOptions::default()).expect("check");
    assert_eq!(check.unindexed_packs, old.orphan_packs_kept);
    assert_eq!(check.unindexed_packs_with_trees, old.orphan_packs_kept);
    // And they stay, collection after collection.
    assert_eq!(engine.gc(now_gc()).expect("gc").orphan_packs_kept, old.orphan_packs_kept);
}
