//! A repository whose disk fills up: a backup that runs out of space stops with one clear
//! error and damages nothing; on a full disk every command that only reads still works (it
//! opens the repository read-only), a command that would write is refused with a clear message
//! and exit code 1 (RocksDB, which aborts the process when a write of its own fails, is never
//! reached), and once space is freed the repository is whole.
//!
//! The disk is a small tmpfs mounted for the test, which needs root (CI runs as root); where
//! it cannot be mounted the test says so and passes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use coldkeep_testing::{compare_trees, Compare, Dataset};
use common::{assert_ok, coldkeep};

/// A tmpfs mounted at a directory for the life of the value.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size_mib: u64) -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            coldkeep_testing::skip("mounting a small filesystem needs root");
            return None;
        }
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "coldkeep-test"])
            .arg(dir)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            coldkeep_testing::skip("a tmpfs cannot be mounted here");
            return None;
        }
        Some(Self(dir.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem has only `leave` bytes free (or none).
fn fill(path: &Path, leave: u64) {
    let free = || {
        let st = rustix::fs::statvfs(path.parent().expect("parent")).expect("statvfs");
        st.f_bfree * st.f_frsize
    };
    let mut file = std::fs::File::create(path).expect("create filler");
    let block = vec![0u8; 1 << 20];
    while free() > leave {
        let len = (free() - leave).min(block.len() as u64) as usize;
        if file.write_all(&block[..len]).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_filling_disk_stops_backups_cleanly_and_a_full_one_is_still_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::mount(&tmp.path().join("disk"), 40) else { return };
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 3);
    data.mixed(30, 40_000);
    data.file("notes/readme.txt", b"still here\n");
    let repo = disk.0.join("repo");
    let src_arg = src.to_str().expect("utf-8 path");
    assert_ok(&coldkeep(&repo, &["init"]), "init");
    assert_ok(&coldkeep(&repo, &["backup", src_arg]), "backup");

    // A backup that runs out of space half-way: a typed error, said once, and nothing damaged.
    let big = tmp.path().join("big");
    let mut big_data = Dataset::new(&big, 4);
    let random = big_data.rng().bytes(40 << 20, false);
    big_data.file("random.bin", &random);
    fill(&disk.0.join("filler"), 20 << 20);
    let out = coldkeep(&repo, &["backup", big.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out).matches("No space left on device").count(), 1, "{}", stderr(&out));
    assert_ok(&coldkeep(&repo, &["check"]), "check after the failed backup");

    fill(&disk.0.join("filler-2"), 0);

    for args in [
        &["snapshots"][..],
        &["ls", "latest"],
        &["stats"],
        &["check", "--read-data"],
        &["search", "readme"],
    ] {
        assert_ok(&coldkeep(&repo, args), &args.join(" "));
    }
    let cat = coldkeep(&repo, &["cat", "latest", "notes/readme.txt"]);
    assert_ok(&cat, "cat");
    assert_eq!(cat.stdout, b"still here\n");
    let target = tmp.path().join("restored");
    let restore = coldkeep(&repo, &["restore", "latest", "-t", target.to_str().expect("utf-8")]);
    assert_ok(&restore, "restore");
    assert_eq!(compare_trees(&src, &target, Compare::default()), Vec::<String>::new());

    for args in [&["backup", src_arg][..], &["gc"], &["index", "latest"]] {
        let out = coldkeep(&repo, args);
        assert_eq!(out.status.code(), Some(1), "{}: {}", args.join(" "), stderr(&out));
        assert!(stderr(&out).contains("is on a full disk"), "{}: {}", args.join(" "), stderr(&out));
    }

    // Space back: the repository is whole and takes backups again.
    std::fs::remove_file(disk.0.join("filler")).expect("free space");
    std::fs::remove_file(disk.0.join("filler-2")).expect("free space");
    data.file("notes/later.txt", b"after the disk was freed\n");
    assert_ok(&coldkeep(&repo, &["backup", src_arg]), "backup after freeing space");
    assert_ok(&coldkeep(&repo, &["check", "--read-data"]), "check after freeing space");
}

#[test]
fn a_repository_on_read_only_media_is_read_and_restored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::mount(&tmp.path().join("disk"), 40) else { return };
    let src = tmp.path().join("src");
    Dataset::new(&src, 9).mixed(30, 40_000);
    let repo = disk.0.join("repo");
    let src_arg = src.to_str().expect("utf-8 path");
    assert_ok(&coldkeep(&repo, &["init"]), "init");
    assert_ok(&coldkeep(&repo, &["backup", src_arg]), "backup");
    let remount = Command::new("mount").args(["-o", "remount,ro"]).arg(&disk.0).status();
    assert!(remount.is_ok_and(|s| s.success()), "remount read-only");

    for args in [&["snapshots"][..], &["ls", "latest"], &["check", "--read-data"], &["stats"]] {
        assert_ok(&coldkeep(&repo, args), &args.join(" "));
    }
    let target = tmp.path().join("restored");
    let restore = coldkeep(&repo, &["restore", "latest", "-t", target.to_str().expect("utf-8")]);
    assert_ok(&restore, "restore");
    assert_eq!(compare_trees(&src, &target, Compare::default()), Vec::<String>::new());
    let backup = coldkeep(&repo, &["backup", src_arg]);
    assert_eq!(backup.status.code(), Some(1), "{}", stderr(&backup));
    assert!(stderr(&backup).contains("Read-only file system"), "{}", stderr(&backup));
}
