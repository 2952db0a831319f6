//! An engine built from a store and a catalog the program gives (`Parts`) instead of a
//! directory: here an in-memory repository, through the same data path and control plane as
//! one on disk — backups, restores, runs, gc, check, the lock, and a catalog rebuilt from the
//! store alone.

use std::sync::Arc;

use coldkeep::backend::{Backend, MemoryBackend};
use coldkeep::model::{Retention, RunType};
use coldkeep::{
    BackupOptions, CheckOptions, Engine, ErrorKind, GcOptions, InitError, InitOptions, KdfParams,
    KvStore, MemKv, OpenError, OpenMode, OpenOptions, Parts, RestoreOptions, Secret,
};
use coldkeep_testing::engine::{backed_up, daily_group, finished_run};
use coldkeep_testing::{compare_trees, Compare, Dataset};

const PASSPHRASE: &str = "parts test";

fn init_opts() -> InitOptions {
    InitOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        pack_target_size: 256 << 10,
        ..InitOptions::with_secret(Secret::passphrase(PASSPHRASE))
    }
}

fn open_opts(mode: OpenMode) -> OpenOptions {
    OpenOptions { mode, ..OpenOptions::with_secret(Secret::passphrase(PASSPHRASE)) }
}

fn parts(store: &Arc<dyn Backend>, catalog: &Arc<dyn KvStore>) -> Parts {
    Parts { store: Arc::clone(store), catalog: Arc::clone(catalog), location: "memory:test".into() }
}

#[test]
fn an_in_memory_repository_backs_up_restores_checks_and_locks_like_one_on_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut ds = Dataset::new(&src, 5);
    ds.mixed(40, 300_000);
    let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let catalog: Arc<dyn KvStore> = Arc::new(MemKv::new());

    let engine = Engine::init_parts(parts(&store, &catalog), &init_opts()).expect("init");
    assert_eq!(engine.path(), std::path::Path::new("memory:test"));
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
    assert!(snap.stats.new_bytes > 0);
    // One writer or many readers, as for a directory.
    let busy = Engine::open_parts(parts(&store, &catalog), &open_opts(OpenMode::ReadWrite));
    assert!(matches!(busy, Err(OpenError::Busy(_))), "{busy:?}");
    let busy = Engine::open_parts(parts(&store, &catalog), &open_opts(OpenMode::ReadOnly));
    assert!(matches!(busy, Err(OpenError::Busy(_))), "{busy:?}");
    drop(engine);

    let engine =
        Engine::open_parts(parts(&store, &catalog), &open_opts(OpenMode::ReadWrite)).expect("open");
    assert_eq!(engine.snapshots().expect("list").len(), 1);
    let target = tmp.path().join("restored");
    engine.restore(snap.id, b"", &target, &RestoreOptions::default()).expect("restore");
    let how = Compare { owner: false, ..Compare::default() };
    assert_eq!(compare_trees(&src, &target, how), Vec::<String>::new());
    let report = engine.check(CheckOptions { read_data: true }).expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Nothing of the repository went to disk: the temporary directory holds what the test made.
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    assert_eq!(names, ["restored", "src"]);
    drop(engine);

    // Readers share it.
    let a = Engine::open_parts(parts(&store, &catalog), &open_opts(OpenMode::ReadOnly)).expect("a");
    let b = Engine::open_parts(parts(&store, &catalog), &open_opts(OpenMode::ReadOnly)).expect("b");
    assert_eq!(b.snapshots().expect("list"), a.snapshots().expect("list"));
    let wrong = OpenOptions::with_secret(Secret::passphrase("not it"));
    drop((a, b));
    let wrong = Engine::open_parts(parts(&store, &catalog), &wrong);
    assert_eq!(wrong.expect_err("a wrong key").kind(), ErrorKind::Refused);
}

