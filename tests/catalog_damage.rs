//! A damaged catalog never rolls history back silently, and garbage collection never destroys
//! what it lost (issue 13, item 1). RocksDB opens an older state when the tail of its MANIFEST
//! is cut or its write-ahead log has a flipped byte; the repository's own commit count
//! (`<repo>/commits`) notices.

mod common;

use std::path::{Path, PathBuf};

use coldkeep_testing::{pack_files, Dataset};
use common::{assert_ok, coldkeep, killed_after};

fn catalog_files(repo: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo.join("catalog"))
        .expect("catalog dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    found.sort();
    found
}

/// Two backups of different content; returns the repository.
fn two_backups(tmp: &Path) -> PathBuf {
    let repo = tmp.join("repo");
    // Small packs: a backup commits many batches.
    assert_ok(&coldkeep(&repo, &["init", "--pack-kib", "256"]), "init");
    for seed in 1..=2 {
        let src = tmp.join(format!("src{seed}"));
        Dataset::new(&src, seed).mixed(30, 40_000);
        assert_ok(&coldkeep(&repo, &["backup", src.to_str().expect("utf-8")]), "backup");
    }
    repo
}

/// What every damaged repository must show: writers refused with the typed message, readers
/// warned, check exits 3, gc deletes nothing, no pack lost.
fn assert_loss_is_caught(repo: &Path, tmp: &Path) {
    let before = pack_files(repo);
    let listed = coldkeep(repo, &["--json", "snapshots"]);
    if listed.status.success() {
        let stderr = String::from_utf8_lossy(&listed.stderr);
        assert!(stderr.contains("the catalog lost commits"), "no warning: {stderr}");
    }
    let src = tmp.join("src3");
    Dataset::new(&src, 3).mixed(5, 1_000);
    for args in [vec!["backup", src.to_str().expect("utf-8")], vec!["gc", "--grace-secs", "0"]] {
        let out = coldkeep(repo, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?} must be refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("lost commits"), "{args:?}: {stderr}");
    }
    let check = coldkeep(repo, &["check", "--read-data"]);
    assert_eq!(check.status.code(), Some(3), "check must report the loss");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains("the catalog lost commits"), "{stdout}");
    assert_eq!(pack_files(repo), before, "no pack may be deleted");
}

/// After `rebuild-catalog` the repository is whole again: `snapshots` of them, writers work
/// and take a new id, check is clean.
fn assert_rebuilt(repo: &Path, tmp: &Path, snapshots: usize) {
    let out = coldkeep(repo, &["--json", "rebuild-catalog"]);
    assert_ok(&out, "rebuild-catalog");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["snapshots"], snapshots, "{report}");
    let src = tmp.join("src4");
    Dataset::new(&src, 4).mixed(5, 1_000);
    assert_ok(&coldkeep(repo, &["backup", src.to_str().expect("utf-8")]), "backup");
    let listed = coldkeep(repo, &["--json", "snapshots"]);
    assert_ok(&listed, "snapshots");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let ids: Vec<u64> =
        listed.as_array().expect("list").iter().map(|s| s["id"].as_u64().expect("id")).collect();
    assert_eq!(ids.len(), snapshots + 1, "{ids:?}");
    assert_eq!(*ids.iter().max().expect("some"), snapshots as u64 + 1, "no id is reused: {ids:?}");
    let check = coldkeep(repo, &["check", "--read-data"]);
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
}

#[test]
fn a_cut_manifest_is_detected_and_nothing_is_destroyed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = two_backups(tmp.path());
    let manifests = catalog_files(&repo, "MANIFEST-", "");
    let manifest = manifests.last().expect("a MANIFEST");
    let len = std::fs::metadata(manifest).expect("stat").len();
    // Cut the last edits (the flushes of the second backup's batches).
    std::fs::OpenOptions::new()
        .write(true)
        .open(manifest)
        .expect("open")
        .set_len(len.saturating_sub(60))
        .expect("cut");
    assert_loss_is_caught(&repo, tmp.path());
    assert_rebuilt(&repo, tmp.path(), 2);
}

#[test]
fn a_flipped_byte_in_the_log_after_a_kill_is_detected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = two_backups(tmp.path());
    // A backup killed part-way leaves its pack batches only in the write-ahead log (a clean
    // close would have flushed them).
    let big = tmp.path().join("big");
    Dataset::new(&big, 9).mixed(600, 400_000);
    let big = big.to_str().expect("utf-8");
    let mut landed = false;
    for delay_ms in [40, 80, 120, 160, 200, 250, 300, 400, 600, 800] {
        let before = std::fs::read(repo.join("commits")).expect("commits");
        let delay = std::time::Duration::from_millis(delay_ms);
        if killed_after(&repo, &["backup", big], delay)
            && std::fs::read(repo.join("commits")).expect("commits") != before
        {
            landed = true;
            break;
        }
    }
    assert!(landed, "no kill landed after a pack was committed");
    let logs = catalog_files(&repo, "", ".log");
    let log = logs.iter().rev().find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
    let log = log.expect("a write-ahead log with records");
    let mut bytes = std::fs::read(log).expect("read log");
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    std::fs::write(log, &bytes).expect("flip a byte");
    assert_loss_is_caught(&repo, tmp.path());
    assert_rebuilt(&repo, tmp.path(), 2);
}
