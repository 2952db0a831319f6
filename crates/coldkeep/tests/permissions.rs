//! A repository is its owner's alone, whatever the umask (issue 13, item 4): under umask 022 the
//! chunk key, the catalog and the packs used to be readable by every local user, and any user
//! could hold a shared lock on `<repo>/lock` and so block the owner's backups for ever.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use coldkeep::{BackupOptions, Engine, InitOptions};
use coldkeep_testing::Dataset;

/// Every directory of the repository, and the files coldkeep itself writes.
fn assert_private(repo: &Path) {
    let mut dirs = vec![repo.to_owned()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                dirs.push(path);
            } else if !path.starts_with(repo.join("catalog")) {
                // RocksDB makes its own files with the umask's mode; `catalog/` (0700) is what
                // keeps them private.
                let mode = meta.mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            }
        }
    }
}

#[test]
fn a_repository_is_private_whatever_the_umask() {
    // Each test is its own process under nextest: the umask is this test's alone.
    let _ = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 1).mixed(20, 30_000);

    // A fresh directory, and an existing empty one that everybody may write to.
    let fresh = tmp.path().join("fresh");
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    for repo in [&fresh, &shared] {
        let engine = Engine::init(repo, &InitOptions::unencrypted()).expect("init");
        engine.backup(&src, &BackupOptions::default()).expect("backup");
        drop(engine);
        assert_private(repo);
    }

    // A repository made by an older build (0755 directories) is made private when opened.
    for dir in [&fresh, &fresh.join("catalog"), &fresh.join("packs")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    drop(Engine::open(&fresh).expect("open"));
    for dir in [&fresh, &fresh.join("catalog"), &fresh.join("packs")] {
        assert_eq!(std::fs::metadata(dir).expect("stat").mode() & 0o777, 0o700);
    }

    // Another user can neither read the chunk key nor take the lock.
    if !rustix::process::geteuid().is_root() {
        coldkeep_testing::skip("reading as another user needs root (setpriv)");
        return;
    }
    // The temporary directory itself must be traversable for the test to mean anything.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .args(args)
            .output()
            .expect("run setpriv")
    };
    let control = as_nobody(&["ls", tmp.path().to_str().expect("utf-8")]);
    assert!(control.status.success(), "nobody can list the parent: {control:?}");
    for repo in [&fresh, &shared] {
        let config = repo.join("config");
        let read = as_nobody(&["cat", config.to_str().expect("utf-8")]);
        assert!(!read.status.success(), "nobody read the chunk key");
        let lock = repo.join("lock");
        let lock = as_nobody(&["flock", "-s", "-n", lock.to_str().expect("utf-8"), "true"]);
        assert!(!lock.status.success(), "nobody took the repository lock");
    }
}
