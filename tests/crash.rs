//! Crash safety: a backup killed with SIGKILL at any instant leaves a repository that opens,
//! checks clean (every byte re-hashed), and restores every committed snapshot byte-exact.
//!
//! The backup runs in a child process (the real `coldkeep` binary) with 64 KiB packs, so that a
//! run seals many packs and the kill lands before, during and after pack writes, catalog commits
//! and the snapshot commit. Kill delays are spread over the time an uninterrupted backup takes
//! (measured once, then narrowed whenever a backup turns out to finish before its kill).

mod common;

use std::path::Path;
use std::time::Instant;

use common::{assert_ok, coldkeep, killed_after};

use coldkeep_testing::{compare_trees, Compare, Dataset};

const KILLS: u32 = 20;

fn init(repo: &Path) {
    assert_ok(&coldkeep(repo, &["init", "--chunk-kib", "16", "--pack-kib", "64"]), "init");
}

/// The repository opens, `check --read-data` is clean, and every snapshot restores to the
/// source it was taken of.
fn verify(repo: &Path, sources: &[&Path], scratch: &Path, round: u32) {
    assert_ok(&coldkeep(repo, &["check", "--read-data"]), &format!("check after kill {round}"));
    let list: serde_json::Value =
        serde_json::from_slice(&coldkeep(repo, &["--json", "snapshots"]).stdout)
            .expect("snapshot list");
    for snap in list.as_array().expect("array") {
        let id = snap["id"].to_string();
        let source = sources
            .iter()
            .find(|s| {
                std::fs::canonicalize(s).expect("canonical").to_str() == snap["source"].as_str()
            })
            .expect("snapshot of a known source");
        let target = scratch.join(format!("restore-{round}-{id}"));
        assert_ok(
            &coldkeep(repo, &["restore", &id, "--target", target.to_str().expect("utf-8")]),
            &format!("restore {id} after kill {round}"),
        );
        assert_eq!(
            compare_trees(source, &target, Compare::default()),
            Vec::<String>::new(),
            "snapshot {id}"
        );
        std::fs::remove_dir_all(&target).expect("clean up");
    }
}

/// A source with data of its own (little dedup with the others), so every backup has packs to
/// write and commit.
fn make_source(root: &Path, seed: u64) -> std::path::PathBuf {
    let src = root.join(format!("src{seed}"));
    let mut data = Dataset::new(&src, seed);
    data.mixed(80, 40_000);
    let noise = data.rng().bytes(2 << 20, false);
    data.file("noise.bin", &noise);
    src
}

#[test]
fn sigkill_at_any_point_loses_nothing_committed() {
    let tmp = tempfile::tempdir().expect("tempdir");

    // How long does an uninterrupted backup take? Kill delays are spread over that span.
    let probe_repo = tmp.path().join("probe");
    init(&probe_repo);
    let probe_src = make_source(tmp.path(), 999);
    let started = Instant::now();
    assert_ok(
        &coldkeep(&probe_repo, &["backup", probe_src.to_str().expect("utf-8")]),
        "probe backup",
    );
    let mut span = started.elapsed().mul_f64(1.3);

    let repo = tmp.path().join("repo");
    init(&repo);
    let mut sources = Vec::new();
    let mut interrupted = 0;
    for round in 0..KILLS {
        sources.push(make_source(tmp.path(), u64::from(round)));
        let source = sources.last().expect("just pushed");
        let delay = span.mul_f64(f64::from(round) / f64::from(KILLS));
        if killed_after(&repo, &["backup", "--full", source.to_str().expect("utf-8")], delay) {
            interrupted += 1;
        } else {
            // The backup had finished: it takes less than `delay` (the probe ran while the
            // machine was busier). Later kills aim inside that shorter span.
            span = span.min(delay);
        }
        let refs: Vec<&Path> = sources.iter().map(std::path::PathBuf::as_path).collect();
        verify(&repo, &refs, tmp.path(), round);
    }
    // Every source still backs up completely after all that, reusing what the killed runs
    // committed.
    for source in &sources {
        assert_ok(&coldkeep(&repo, &["backup", source.to_str().expect("utf-8")]), "final backup");
    }
    let refs: Vec<&Path> = sources.iter().map(std::path::PathBuf::as_path).collect();
    verify(&repo, &refs, tmp.path(), KILLS);
    assert!(interrupted >= KILLS / 3, "only {interrupted} of {KILLS} kills landed mid-backup");
}
