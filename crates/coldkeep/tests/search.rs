//! Indexed-file search: runs index their snapshots; names are found by substring and glob,
//! case-insensitively, filtered by group, object and time, a page at a time with a cookie; a
//! deleted snapshot's files are no longer found.

use std::collections::BTreeSet;
use std::path::Path;

use coldkeep::model::{
    GroupId, GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, RunRequest,
    RunStatus, RunType, RunUpdate, Schedule, TimeUnit,
};
use coldkeep::{BackupOptions, Engine, FileSearch, InitOptions, ReadError};
use coldkeep_testing::Dataset;

fn tree(root: &Path, prefix: &str) {
    let mut ds = Dataset::new(root, 1);
    for i in 0..40 {
        ds.file(format!("src/{prefix}_module_{i}.rs"), b"fn main() {}\n");
    }
    ds.file("README.md", b"# readme\n");
    ds.file("docs/Design-Notes.TXT", b"notes\n");
}

fn group(engine: &Engine, name: &str, path: &Path) -> GroupId {
    let every = Schedule { unit: TimeUnit::Days, frequency: 1 };
    let policy = engine.create_policy(PolicySpec::incremental(name, every, Retention::days(7)));
    let object = ObjectSpec::new(name, ObjectKind::DirectoryTree, path);
    let spec = GroupSpec::new(name, policy.expect("policy").id, vec![object]);
    engine.create_group(spec).expect("group").id
}

fn run(engine: &Engine, g: GroupId) -> coldkeep::model::Run {
    let started = engine.start_run(g, RunRequest::new(RunType::Regular)).expect("start");
    let done = engine.wait_run(g, started.id).expect("wait");
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.message);
    done
}

fn names(engine: &Engine, q: &FileSearch) -> Vec<String> {
    let found = engine.search_files(q).expect("search");
    found.files.iter().map(|f| String::from_utf8_lossy(&f.path).into_owned()).collect()
}

fn query(pattern: &str) -> FileSearch {
    FileSearch { pattern: pattern.into(), page_size: 1000, ..FileSearch::default() }
}

#[test]
fn names_are_found_by_pattern_and_filters_and_paged_with_a_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::init(&dir.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let (a, b) = (dir.path().join("alpha"), dir.path().join("beta"));
    tree(&a, "alpha");
    tree(&b, "beta");
    let (ga, gb) = (group(&engine, "a", &a), group(&engine, "b", &b));
    let (ra, rb) = (run(&engine, ga), run(&engine, gb));

    assert_eq!(names(&engine, &query("readme")), ["README.md", "README.md"], "case-insensitive");
    assert_eq!(names(&engine, &query("design-notes")), ["docs/Design-Notes.TXT"; 2]);
    assert_eq!(names(&engine, &query("alpha_module_3")).len(), 11, "3 and 30..39, in alpha");
    assert_eq!(names(&engine, &query("*_module_1?.rs")).len(), 20, "10..19 in both trees");
    assert_eq!(names(&engine, &query("*.md")).len(), 2);
    assert_eq!(names(&engine, &query("*.m?")).len(), 2, "a pattern without trigrams scans");
    assert_eq!(names(&engine, &query("src")).len(), 2, "directories are indexed too");
    assert!(names(&engine, &query("gamma")).is_empty());

    let only_b = FileSearch { group_ids: vec![gb], ..query("module") };
    assert!(names(&engine, &only_b).iter().all(|n| n.contains("beta")));
    assert_eq!(names(&engine, &only_b).len(), 40);
    let object_a = FileSearch { object_ids: vec![ra.objects[0].object], ..query("module") };
    assert!(names(&engine, &object_a).iter().all(|n| n.contains("alpha")));

    // Pages of 7: every match once, the count on every page, no cookie on the last.
    let mut seen = BTreeSet::new();
    let mut q = FileSearch { page_size: 7, ..query("module") };
    let mut pages = 0;
    loop {
        let page = engine.search_files(&q).expect("page");
        assert_eq!(page.count, 80);
        pages += 1;
        for f in &page.files {
            assert!(seen.insert((f.snapshot, f.path.clone())), "seen twice");
        }
        match page.cookie {
            Some(c) => q.cookie = Some(c),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (80, 12));
    let bad = FileSearch { cookie: Some("not-a-cookie".into()), ..query("module") };
    assert!(matches!(engine.search_files(&bad), Err(ReadError::BadCookie(_))));

    // Indexing is done once; a deleted snapshot's files are gone from the results.
    assert_eq!(engine.index_snapshot(rb.objects[0].snapshot.expect("snap")).expect("index"), 0);
    let delete = RunUpdate { run: Some(ra.id), delete_snapshots: true, ..RunUpdate::default() };
    engine.update_runs(ga, &[delete], &Principal::user("ops")).expect("delete");
    assert_eq!(names(&engine, &query("readme")), ["README.md"]);
    // Garbage collection gives the deleted snapshot's index entries back.
    let purged = engine.gc(coldkeep::GcOptions::default()).expect("gc").index_entries_purged;
    assert!(purged > 40, "{purged}");
    assert_eq!(names(&engine, &query("readme")), ["README.md"]);
    assert_eq!(engine.gc(coldkeep::GcOptions::default()).expect("gc").index_entries_purged, 0);

    // A CLI-style backup is searchable once indexed.
    let snap = engine.backup(&a, &BackupOptions::default()).expect("backup").id;
    assert_eq!(names(&engine, &query("readme")).len(), 1);
    assert!(engine.index_snapshot(snap).expect("index") > 40);
    assert_eq!(names(&engine, &query("readme")).len(), 2);
}
