//! Recoveries as durable tasks: RecoverFiles into a directory that already has content (skip or
//! overwrite, never through a symlink), DownloadFilesAndFolders as a tar archive, cancel, and
//! the seed's filters.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use coldkeep::model::{Recovery, RecoveryAction, RecoveryParams, RunStatus, SnapshotId};
use coldkeep::{BackupOptions, Engine, InitOptions, RecoveryFilter, RecoveryRequest};
use coldkeep_testing::{Dataset, Rng};

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    engine: Engine,
    snap: SnapshotId,
}

/// A snapshot of `a.txt`, `sub/{b.txt, c.txt}` and `big.bin` (8 MiB of noise).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let mut ds = Dataset::new(&root.join("src"), 4);
    ds.file("a.txt", b"snapshot a\n");
    ds.file("sub/b.txt", b"snapshot b\n");
    ds.file("sub/c.txt", b"snapshot c\n");
    let big = ds.rng().bytes(8 << 20, false);
    ds.file("big.bin", &big);
    let engine = Engine::init(&root.join("repo"), &InitOptions::unencrypted()).expect("init");
    let snap = engine.backup(&ds.root, &BackupOptions::default()).expect("backup").id;
    Fixture { _dir: dir, root, engine, snap }
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn recover(f: &Fixture, params: RecoveryParams) -> Recovery {
    let created = f.engine.create_recovery(RecoveryRequest { name: "r".into(), params });
    let created = created.expect("create");
    assert_eq!(created.status, RunStatus::Accepted);
    f.engine.wait_recovery(created.id).expect("wait")
}

/// A target with content of its own: a different `a.txt`, `sub/keep.txt`, and `sub/b.txt` as a
/// symlink to a file outside the target.
fn busy_target(f: &Fixture, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let target = f.root.join(name);
    std::fs::create_dir_all(target.join("sub")).expect("mkdir");
    std::fs::write(target.join("a.txt"), b"mine\n").expect("write");
    std::fs::write(target.join("sub/keep.txt"), b"keep\n").expect("write");
    let outside = f.root.join(format!("{name}-outside.txt"));
    std::fs::write(&outside, b"outside\n").expect("write");
    std::os::unix::fs::symlink(&outside, target.join("sub/b.txt")).expect("symlink");
    (target, outside)
}

#[test]
fn recover_files_skips_or_overwrites_what_exists_and_never_writes_through_a_symlink() {
    let f = fixture();
    let paths = vec![b"a.txt".to_vec(), b"sub".to_vec()];
    let read = |p: &Path| std::fs::read(p).expect("read");

    let (target, outside) = busy_target(&f, "skip");
    let params = RecoveryParams::RecoverFiles {
        snapshot: f.snap,
        paths: paths.clone(),
        target: bytes(&target),
        overwrite_existing: false,
    };
    let done = recover(&f, params);
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.message);
    assert_eq!(done.stats.skipped, 2, "a.txt and sub/b.txt existed");
    assert_eq!(read(&target.join("a.txt")), b"mine\n");
    assert_eq!(read(&target.join("sub/c.txt")), b"snapshot c\n", "new files are added");
    assert_eq!(read(&target.join("sub/keep.txt")), b"keep\n");
    assert!(target.join("sub/b.txt").symlink_metadata().expect("b").file_type().is_symlink());
    assert_eq!(read(&outside), b"outside\n");

    let (target, outside) = busy_target(&f, "overwrite");
    let params = RecoveryParams::RecoverFiles {
        snapshot: f.snap,
        paths,
        target: bytes(&target),
        overwrite_existing: true,
    };
    let done = recover(&f, params);
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.message);
    assert_eq!(done.stats.skipped, 0);
    assert_eq!(read(&target.join("a.txt")), b"snapshot a\n");
    let b = target.join("sub/b.txt");
    assert!(b.symlink_metadata().expect("b").is_file(), "the symlink itself was replaced");
    assert_eq!(read(&b), b"snapshot b\n");
    assert_eq!(read(&outside), b"outside\n", "nothing was written through the symlink");
    assert_eq!(read(&target.join("sub/keep.txt")), b"keep\n", "directories are merged");
    let leftovers: Vec<_> =
        std::fs::read_dir(&target).expect("ls").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no staging directory is left: {leftovers:?}");
}

