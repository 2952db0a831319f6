//! A repository opened read-only: everything a reader needs works, nothing in the repository
//! changes, writes are refused with a typed error before they touch anything, and readers
//! share the repository with each other but not with a writer.

use std::path::Path;
use std::time::SystemTime;

use coldkeep::model::{PolicySpec, Retention, Schedule, TimeUnit};
use coldkeep::{
    BackupError, BackupOptions, CatalogError, CheckOptions, Engine, GcError, GcOptions,
    InitOptions, KvError, OpenError, ProtectError, ReadError, RestoreOptions,
};
use coldkeep_testing::{compare_trees, Compare, Dataset};

/// Every file under `dir` except RocksDB's message logs (`LOG*`, which even a read-only open
/// may start), with its length and modification time.
fn files_under(dir: &Path) -> Vec<(String, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("list") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else if !entry.file_name().to_string_lossy().starts_with("LOG") {
                let rel = entry.path().strip_prefix(dir).expect("under dir").to_owned();
                out.push((rel.display().to_string(), meta.len(), meta.modified().expect("mtime")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_read_only_repository_reads_everything_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 7);
    data.mixed(60, 50_000);
    data.odd_metadata();
    let repo = tmp.path().join("repo");
    let snap = {
        let engine = Engine::init(&repo, &InitOptions::unencrypted()).expect("init");
        let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
        engine.index_snapshot(snap.id).expect("index");
        snap
    };
    let before = files_under(&repo);

    let engine = Engine::open_read_only(&repo).expect("open read-only");
    assert!(engine.is_read_only());
    // A second reader at the same time.
    let other = Engine::open_read_only(&repo).expect("second reader");
    assert_eq!(other.snapshots().expect("snapshots").len(), 1);
    drop(other);

    assert_eq!(engine.snapshots().expect("snapshots")[0].id, snap.id);
    assert!(!engine.list(snap.id, b"").expect("list").is_empty());
    let report = engine.check(CheckOptions { read_data: true }).expect("check");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(engine.stats().expect("stats").snapshots, 1);
    let target = tmp.path().join("restored");
    engine.restore(snap.id, b"", &target, &RestoreOptions::default()).expect("restore");
    assert_eq!(compare_trees(&src, &target, Compare::default()), Vec::<String>::new());
    engine.trusted_now().expect("the trusted time is read, not persisted");

    // Writes are refused, typed, before anything is written.
    let backup = engine.backup(&src, &BackupOptions::default());
    assert!(
        matches!(backup, Err(BackupError::Catalog(CatalogError::Kv(KvError::ReadOnly { .. })))),
        "{backup:?}"
    );
    let gc = engine.gc(GcOptions::default());
    assert!(
        matches!(gc, Err(GcError::Catalog(CatalogError::Kv(KvError::ReadOnly { .. })))),
        "{gc:?}"
    );
    let index = engine.index_snapshot(snap.id);
    assert!(
        matches!(index, Err(ReadError::Catalog(CatalogError::Kv(KvError::ReadOnly { .. })))),
        "{index:?}"
    );
    let daily = Schedule { unit: TimeUnit::Days, frequency: 1 };
    let policy = engine.create_policy(PolicySpec::incremental("daily", daily, Retention::days(7)));
    assert!(
        matches!(policy, Err(ProtectError::Catalog(CatalogError::Kv(KvError::ReadOnly { .. })))),
        "{policy:?}"
    );
    drop(engine);

    assert_eq!(files_under(&repo), before, "a read-only engine changed the repository");
}

#[test]
fn readers_exclude_writers_and_writers_exclude_readers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    drop(Engine::init(&repo, &InitOptions::unencrypted()).expect("init"));

    let reader = Engine::open_read_only(&repo).expect("reader");
    assert!(matches!(Engine::open(&repo), Err(OpenError::Busy(_))));
    drop(reader);

    let writer = Engine::open(&repo).expect("writer");
    assert!(matches!(Engine::open_read_only(&repo), Err(OpenError::Busy(_))));
    drop(writer);
    Engine::open_read_only(&repo).expect("reader after the writer");
}