#[test]
fn runs_and_gc_work_on_parts_and_a_lost_catalog_is_rebuilt_from_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut ds = Dataset::new(&src, 9);
    ds.mixed(30, 200_000);
    let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let catalog: Arc<dyn KvStore> = Arc::new(MemKv::new());
    let engine = Engine::init_parts(parts(&store, &catalog), &init_opts()).expect("init");
    let group = daily_group(&engine, "docs", &src, Retention::days(7));
    let (_, first) = backed_up(&engine, group);
    ds.mutate(10);
    let second = finished_run(&engine, group, RunType::Regular);
    let second = second.objects[0].snapshot.expect("snapshot");
    let before = engine.snapshots().expect("list");
    let gc = engine.gc(GcOptions::default()).expect("gc");
    assert_eq!(gc.snapshots_removed, 0, "nothing has expired");
    drop(engine);

    // A new, empty catalog is not taken for an empty repository.
    let fresh: Arc<dyn KvStore> = Arc::new(MemKv::new());
    let refused = Engine::open_parts(parts(&store, &fresh), &open_opts(OpenMode::ReadWrite));
    let refused = refused.expect_err("an empty catalog over a repository's store");
    assert_eq!(refused.kind(), ErrorKind::Corrupt, "{refused}");
    assert!(refused.to_string().contains("rebuild-catalog"), "{refused}");

    // Rebuilt into it from the store alone, it holds every snapshot and group again.
    let (engine, report) =
        Engine::rebuild_catalog_parts(parts(&store, &fresh), &open_opts(OpenMode::ReadWrite))
            .expect("rebuild");
    assert_eq!(report.snapshots, 2);
    assert!(report.journal_entries > 0 && report.packs_indexed > 0, "{report:?}");
    assert_eq!(engine.snapshots().expect("list"), before);
    assert_eq!(engine.group(group).expect("group").id, group);
    let report = engine.check(CheckOptions { read_data: true }).expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let target = tmp.path().join("second");
    engine.restore(second, b"", &target, &RestoreOptions::default()).expect("restore");
    let how = Compare { owner: false, ..Compare::default() };
    assert_eq!(compare_trees(&src, &target, how), Vec::<String>::new());
    engine
        .restore(first, b"", &tmp.path().join("first"), &RestoreOptions::default())
        .expect("first");
    drop(engine);

    // A catalog that holds records is never rebuilt into.
    let again =
        Engine::rebuild_catalog_parts(parts(&store, &fresh), &open_opts(OpenMode::ReadWrite));
    let again = again.expect_err("a catalog that is not empty");
    assert!(matches!(again, OpenError::CatalogNotEmpty(_)), "{again:?}");
    assert_eq!(again.kind(), ErrorKind::InvalidInput);
}

#[test]
fn parts_without_a_repository_are_told_apart_from_parts_with_one() {
    let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let catalog: Arc<dyn KvStore> = Arc::new(MemKv::new());
    let none = Engine::open_parts(parts(&store, &catalog), &open_opts(OpenMode::ReadWrite));
    assert!(matches!(none, Err(OpenError::NotARepository(_))), "{none:?}");
    let engine = Engine::init_parts(parts(&store, &catalog), &init_opts()).expect("init");
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::write(src.path().join("one"), b"one file, one snapshot").expect("write");
    engine.backup(src.path(), &BackupOptions::default()).expect("backup");
    drop(engine);
    // One journal entry beyond an empty catalog is the store's history, never a batch that
    // did not commit: it is not deleted, and the catalog is refused.
    let other: Arc<dyn KvStore> = Arc::new(MemKv::new());
    let refused = Engine::open_parts(parts(&store, &other), &open_opts(OpenMode::ReadWrite));
    assert_eq!(refused.expect_err("an empty catalog").kind(), ErrorKind::Corrupt);
    let (engine, _) =
        Engine::rebuild_catalog_parts(parts(&store, &other), &open_opts(OpenMode::ReadWrite))
            .expect("rebuild");
    assert_eq!(engine.snapshots().expect("list").len(), 1);
    drop(engine);
    let twice = Engine::init_parts(parts(&store, &other), &init_opts());
    assert!(matches!(twice, Err(InitError::AlreadyExists(_))), "{twice:?}");
    // The in-memory constructor makes a new repository's parts.
    let engine = Engine::init_parts(Parts::in_memory("scratch"), &InitOptions::unencrypted());
    assert!(engine.expect("init in memory").snapshots().expect("list").is_empty());
}
