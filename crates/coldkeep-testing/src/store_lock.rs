//! The store-lock suite: DataLocks and legal holds placed in the store itself, on any store
//! that can lock — the in-memory backend with Object Lock in the engine's tests, a real S3
//! bucket with Object Lock in the S3 store's. A Compliance run's objects are retained there
//! until the lock's end, a legal hold is the store's legal hold until the last run that needs it
//! is released, and gc leaves what the store keeps without failing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use coldkeep::backend::{Backend, ErrorKind, ObjectKind, ObjectLock, ObjectName};
use coldkeep::model::{DataLockConfig, DataLockMode, Principal, Retention, RunUpdate, TimeUnit};
use coldkeep::{Engine, GcOptions, InitOptions, KdfParams, KvStore, MemKv, Parts, Secret};

use crate::engine::{backed_up, daily_group, successful_run};
use crate::Dataset;

/// Runs every check on a fresh store from `fresh`, which must be empty and able to lock.
pub fn store_lock_suite(fresh: &dyn Fn() -> Arc<dyn Backend>) {
    type Check = (&'static str, fn(&Arc<dyn Backend>));
    let checks: [Check; 3] = [
        ("compliance_is_retained_in_the_store", compliance_is_retained_in_the_store),
        ("legal_holds_are_the_stores_too", legal_holds_are_the_stores_too),
        ("gc_leaves_what_the_store_keeps", gc_leaves_what_the_store_keeps),
    ];
    for (name, check) in checks {
        eprintln!("store lock suite: {name}");
        check(&fresh());
    }
}

/// A new encrypted repository in `store`, its catalog in memory.
pub fn engine(store: &Arc<dyn Backend>) -> Engine {
    let catalog: Arc<dyn KvStore> = Arc::new(MemKv::new());
    let parts = Parts { store: Arc::clone(store), catalog, location: "memory:locked".into() };
    let opts = InitOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        pack_target_size: 64 << 10,
        ..InitOptions::with_secret(Secret::passphrase("store lock"))
    };
    Engine::init_parts(parts, &opts).expect("init")
}

fn lock(store: &Arc<dyn Backend>) -> &dyn ObjectLock {
    store.object_lock().expect("ask").expect("the store locks")
}

fn names(store: &Arc<dyn Backend>, kind: ObjectKind) -> BTreeSet<ObjectName> {
    store.list(kind).expect("list").into_iter().map(|info| info.name).collect()
}

fn week(lock: Option<DataLockConfig>) -> Retention {
    Retention { unit: TimeUnit::Days, duration: 7, data_lock: lock }
}

/// A Compliance run's objects are retained until the lock's end; an Administrative run's are not.
fn compliance_is_retained_in_the_store(store: &Arc<dyn Backend>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 11).mixed(30, 200_000);
    let engine = engine(store);
    let compliance =
        DataLockConfig { mode: DataLockMode::Compliance, unit: TimeUnit::Days, duration: 2 };
    let g = daily_group(&engine, "locked", &src, week(Some(compliance)));
    let run = successful_run(&engine, g);
    let until = run.retention.data_lock.expect("locked").until.0;

    // Everything a fresh machine needs to read the snapshot back: its packs, the config, the
    // key slots, and the journal including the entry that recorded the run's end.
    let packs = names(store, ObjectKind::Pack);
    assert!(!packs.is_empty());
    let mut needed = packs.clone();
    for kind in [ObjectKind::Config, ObjectKind::Key, ObjectKind::Journal] {
        needed.extend(names(store, kind));
    }
    for name in &needed {
        let retained = lock(store).retained_until(name).expect("retention");
        assert!(retained.is_some_and(|r| r >= until), "{name:?} retained until {retained:?}");
        assert!(!lock(store).legal_hold(name).expect("hold"), "no hold was asked");
    }
    let pack = packs.first().expect("a pack");
    assert_eq!(store.delete(pack).expect_err("retained").kind(), ErrorKind::Denied);

    // A snapshot under an Administrative lock is coldkeep's to keep, not the store's: an
    // administrator may lift it, and a store retention could not be lifted with it.
    let other = tmp.path().join("other");
    Dataset::new(&other, 12).mixed(10, 50_000);
    let admin =
        DataLockConfig { mode: DataLockMode::Administrative, unit: TimeUnit::Days, duration: 2 };
    let h = daily_group(&engine, "administrative", &other, week(Some(admin)));
    successful_run(&engine, h);
    let new_packs: Vec<ObjectName> =
        names(store, ObjectKind::Pack).difference(&packs).cloned().collect();
    assert!(!new_packs.is_empty());
    for name in &new_packs {
        assert_eq!(lock(store).retained_until(name).expect("retention"), None, "{name:?}");
    }
}

