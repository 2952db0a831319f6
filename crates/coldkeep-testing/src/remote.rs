//! The repository suite for a store of its own (`Engine::init_remote`): what must hold of a
//! repository in a bucket, run against any store — an in-memory one in the engine's tests, a
//! real S3 server in the S3 store's. Two "machines" are two catalog caches in one process.

use std::path::Path;
use std::sync::Arc;

use coldkeep::backend::{Backend, ObjectKind};
use coldkeep::model::{Retention, Usecs};
use coldkeep::{
    BackupOptions, CacheRefresh, CheckOptions, Engine, ErrorKind, FileSearch, GcOptions,
    InitOptions, KdfParams, ManualClock, OpenMode, OpenOptions, Remote, RestoreOptions, Secret,
    SnapshotId,
};

use crate::engine::{backed_up, daily_group};
use crate::{compare_trees, Compare, Dataset};

const PASSPHRASE: &str = "remote suite";
const DAY: i64 = 86_400_000_000;

fn remote(store: &Arc<dyn Backend>, cache: &Path, location: &str) -> Remote {
    Remote { store: Arc::clone(store), cache: cache.to_owned(), location: location.into() }
}

fn opts() -> OpenOptions {
    OpenOptions {
        mode: OpenMode::ReadWrite,
        ..OpenOptions::with_secret(Secret::passphrase(PASSPHRASE))
    }
}

fn open(store: &Arc<dyn Backend>, cache: &Path, location: &str) -> (Engine, CacheRefresh) {
    Engine::open_remote(remote(store, cache, location), &opts())
        .expect("open the remote repository")
}

fn assert_restores(engine: &Engine, snap: SnapshotId, expected: &Path, target: &Path) {
    engine.restore(snap, b"", target, &RestoreOptions::default()).expect("restore");
    let how = Compare { owner: false, ..Compare::default() };
    let diffs = compare_trees(expected, target, how);
    assert!(diffs.is_empty(), "restore of {snap} differs: {diffs:?}");
}

fn found(engine: &Engine, name: &str) -> usize {
    let query = FileSearch { pattern: name.into(), page_size: 100, ..FileSearch::default() };
    engine.search_files(&query).expect("search").files.len()
}

/// The system clock's time, as the tests' stores see it.
pub(crate) fn now() -> Usecs {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    Usecs(i64::try_from(since.expect("after 1970").as_micros()).expect("in range"))
}

