//! Garbage collection killed at any instant loses no live chunk: after each SIGKILL of a real
//! `coldkeep gc`, the repository opens, `check --read-data` is clean, every live snapshot
//! restores byte-exact, and collections run to completion afterwards reclaim the rest.
//!
//! Each round builds a fresh repository through the library: runs whose retention ended long ago
//! (their snapshots expire at the collection's first step), one run under legal hold, and one
//! plain backup (no retention), with small packs so that a collection condemns, repacks and
//! deletes many of them. The kill delays are spread over the time a whole collection takes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_ok, coldkeep, killed_after};

use coldkeep::model::{
    GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, RunRequest, RunStatus,
    RunType, RunUpdate, Schedule, SnapshotId, TimeOfDay, TimeUnit, Usecs, DAY,
};
use coldkeep::{BackupOptions, CdcParams, ChunkerConfig, Engine, InitOptions, ManualClock};
use coldkeep_testing::{compare_trees, Compare, Dataset};

const KILLS: u32 = 12;

/// A repository with garbage to collect; returns the live snapshots and their sources.
fn build(repo: &Path, versions: &[PathBuf], work: &Path) -> Vec<(SnapshotId, PathBuf)> {
    // Years ago: by the system clock the CLI uses, every run's retention has ended.
    let clock = Arc::new(ManualClock::new(
        Usecs::from_civil(2020, 1, 6, TimeOfDay::new(3, 0).expect("t")).expect("date"),
    ));
    let opts = InitOptions {
        chunker: ChunkerConfig::Cdc(CdcParams { min: 4 << 10, avg: 16 << 10, max: 64 << 10 }),
        pack_target_size: 64 << 10,
        ..InitOptions::unencrypted()
    };
    let engine = Engine::init(repo, &opts).expect("init").with_clock(clock.clone()).expect("clock");
    let policy = engine
        .create_policy(PolicySpec::incremental(
            "p",
            Schedule { unit: TimeUnit::Days, frequency: 1 },
            Retention::days(1),
        ))
        .expect("policy");
    let object = ObjectSpec::new("work", ObjectKind::DirectoryTree, work);
    let group = engine.create_group(GroupSpec::new("g", policy.id, vec![object])).expect("group");
    let mut live = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let _ = std::fs::remove_dir_all(work);
        copy_tree(version, work);
        let run = engine.start_run(group.id, RunRequest::new(RunType::Regular)).expect("start");
        let run = engine.wait_run(group.id, run.id).expect("wait");
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
        if i == 1 {
            let hold = RunUpdate {
                run: Some(run.id),
                enable_legal_hold: Some(true),
                ..Default::default()
            };
            engine.update_runs(group.id, &[hold], &Principal::admin("dso")).expect("hold");
            live.push((run.objects[0].snapshot.expect("snapshot"), version.clone()));
        }
        clock.advance(DAY);
    }
    // Observed once more: the retention time that has seen every run end is persisted (the
    // CLI's own clock cannot measure real time since this one's, so it trusts no more than
    // that).
    engine.retention_now().expect("observe");
    let plain = engine.backup(versions.last().expect("a version"), &BackupOptions::default());
    live.push((plain.expect("plain backup").id, versions.last().expect("a version").clone()));
    drop(engine);
    // Background run threads let go of the repository a moment after their run ends.
    for _ in 0..500 {
        if Engine::open(repo).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    live
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(status.success());
}

fn verify(repo: &Path, live: &[(SnapshotId, PathBuf)], scratch: &Path, what: &str) {
    assert_ok(&coldkeep(repo, &["check", "--read-data"]), &format!("check {what}"));
    for (id, source) in live {
        let target = scratch.join(format!("restore-{what}-{id}"));
        let id = id.to_string();
        assert_ok(
            &coldkeep(repo, &["restore", &id, "--target", target.to_str().expect("utf-8")]),
            &format!("restore {id} {what}"),
        );
        assert_eq!(
            compare_trees(source, &target, Compare::default()),
            Vec::<String>::new(),
            "{what}"
        );
        std::fs::remove_dir_all(&target).expect("clean up");
    }
}

#[test]
fn sigkill_during_gc_loses_no_live_chunk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let versions: Vec<PathBuf> = (0..4u64)
        .map(|v| {
            let dir = tmp.path().join(format!("v{v}"));
            let mut data = Dataset::new(&dir, 100 + v);
            data.mixed(40, 50_000);
            dir
        })
        .collect();
    let work = tmp.path().join("work");

    // How long does a whole collection (condemn, then sweep) take?
    let probe = tmp.path().join("probe");
    build(&probe, &versions, &work);
    let started = Instant::now();
    assert_ok(&coldkeep(&probe, &["gc", "--grace-secs", "0"]), "probe gc");
    assert_ok(&coldkeep(&probe, &["gc", "--grace-secs", "0"]), "probe gc");
    let mut span = started.elapsed().mul_f64(1.2);

    let mut interrupted = 0;
    for round in 0..KILLS {
        let repo = tmp.path().join(format!("repo{round}"));
        let live = build(&repo, &versions, &work);
        let before = dir_size(&repo.join("packs"));
        let delay = span.mul_f64(f64::from(round) / f64::from(KILLS));
        // Two collections, the first or the second killed: condemning and sweeping both get hit.
        if round % 2 == 1 {
            assert_ok(&coldkeep(&repo, &["gc", "--grace-secs", "0"]), "first gc");
        }
        if killed_after(&repo, &["gc", "--grace-secs", "0"], delay.mul_f64(0.5)) {
            interrupted += 1;
        } else {
            span = span.min(delay.max(Duration::from_millis(20)));
        }
        verify(&repo, &live, tmp.path(), &format!("after kill {round}"));
        for _ in 0..3 {
            assert_ok(&coldkeep(&repo, &["gc", "--grace-secs", "0"]), "gc to completion");
        }
        verify(&repo, &live, tmp.path(), &format!("after gc {round}"));
        let check: serde_json::Value =
            serde_json::from_slice(&coldkeep(&repo, &["--json", "check"]).stdout)
                .expect("check json");
        assert_eq!(check["unindexed_packs"], serde_json::json!([]), "orphans are collected");
        assert!(dir_size(&repo.join("packs")) < before, "space came back");
    }
    assert!(interrupted >= KILLS / 3, "only {interrupted} of {KILLS} kills landed mid-gc");
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let md = entry.metadata().expect("metadata");
        total += if md.is_dir() { dir_size(&entry.path()) } else { md.len() };
    }
    total
}