/// A legal hold is the store's until the last run that needs it is released.
fn legal_holds_are_the_stores_too(store: &Arc<dyn Backend>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 21).mixed(30, 200_000);
    let engine = engine(store);
    let g = daily_group(&engine, "held", &src, week(None));
    let (first, _) = backed_up(&engine, g);
    let packs = names(store, ObjectKind::Pack);
    for name in &packs {
        assert!(!lock(store).is_locked(name, i64::MAX).expect("lock"), "no lock was asked");
    }

    let dso = Principal::admin("dso");
    let hold =
        |run, on| RunUpdate { run: Some(run), enable_legal_hold: Some(on), ..Default::default() };
    engine.update_runs(g, &[hold(first, true)], &dso).expect("hold");
    for name in &packs {
        assert!(lock(store).legal_hold(name).expect("hold"), "{name:?} held in the store");
    }
    let pack = packs.first().expect("a pack");
    assert_eq!(store.delete(pack).expect_err("held").kind(), ErrorKind::Denied);

    // A second held run of the same data needs the same packs: lifting the first hold leaves
    // the store's hold on them.
    let (second, _) = backed_up(&engine, g);
    engine.update_runs(g, &[hold(second, true)], &dso).expect("hold the second");
    engine.update_runs(g, &[hold(first, false)], &dso).expect("lift the first");
    for name in &packs {
        assert!(lock(store).legal_hold(name).expect("hold"), "{name:?} still needed");
    }
    engine.update_runs(g, &[hold(second, false)], &dso).expect("lift the second");
    for name in &packs {
        assert!(!lock(store).legal_hold(name).expect("hold"), "{name:?} released");
    }
    store.delete(pack).expect("a released pack is the store's to delete again");
}

/// gc neither fails on nor repacks what the store retains, and counts it.
fn gc_leaves_what_the_store_keeps(store: &Arc<dyn Backend>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 31).mixed(30, 200_000);
    let engine = engine(store);
    let g = daily_group(&engine, "gone", &src, week(None));
    let (run, _) = backed_up(&engine, g);
    // Retained by someone else (another writer's lock, an operator in the bucket's console).
    let packs = names(store, ObjectKind::Pack);
    let a_day = coldkeep::model::DAY;
    for name in &packs {
        lock(store).retain_until(name, crate::remote::now().0 + a_day).expect("retain");
    }
    let delete = RunUpdate { run: Some(run), delete_snapshots: true, ..Default::default() };
    engine.update_runs(g, &[delete], &Principal::user("ops")).expect("delete");

    let opts = GcOptions { grace: Duration::ZERO, ..GcOptions::default() };
    let report = engine.gc(opts).expect("gc does not fail on what the store keeps");
    assert_eq!(report.packs_locked_in_store, packs.len() as u64, "{report:?}");
    assert_eq!((report.packs_condemned, report.packs_deleted), (0, 0), "{report:?}");
    assert_eq!(names(store, ObjectKind::Pack), packs);
    let again = engine.gc(opts).expect("again");
    assert_eq!(again.packs_locked_in_store, packs.len() as u64);
}

/// On a store that cannot lock (a directory, a bucket without Object Lock): a Compliance run
/// succeeds, its lock is coldkeep's alone, and coldkeep still refuses to delete it.
pub fn compliance_run_without_a_store_lock(store: &Arc<dyn Backend>) {
    assert!(store.object_lock().expect("ask").is_none(), "a store that cannot lock");
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 41).mixed(10, 50_000);
    let engine = engine(store);
    let compliance =
        DataLockConfig { mode: DataLockMode::Compliance, unit: TimeUnit::Days, duration: 2 };
    let g = daily_group(&engine, "unlockable", &src, week(Some(compliance)));
    let run = successful_run(&engine, g);
    assert!(run.retention.data_lock.is_some());
    let delete = RunUpdate { run: Some(run.id), delete_snapshots: true, ..Default::default() };
    let refused = engine.update_runs(g, &[delete], &Principal::admin("root"));
    assert!(
        matches!(
            refused,
            Err(coldkeep::ProtectError::Refused(coldkeep::Refusal::ComplianceLock { .. }))
        ),
        "{refused:?}"
    );
}