/// Runs the suite on `store`, which must hold nothing; `location` names it in messages, and
/// the caches, the source trees and the restores go under `scratch` (an empty directory).
pub fn remote_repository_suite(store: &Arc<dyn Backend>, location: &str, scratch: &Path) {
    let (cache_a, cache_b) = (scratch.join("cache-a"), scratch.join("cache-b"));
    let src = scratch.join("src");
    let mut ds = Dataset::new(&src, 11);
    ds.mixed(30, 200_000);
    ds.file("findme-remote.txt", b"a file to search for");
    let restored = |name: &str| scratch.join("restored").join(name);

    // Machine A creates the repository and backs up.
    let init = InitOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        pack_target_size: 256 << 10,
        ..InitOptions::with_secret(Secret::passphrase(PASSPHRASE))
    };
    let a = Engine::init_remote(remote(store, &cache_a, location), &init).expect("init");
    let first = a.backup(&src, &BackupOptions::default()).expect("backup on a");
    drop(a);
    // Its own cache is current: reopening it indexes nothing (a backup's snapshot is indexed
    // as in a local catalog: by a run, or when asked), so that it costs what a local open does.
    let (a, refresh) = open(store, &cache_a, location);
    assert!(matches!(refresh, CacheRefresh::Current), "{refresh:?}");
    assert_eq!(found(&a, "findme-remote"), 0, "indexed by an open of a current cache");
    drop(a);

    // Machine B has only the store's address and the key: its cache is filled from the store.
    let (b, refresh) = open(store, &cache_b, location);
    assert!(matches!(refresh, CacheRefresh::Filled { .. }), "{refresh:?}");
    assert_eq!(b.snapshots().expect("list").len(), 1);
    assert_restores(&b, first.id, &src, &restored("b-first"));
    assert_eq!(found(&b, "findme-remote"), 1, "indexed for search after the fill");
    ds.mutate(6);
    let second = b.backup(&src, &BackupOptions::default()).expect("incremental backup on b");
    assert!(second.stats.new_bytes < first.stats.new_bytes, "{:?}", second.stats);
    drop(b);

    // A's cache catches up with B's commit instead of starting again.
    let (a, refresh) = open(store, &cache_a, location);
    match refresh {
        CacheRefresh::CaughtUp { journal_entries, packs_indexed } => {
            assert!(journal_entries >= 1 && packs_indexed >= 1, "{refresh:?}");
        }
        other => panic!("a's cache should have caught up: {other:?}"),
    }
    assert_eq!(a.snapshots().expect("list").len(), 2);
    assert_restores(&a, second.id, &src, &restored("a-second"));
    assert_eq!(found(&a, "findme-remote"), 2);

    // Both open at once: the second commit on a stale view is refused and changes nothing.
    let (b, refresh) = open(store, &cache_b, location);
    assert_eq!(refresh, CacheRefresh::Current, "b made the last commit");
    ds.mutate(3);
    let third = a.backup(&src, &BackupOptions::default()).expect("backup on a");
    let stale = b.backup(&src, &BackupOptions::default());
    let err = stale.expect_err("b's view is stale");
    assert_eq!(coldkeep::Error::from(err).kind(), ErrorKind::Conflict);
    assert_eq!(b.snapshots().expect("list").len(), 2, "nothing of b's committed");
    drop(b);
    let (b, _) = open(store, &cache_b, location);
    assert_eq!(b.snapshots().expect("list").len(), 3);
    assert_restores(&b, third.id, &src, &restored("b-third"));
    drop(b);

    // A collection on A (an expired run's snapshot goes, its packs are deleted): B's cache is
    // filled again rather than patched, and everything left restores.
    let clock = Arc::new(ManualClock::new(now()));
    let a = a.with_clock(clock.clone()).expect("clock");
    let mut expiring = Dataset::new(&scratch.join("expiring"), 12);
    expiring.mixed(10, 300_000);
    let group = daily_group(&a, "expiring", &scratch.join("expiring"), Retention::days(1));
    let (_, doomed) = backed_up(&a, group);
    clock.advance(2 * DAY);
    let gc = GcOptions { grace: std::time::Duration::ZERO, ..GcOptions::default() };
    let report = a.gc(gc).expect("gc");
    assert_eq!(report.snapshots_removed, 1, "{report:?}");
    let report = a.gc(gc).expect("gc again");
    assert!(report.packs_deleted > 0, "{report:?}");
    let left: Vec<SnapshotId> = a.snapshots().expect("list").iter().map(|s| s.id).collect();
    assert!(!left.contains(&doomed) && left.len() == 3, "{left:?}");
    drop(a);
    let (b, refresh) = open(store, &cache_b, location);
    assert!(matches!(refresh, CacheRefresh::Filled { .. }), "{refresh:?}");
    assert_eq!(b.snapshots().expect("list").len(), 3);
    let check = b.check(CheckOptions { read_data: true }).expect("check");
    assert!(check.is_clean(), "{check:?}");
    drop(b);

    // The cache deleted: a fresh engine rebuilds it from the store alone and restores
    // byte-exact.
    std::fs::remove_dir_all(&cache_b).expect("delete b's cache");
    let (b, refresh) = open(store, &cache_b, location);
    assert!(matches!(refresh, CacheRefresh::Filled { .. }), "{refresh:?}");
    assert_restores(&b, third.id, &src, &restored("b-rebuilt"));
    let check = b.check(CheckOptions { read_data: true }).expect("check");
    assert!(check.is_clean(), "{check:?}");

    // A flipped byte in a pack (rewritten through the store's own API) is found.
    let packs = store.list(ObjectKind::Pack).expect("list packs");
    let biggest = packs.iter().max_by_key(|p| p.len).expect("a pack");
    let mut bytes = store.get(&biggest.name).expect("get");
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    store.delete(&biggest.name).expect("delete");
    store.put(&biggest.name, &bytes).expect("put");
    drop(b); // its open packs are the bytes it read before
    let (b, refresh) = open(store, &cache_b, location);
    assert_eq!(refresh, CacheRefresh::Current);
    let check = b.check(CheckOptions { read_data: true }).expect("check");
    assert!(!check.is_clean(), "a flipped byte must be found");
}

