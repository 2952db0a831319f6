//! Depth does not matter (issue 13, item 5): a tree whose paths are far longer than `PATH_MAX`
//! is backed up whole and restored under a long target path, because backup and restore walk
//! by directory descriptors, not by full paths.

use std::os::fd::OwnedFd;

use coldkeep::{BackupOptions, Engine, InitOptions, RestoreOptions};
use rustix::fs::{Mode, OFlags};

const DEPTH: usize = 2_000;

fn open_dir(at: &OwnedFd, name: &str) -> OwnedFd {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .expect("open directory")
}

#[test]
fn two_thousand_nested_directories_round_trip_into_a_deep_target() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    let mut dir = rustix::fs::open(&src, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .expect("open src");
    for _ in 0..DEPTH {
        rustix::fs::mkdirat(&dir, "level", Mode::from_raw_mode(0o755)).expect("mkdir");
        dir = open_dir(&dir, "level");
    }
    let file = rustix::fs::openat(
        &dir,
        "bottom.txt",
        OFlags::WRONLY | OFlags::CREATE,
        Mode::from_raw_mode(0o644),
    )
    .expect("create");
    rustix::io::write(&file, b"at the bottom\n").expect("write");
    drop(file);

    let engine = Engine::init(&tmp.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings.first());
    assert!(snap.is_complete());
    assert_eq!(snap.stats.dirs, DEPTH as u64 + 1);
    assert_eq!(snap.stats.files, 1);

    // A target whose own path is long: with the snapshot's, far past PATH_MAX.
    let mut target = tmp.path().to_owned();
    for _ in 0..20 {
        target.push("a-long-directory-name-to-make-the-target-deep");
    }
    std::fs::create_dir_all(&target).expect("deep target");
    let target = target.join("restored");
    let summary =
        engine.restore(snap.id, b"", &target, &RestoreOptions::default()).expect("restore");
    assert_eq!((summary.dirs, summary.files), (DEPTH as u64, 1));
    let mut dir = rustix::fs::open(&target, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .expect("open target");
    for _ in 0..DEPTH {
        dir = open_dir(&dir, "level");
    }
    let file = rustix::fs::openat(&dir, "bottom.txt", OFlags::RDONLY, Mode::empty()).expect("open");
    let mut buf = [0u8; 64];
    let n = rustix::io::read(&file, &mut buf).expect("read");
    assert_eq!(&buf[..n], b"at the bottom\n");
}
