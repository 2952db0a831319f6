//! The catalog is an index that can be thrown away: delete the whole catalog of a repository
//! with snapshots, runs, a legal hold, a Compliance DataLock and a collection half done, rebuild
//! it from the store alone, and everything is back — every snapshot restores byte-exact, every
//! hold and lock still binds, ids are not reused, and gc finishes what it started.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coldkeep::model::{
    DataLockConfig, DataLockMode, Principal, Retention, RunUpdate, TimeUnit, DAY,
};
use coldkeep::{
    BackupOptions, CheckOptions, Engine, ErrorKind, GcOptions, InitOptions, KdfParams, ManualClock,
    OpenOptions, RestoreOptions, Secret,
};
use coldkeep_testing::engine::{backed_up, daily_group, t0};
use coldkeep_testing::{compare_trees, Compare, Dataset};

const PASSPHRASE: &str = "rebuild test";

fn opts() -> OpenOptions {
    OpenOptions::with_secret(Secret::passphrase(PASSPHRASE))
}

fn copy(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(status.success());
}

#[test]
fn a_deleted_catalog_is_rebuilt_from_the_store_and_every_hold_and_lock_still_binds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let clock = Arc::new(ManualClock::new(t0()));
    let init = InitOptions {
        pack_target_size: 128 << 10,
        kdf: KdfParams::INSECURE_FOR_TESTS,
        ..InitOptions::with_secret(Secret::passphrase(PASSPHRASE))
    };
    let engine =
        Engine::init(&repo, &init).expect("init").with_clock(clock.clone()).expect("clock");

    // Group g: 7 days of retention under a 7-day Compliance lock; two runs, the first held.
    let src = tmp.path().join("src");
    Dataset::new(&src, 1).mixed(30, 40_000);
    let lock = DataLockConfig { mode: DataLockMode::Compliance, unit: TimeUnit::Days, duration: 7 };
    let locked = Retention { unit: TimeUnit::Days, duration: 7, data_lock: Some(lock) };
    let g = daily_group(&engine, "g", &src, locked);
    let (r1, s1) = backed_up(&engine, g);
    let v1 = tmp.path().join("v1");
    copy(&src, &v1);
    clock.advance(DAY / 4);
    Dataset::new(&src, 2).mutate(10);
    let (r2, s2) = backed_up(&engine, g);
    let v2 = tmp.path().join("v2");
    copy(&src, &v2);
    let hold = RunUpdate { run: Some(r1), enable_legal_hold: Some(true), ..RunUpdate::default() };
    engine.update_runs(g, &[hold], &Principal::admin("dso")).expect("hold");
    // A snapshot outside any group.
    let other = tmp.path().join("other");
    Dataset::new(&other, 3).mixed(10, 30_000);
    let s3 = engine.backup(&other, &BackupOptions::default()).expect("backup").id;
    // Group h: one day of retention; its run expires and gc condemns its packs (the grace
    // period keeps them for now).
    let short = tmp.path().join("short");
    Dataset::new(&short, 4).mixed(15, 50_000);
    let h = daily_group(&engine, "h", &short, Retention::days(1));
    let (_, expired) = backed_up(&engine, h);
    clock.advance(2 * DAY);
    let first_gc = engine.gc(GcOptions::default()).expect("gc");
    assert!(first_gc.runs_expired == 1 && first_gc.packs_condemned > 0, "{first_gc:?}");

    let snapshots: Vec<_> = engine.snapshots().expect("snapshots");
    let runs_g = engine.runs(g, &coldkeep::RunFilter::default()).expect("runs");
    let audit = engine.audit_log().expect("audit");
    let policies = engine.policies(&coldkeep::PolicyFilter::default()).expect("policies");
    let indexed = |engine: &Engine| {
        let all = coldkeep::FileSearch { pattern: "*".into(), ..coldkeep::FileSearch::default() };
        engine.search_files(&all).expect("search").count
    };
    for snap in &snapshots {
        engine.index_snapshot(snap.id).expect("index"); // runs did theirs; s3 is not a run's
    }
    let found = indexed(&engine);
    assert!(found > 0);
    drop(engine);

    // The catalog is gone.
    std::fs::remove_dir_all(repo.join("catalog")).expect("delete the catalog");
    std::fs::remove_file(repo.join("commits")).expect("delete the commit numbers");
    let refused = Engine::open_with(&repo, &opts()).expect_err("no catalog");
    assert!(matches!(refused, coldkeep::OpenError::CatalogUnreadable { .. }), "{refused:?}");
    assert!(refused.to_string().contains("coldkeep rebuild-catalog"), "{refused}");
    assert_eq!(coldkeep::Error::from(refused).kind(), ErrorKind::Corrupt);

    let (engine, report) = Engine::rebuild_catalog(&repo, &opts()).expect("rebuild");
    let engine = engine.with_clock(clock.clone()).expect("clock");
    assert!(report.journal_entries > 10 && report.packs_indexed > 3, "{report:?}");
    assert!(report.packs_unreadable.is_empty(), "{report:?}");
    assert_eq!(report.snapshots, snapshots.len() as u64);

    // The same records.
    assert_eq!(engine.snapshots().expect("snapshots"), snapshots);
    assert_eq!(engine.runs(g, &coldkeep::RunFilter::default()).expect("runs"), runs_g);
    // (Opening with the system clock before the test's clock is set records a clock step.)
    let rebuilt_audit: Vec<_> = engine
        .audit_log()
        .expect("audit")
        .into_iter()
        .filter(|e| e.action != "clock_step")
        .collect();
    assert_eq!(rebuilt_audit, audit);
    assert_eq!(engine.policies(&coldkeep::PolicyFilter::default()).expect("policies"), policies);
    assert!(engine.snapshot(expired).is_err(), "the expired snapshot stays expired");
    // The file index is derived, not journaled: every snapshot is found by search again.
    assert_eq!(indexed(&engine), found);

    // Every snapshot restores byte-exact.
    for (snap, expected, name) in [(s1, &v1, "r1"), (s2, &v2, "r2"), (s3, &other, "r3")] {
        let target = tmp.path().join(format!("restored-{name}"));
        engine.restore(snap, b"", &target, &RestoreOptions::default()).expect("restore");
        assert_eq!(compare_trees(expected, &target, Compare::default()), Vec::<String>::new());
    }
    let check = engine.check(CheckOptions { read_data: true }).expect("check");
    assert!(check.is_clean(), "{:?}", check.problems);

    // The hold and the lock still bind.
    let admin = Principal::admin("dso");
    let delete = |run| RunUpdate { run: Some(run), delete_snapshots: true, ..RunUpdate::default() };
    let on_hold = engine.update_runs(g, &[delete(r1)], &admin).expect_err("held");
    assert_eq!(coldkeep::Error::from(on_hold).kind(), ErrorKind::Refused);
    let locked = engine.update_runs(g, &[delete(r2)], &admin).expect_err("locked");
    assert_eq!(coldkeep::Error::from(locked).kind(), ErrorKind::Refused);
    let shorter = RunUpdate { run: Some(r2), days_to_keep: Some(-3), ..RunUpdate::default() };
    assert!(
        engine.update_runs(g, &[shorter], &admin).is_err(),
        "a Compliance lock cannot be reduced"
    );

    // Ids are not reused, and gc finishes the collection it started.
    let s4 = engine.backup(&other, &BackupOptions::default()).expect("backup").id;
    assert!(snapshots.iter().all(|s| s.id < s4), "{s4} reuses an id");
    clock.advance(2 * 3600 * 1_000_000);
    let second_gc = engine.gc(GcOptions::default()).expect("gc");
    assert!(second_gc.packs_deleted > 0, "{second_gc:?}");
    let target = tmp.path().join("restored-after-gc");
    engine.restore(s2, b"", &target, &RestoreOptions::default()).expect("restore");
    assert_eq!(compare_trees(&v2, &target, Compare::default()), Vec::<String>::new());
    assert!(engine.check(CheckOptions { read_data: true }).expect("check").is_clean());
    let _: Option<PathBuf> = report.old_catalog;
}