#[test]
fn download_files_and_folders_writes_a_tar_of_the_chosen_paths() {
    let f = fixture();
    let output = f.root.join("download.tar");
    let params = RecoveryParams::DownloadFilesAndFolders {
        snapshot: f.snap,
        paths: vec![b"sub".to_vec(), b"big.bin".to_vec()],
        output: bytes(&output),
    };
    let done = recover(&f, params);
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.message);
    assert_eq!(done.stats.files, 3);
    let mut archive = tar::Archive::new(std::fs::File::open(&output).expect("open"));
    let mut seen = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("read");
        let original = std::fs::read(f.root.join("src").join(&name));
        if entry.header().entry_type().is_file() {
            assert!(content == original.expect("original"), "{name} differs");
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen, ["big.bin", "sub", "sub/b.txt", "sub/c.txt"]);

    // The same archive, streamed straight from the engine.
    let mut streamed = Vec::new();
    let paths = [b"sub".to_vec(), b"big.bin".to_vec()];
    f.engine.download_files(f.snap, &paths, &mut streamed).expect("stream");
    assert!(streamed == std::fs::read(&output).expect("read"));

    // An existing output is refused before anything starts.
    let again = RecoveryParams::DownloadFilesAndFolders {
        snapshot: f.snap,
        paths: vec![b"sub".to_vec()],
        output: bytes(&output),
    };
    let refused = f.engine.create_recovery(RecoveryRequest { name: "again".into(), params: again });
    assert!(matches!(refused, Err(coldkeep::ProtectError::InvalidRequest(_))));
}

#[test]
fn recoveries_are_listed_with_filters_and_a_canceled_one_ends_canceled() {
    let f = fixture();
    // A large file, so that the recovery is still running when the cancel comes.
    let big = f.root.join("big");
    let mut rng = Rng::new(8);
    Dataset::new(&big, 5).file("huge.bin", &rng.bytes(160 << 20, false));
    let snap = f.engine.backup(&big, &BackupOptions::default()).expect("backup").id;
    let params = RecoveryParams::RecoverFiles {
        snapshot: snap,
        paths: vec![b"huge.bin".to_vec()],
        target: bytes(&f.root.join("huge-target")),
        overwrite_existing: false,
    };
    let created =
        f.engine.create_recovery(RecoveryRequest { name: "huge".into(), params }).expect("create");
    f.engine.cancel_recovery(created.id).expect("cancel");
    let canceled = f.engine.wait_recovery(created.id).expect("wait");
    assert_eq!(canceled.status, RunStatus::Canceled, "{:?}", canceled.message);
    assert!(!f.root.join("huge-target/huge.bin").exists(), "nothing placed");
    assert!(matches!(
        f.engine.cancel_recovery(created.id),
        Err(coldkeep::ProtectError::RecoveryNotActive { .. })
    ));

    let small = RecoveryParams::DownloadFilesAndFolders {
        snapshot: f.snap,
        paths: vec![b"a.txt".to_vec()],
        output: bytes(&f.root.join("a.tar")),
    };
    let downloaded = recover(&f, small);
    let ids = |filter: RecoveryFilter| -> Vec<_> {
        f.engine.recoveries(&filter).expect("list").into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(RecoveryFilter::default()), [created.id, downloaded.id]);
    let by_action = RecoveryFilter {
        recovery_actions: vec![RecoveryAction::DownloadFilesAndFolders],
        ..RecoveryFilter::default()
    };
    assert_eq!(ids(by_action), [downloaded.id]);
    let by_status =
        RecoveryFilter { status: vec![RunStatus::Canceled], ..RecoveryFilter::default() };
    assert_eq!(ids(by_status), [created.id]);
}

/// A symlink where a recovered directory goes is replaced (with --overwrite), and a path that
/// fails does not stop the others (issue 13, item 6).
#[test]
fn a_symlink_where_a_directory_goes_is_replaced_and_one_failure_stops_nothing() {
    let f = fixture();
    let target = f.root.join("t");
    let outside = f.root.join("elsewhere");
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, target.join("sub")).expect("symlink");
    let params = RecoveryParams::RecoverFiles {
        snapshot: f.snap,
        paths: vec![b"missing".to_vec(), b"sub".to_vec(), b"a.txt".to_vec()],
        target: bytes(&target),
        overwrite_existing: true,
    };
    let done = recover(&f, params);
    assert_eq!(done.status, RunStatus::Failed);
    let message = done.message.expect("message");
    assert!(
        message.contains("1 of 3 paths could not be recovered") && message.contains("missing"),
        "{message}"
    );
    let sub = target.join("sub");
    assert!(sub.symlink_metadata().expect("sub").is_dir(), "the symlink was replaced");
    assert_eq!(std::fs::read(sub.join("b.txt")).expect("b"), b"snapshot b\n");
    assert_eq!(std::fs::read(target.join("a.txt")).expect("a"), b"snapshot a\n");
    assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0, "nothing went through it");
    let left: Vec<_> =
        std::fs::read_dir(&target).expect("ls").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(left.len(), 2, "no staging directory is left: {left:?}");
}