/// Faults at every store write of a backup into a repository in `store` (which must hold
/// nothing): the store is wrapped in the fault-injecting decorator (`coldkeep::faults`), and a
/// backup of new data is run once per write point it passes with that point failing —
/// refused (`Fail`) or the process dying just after the write took effect (`CrashAfter`: a
/// PUT that reached the bucket whose answer was lost). After each, the repository, opened
/// without faults from the same cache, must pass `check --read-data` and restore every
/// snapshot committed so far byte-exact; and a fresh cache filled from the store alone must
/// list the same snapshots. The points are counted on a backup without faults first.
pub fn remote_faults_suite(store: &Arc<dyn Backend>, location: &str, scratch: &Path) {
    use coldkeep::faults::{FaultMode, FaultPlan, FaultyBackend};

    let cache = scratch.join("cache");
    let src = scratch.join("src");
    Dataset::new(&src, 21).mixed(12, 150_000);
    let init = InitOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        pack_target_size: 128 << 10,
        ..InitOptions::with_secret(Secret::passphrase(PASSPHRASE))
    };
    let engine = Engine::init_remote(remote(store, &cache, location), &init).expect("init");
    let first = engine.backup(&src, &BackupOptions::default()).expect("first backup");
    drop(engine);
    // Committed snapshots and a copy of the tree each holds.
    let mut committed = vec![(first.id, copy_of(&src, &scratch.join("kept-0")))];
    let faulty = |plan: &Arc<FaultPlan>| -> Arc<dyn Backend> {
        Arc::new(FaultyBackend::new(Arc::clone(store), Arc::clone(plan)))
    };
    // New data for every backup, so that each writes packs and a journal entry.
    let mut seed = 100;
    let mut change = |src: &Path| {
        seed += 1;
        Dataset::new(&src.join(format!("new-{seed}")), seed).mixed(4, 120_000);
    };

    let plan = FaultPlan::count();
    change(&src);
    let (engine, _) =
        Engine::open_remote(remote(&faulty(&plan), &cache, location), &opts()).expect("open");
    let counted = engine.backup(&src, &BackupOptions::default()).expect("a backup without faults");
    drop(engine);
    committed.push((counted.id, copy_of(&src, &scratch.join("kept-1"))));
    let points = plan.passed();
    assert!(points >= 3, "a backup passes only {points} store writes: {:?}", plan.points());
    eprintln!("remote faults suite on {location}: {points} store writes × 2 modes");

    for n in 1..=points {
        for mode in [FaultMode::Fail, FaultMode::CrashAfter] {
            let context = format!("{mode:?} at store write {n} of {points}");
            change(&src);
            let plan = FaultPlan::at(n, mode);
            let outcome = Engine::open_remote(remote(&faulty(&plan), &cache, location), &opts())
                .map_err(|e| e.to_string())
                .and_then(|(engine, _)| {
                    engine.backup(&src, &BackupOptions::default()).map_err(|e| e.to_string())
                });
            match outcome {
                Ok(snap) => {
                    // This backup passed fewer points than the counted one: nothing failed.
                    assert!(!plan.tripped(), "{context}: the fault was swallowed");
                    let kept = scratch.join(format!("kept-{}", committed.len()));
                    committed.push((snap.id, copy_of(&src, &kept)));
                }
                Err(e) => assert!(plan.tripped(), "{context}: failed without the fault: {e}"),
            }
            let (engine, _) = open(store, &cache, location);
            let report = engine.check(CheckOptions { read_data: true }).expect("check");
            assert!(report.problems.is_empty(), "{context}: {:?}", report.problems);
            let listed: Vec<SnapshotId> =
                engine.snapshots().expect("list").iter().map(|s| s.id).collect();
            for (id, _) in &committed {
                assert!(listed.contains(id), "{context}: snapshot {id} lost");
            }
            // A backup whose answer was lost may have committed: it is there, whole.
            let restored = scratch.join(format!("restored-{n}-{mode:?}"));
            let (last, tree) = committed.last().expect("one at least");
            assert_restores(&engine, *last, tree, &restored);
            drop(engine);
        }
    }

    // Every snapshot restores, and the store alone gives a fresh cache the same list.
    let (engine, _) = open(store, &scratch.join("fresh-cache"), location);
    let listed: Vec<SnapshotId> = engine.snapshots().expect("list").iter().map(|s| s.id).collect();
    for (i, (id, tree)) in committed.iter().enumerate() {
        assert!(listed.contains(id), "snapshot {id} missing from a fresh cache");
        assert_restores(&engine, *id, tree, &scratch.join(format!("final-{i}")));
    }
}

/// A copy of `src` at `to` (a snapshot's expected content, kept while `src` changes).
fn copy_of(src: &Path, to: &Path) -> std::path::PathBuf {
    let status =
        std::process::Command::new("cp").arg("-a").arg(src).arg(to).status().expect("run cp");
    assert!(status.success(), "cp -a {} {}", src.display(), to.display());
    to.to_owned()
}