/// An older catalog put back (an old copy, say, with its own consistent commit numbers) lacks
/// what the store's journal has: the open is refused before anything is deleted or written, gc
/// cannot run, and a rebuild brings back every snapshot.
#[test]
fn an_older_catalog_put_back_is_refused_and_the_rebuild_brings_everything_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let init = InitOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        ..InitOptions::with_secret(Secret::passphrase(PASSPHRASE))
    };
    let src = tmp.path().join("src");
    Dataset::new(&src, 5).mixed(20, 30_000);
    let engine = Engine::init(&repo, &init).expect("init");
    engine.backup(&src, &BackupOptions::default()).expect("backup 1");
    drop(engine);
    let saved = tmp.path().join("saved");
    std::fs::create_dir(&saved).expect("mkdir");
    copy(&repo.join("catalog"), &saved.join("catalog"));
    copy(&repo.join("commits"), &saved.join("commits"));
    let engine = Engine::open_with(&repo, &opts()).expect("open");
    for seed in [6, 7] {
        Dataset::new(&src, seed).mutate(8);
        engine.backup(&src, &BackupOptions::default()).expect("backup");
    }
    let latest = engine.snapshots().expect("snapshots").last().expect("one").id;
    let v3 = tmp.path().join("v3");
    copy(&src, &v3);
    drop(engine);
    let journal_before = std::fs::read_dir(repo.join("journal")).expect("journal").count();

    std::fs::remove_dir_all(repo.join("catalog")).expect("rm");
    copy(&saved.join("catalog"), &repo.join("catalog"));
    copy(&saved.join("commits"), &repo.join("commits"));
    let refused = Engine::open_with(&repo, &opts()).expect_err("an older catalog");
    assert!(refused.to_string().contains("rebuild-catalog"), "{refused}");
    assert_eq!(coldkeep::Error::from(refused).kind(), ErrorKind::Corrupt);
    let journal_after = std::fs::read_dir(repo.join("journal")).expect("journal").count();
    assert_eq!(journal_after, journal_before, "no journal entry may be deleted");

    let (engine, report) = Engine::rebuild_catalog(&repo, &opts()).expect("rebuild");
    assert_eq!(report.snapshots, 3, "{report:?}");
    let target = tmp.path().join("restored");
    engine.restore(latest, b"", &target, &RestoreOptions::default()).expect("restore");
    assert_eq!(compare_trees(&v3, &target, Compare::default()), Vec::<String>::new());
    assert!(engine.check(CheckOptions { read_data: true }).expect("check").is_clean());
}
