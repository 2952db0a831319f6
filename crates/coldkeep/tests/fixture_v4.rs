//! A repository of format 4, made by an earlier build and committed
//! (`tests/fixtures/repo-v4/`), still opens, restores byte-exact and keeps its legal hold.
//!
//! The fixture holds the repository's objects only, as a copy by any tool would: config, key
//! slot, packs and journal, without catalog (rebuilt here, which is also what a copy to a new
//! machine needs), lock or empty directories. Regenerate it (only when the format changes, with
//! a new fixture directory and a version history entry in docs/FORMAT.md) with
//! `COLDKEEP_WRITE_FIXTURE=1 cargo nextest run -p coldkeep --test fixture_v4`.

use std::path::{Path, PathBuf};

use coldkeep::model::{
    GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, RunRequest, RunStatus,
    RunType, RunUpdate, Schedule, TimeUnit,
};
use coldkeep::{
    BackupOptions, CheckOptions, Engine, InitOptions, KdfParams, OpenOptions, RestoreOptions,
    Secret,
};

const PASSPHRASE: &str = "coldkeep fixture, format 4";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v4")
}

/// The source tree at version 1 or 2: a few files whose bytes the test knows.
fn content(version: u8) -> Vec<(&'static str, Vec<u8>)> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..60_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut files = vec![
        ("README.txt", b"coldkeep fixture: format 4\n".to_vec()),
        ("data/noise.bin", noise),
        ("data/lines.txt", (0..2000).flat_map(|i| format!("line {i}\n").into_bytes()).collect()),
    ];
    if version == 2 {
        files[0].1 = b"coldkeep fixture: format 4, second version\n".to_vec();
        files.push(("data/new.txt", b"added in version 2\n".to_vec()));
    }
    files
}

fn write_tree(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
}

/// Copies the repository's objects (every regular file but the catalog, lock and commits).
fn copy_objects(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let name = entry.file_name();
        let name = name.to_str().expect("utf-8");
        if ["catalog", "lock", "commits", "tmp"].contains(&name) || name.starts_with("catalog.") {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(name));
        if entry.file_type().expect("type").is_dir() {
            copy_objects(&src, &dst);
        } else {
            std::fs::create_dir_all(to).expect("mkdir");
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// Writes the committed fixture (see the module documentation).
fn write_the_fixture() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let repo = tmp.path().join("repo");
    let init = InitOptions {
        pack_target_size: 64 << 10,
        kdf: KdfParams::INSECURE_FOR_TESTS,
        ..InitOptions::with_secret(Secret::passphrase(PASSPHRASE))
    };
    let engine = Engine::init(&repo, &init).expect("init");
    write_tree(&src, &content(1));
    let daily = Schedule { unit: TimeUnit::Days, frequency: 1 };
    let policy = engine
        .create_policy(PolicySpec::incremental("fixture", daily, Retention::days(30)))
        .expect("policy");
    let object = ObjectSpec::new("src", ObjectKind::DirectoryTree, &src);
    let group =
        engine.create_group(GroupSpec::new("fixture", policy.id, vec![object])).expect("group");
    let run = engine.start_run(group.id, RunRequest::new(RunType::Regular)).expect("run");
    let run = engine.wait_run(group.id, run.id).expect("wait");
    assert_eq!(run.status, RunStatus::Succeeded);
    let hold =
        RunUpdate { run: Some(run.id), enable_legal_hold: Some(true), ..RunUpdate::default() };
    engine.update_runs(group.id, &[hold], &Principal::admin("dso")).expect("hold");
    std::fs::remove_dir_all(&src).expect("clear");
    write_tree(&src, &content(2));
    engine.backup(&src, &BackupOptions::default()).expect("backup");
    drop(engine);
    let out = fixture_dir();
    let _ = std::fs::remove_dir_all(&out);
    copy_objects(&repo, &out);
    eprintln!("fixture written to {}", out.display());
}

#[test]
fn a_format_4_repository_made_by_an_earlier_build_opens_and_restores() {
    if std::env::var_os("COLDKEEP_WRITE_FIXTURE").is_some() {
        write_the_fixture();
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    copy_objects(&fixture_dir(), &repo);
    let config = std::fs::read(repo.join("config")).expect("the fixture has its config");
    assert_eq!(&config[8..12], &4u32.to_le_bytes(), "a format 4 config");
    let opts = OpenOptions::with_secret(Secret::passphrase(PASSPHRASE));
    let (engine, report) = Engine::rebuild_catalog(&repo, &opts).expect("rebuild");
    assert_eq!(report.snapshots, 2, "{report:?}");
    assert!(report.packs_unreadable.is_empty());
    let snapshots = engine.snapshots().expect("snapshots");
    for (snap, version) in snapshots.iter().zip([1, 2]) {
        let target = tmp.path().join(format!("restored-{version}"));
        engine.restore(snap.id, b"", &target, &RestoreOptions::default()).expect("restore");
        for (rel, bytes) in content(version) {
            assert_eq!(std::fs::read(target.join(rel)).expect("restored file"), bytes, "{rel}");
        }
        let expected = tmp.path().join(format!("expected-{version}"));
        write_tree(&expected, &content(version));
        let files = |dir: &Path| {
            let mut out = Vec::new();
            let mut stack = vec![dir.to_owned()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).expect("dir").flatten() {
                    if e.file_type().expect("type").is_dir() {
                        stack.push(e.path());
                    } else {
                        out.push(e.path().strip_prefix(dir).expect("under").to_owned());
                    }
                }
            }
            out.sort();
            out
        };
        assert_eq!(files(&target), files(&expected), "nothing more, nothing less");
    }
    let check = engine.check(CheckOptions { read_data: true }).expect("check");
    assert!(check.is_clean(), "{:?}", check.problems);
    // The legal hold the earlier build placed still binds.
    let group = engine.groups(&coldkeep::GroupFilter::default()).expect("groups")[0].group.id;
    let runs = engine.runs(group, &coldkeep::RunFilter::default()).expect("runs");
    assert!(runs[0].retention.legal_hold);
    let delete =
        RunUpdate { run: Some(runs[0].id), delete_snapshots: true, ..RunUpdate::default() };
    assert!(engine.update_runs(group, &[delete], &Principal::admin("dso")).is_err());
    // A wrong passphrase opens nothing.
    drop(engine);
    let wrong = OpenOptions::with_secret(Secret::passphrase("not it"));
    assert!(Engine::open_with(&repo, &wrong).is_err());
}
