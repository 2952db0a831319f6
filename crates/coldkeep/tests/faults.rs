//! Faults at every write point: a backup, a garbage collection, a retention change and a key
//! change (in an encrypted repository) are run
//! once per write point they pass, with that point failing — refused (`Fail`), or the process
//! "dying" just before or just after it (`CrashBefore`, `CrashAfter`). After each, the failed
//! call must have returned an error that comes from the fault, and the repository, reopened
//! without faults, must open, pass `check --read-data`, still restore every snapshot that was
//! committed, and let the operation run again to completion.
//!
//! The points are every backend `create` / `write` / `finish` / `delete` and every catalog
//! batch (the catalog's decorator wraps RocksDB itself), counted by one `FaultPlan` across
//! opening the repository and the operation. docs/RELIABILITY.md reports the numbers; repeat
//! with `cargo nextest run -p coldkeep --test faults --no-capture`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coldkeep::faults::{FaultMode, FaultPlan};
use coldkeep::model::{
    GroupId, GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, RunId, RunUpdate,
    Schedule, SnapshotId, TimeUnit, Usecs, DAY,
};
use coldkeep::{
    BackupOptions, CheckOptions, Decorators, Engine, GcOptions, InitOptions, KdfParams,
    ManualClock, OpenOptions, RestoreOptions, Secret,
};
use coldkeep_testing::engine::{backed_up, t0};
use coldkeep_testing::{compare_trees, Compare, Dataset};

/// The baseline's passphrase, and the one a key change adds.
const OLD: &str = "the old passphrase";
const NEW: &str = "the new passphrase";

const MODES: [FaultMode; 3] = [FaultMode::Fail, FaultMode::CrashBefore, FaultMode::CrashAfter];

/// A repository with two runs of one group: `old` (expired at the fixture's time) and `live`.
struct Baseline {
    tmp: tempfile::TempDir,
    clock: Arc<ManualClock>,
    group: GroupId,
    old: (RunId, SnapshotId),
    live: (RunId, SnapshotId),
    /// When `live` expires in the baseline.
    live_expiry: Usecs,
    /// What `old` and `live` hold.
    old_src: PathBuf,
    live_src: PathBuf,
    /// The source a new backup reads: `live`'s content, changed.
    src: PathBuf,
}

impl Baseline {
    fn repo(&self) -> PathBuf {
        self.tmp.path().join("baseline")
    }

    /// A fresh copy of the baseline repository to break.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.tmp.path().join(name);
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(&self.repo(), &to);
        to
    }

    /// Opens `repo` with the old passphrase, or the new one where a key change removed it.
    fn open(&self, repo: &Path, decorators: &Decorators) -> Result<Engine, String> {
        let engine = either_passphrase(decorators, |opts| Engine::open_with(repo, opts))?;
        engine.with_clock(self.clock.clone()).map_err(|e| e.to_string())
    }

    /// Rebuilds `repo`'s catalog from its store (with whichever passphrase opens it).
    fn rebuild(&self, repo: &Path) -> Result<Engine, String> {
        let decorators = Decorators::default();
        let (engine, _) =
            either_passphrase(&decorators, |opts| Engine::rebuild_catalog(repo, opts))?;
        engine.with_clock(self.clock.clone()).map_err(|e| e.to_string())
    }
}

/// `f` with the old passphrase, or with the new one where a key change removed the old.
fn either_passphrase<T>(
    decorators: &Decorators,
    f: impl Fn(&OpenOptions) -> Result<T, coldkeep::OpenError>,
) -> Result<T, String> {
    let with = |secret: &str| {
        f(&OpenOptions {
            secret: Some(Secret::passphrase(secret)),
            decorators: decorators.clone(),
            ..OpenOptions::default()
        })
    };
    match with(OLD) {
        Err(coldkeep::OpenError::Key(coldkeep::KeyError::WrongKey)) => with(NEW),
        other => other,
    }
    .map_err(|e| e.to_string())
}

/// What a catalog holds that only the journal can give back.
#[derive(Debug, PartialEq)]
struct Records {
    snapshots: Vec<coldkeep::SnapshotRecord>,
    runs: Vec<coldkeep::model::Run>,
    policies: Vec<coldkeep::model::Policy>,
    audit: Vec<coldkeep::model::AuditEntry>,
    keys: Vec<coldkeep::KeyInfo>,
}

impl Records {
    fn of(b: &Baseline, engine: &Engine) -> Self {
        Self {
            snapshots: engine.snapshots().expect("snapshots"),
            runs: engine.runs(b.group, &coldkeep::RunFilter::default()).expect("runs"),
            policies: engine.policies(&coldkeep::PolicyFilter::default()).expect("policies"),
            audit: engine
                .audit_log()
                .expect("audit")
                .into_iter()
                .filter(|e| e.action != "clock_step")
                .collect(),
            keys: engine.keys().expect("keys"),
        }
    }
}

/// A copy with every file's metadata (the sources are compared with their restores).
fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}

fn baseline() -> Baseline {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t0()));
    // Small packs, so that a backup and a repack write several.
    let opts = InitOptions {
        pack_target_size: 96 << 10,
        kdf: KdfParams::INSECURE_FOR_TESTS,
        ..InitOptions::with_secret(Secret::passphrase(OLD))
    };
    let engine = Engine::init(&tmp.path().join("baseline"), &opts)
        .expect("init")
        .with_clock(clock.clone())
        .expect("clock");
    let policy = engine
        .create_policy(PolicySpec::incremental(
            "daily",
            Schedule { unit: TimeUnit::Days, frequency: 1 },
            Retention::days(1),
        ))
        .expect("policy");
    let src = tmp.path().join("src");
    let object = ObjectSpec::new("src", ObjectKind::DirectoryTree, &src);
    let group =
        engine.create_group(GroupSpec::new("g", policy.id, vec![object])).expect("group").id;
    Dataset::new(&src, 1).mixed(12, 40_000);
    let old = backed_up(&engine, group);
    let old_src = tmp.path().join("old-src");
    copy_dir(&src, &old_src);
    clock.advance(DAY / 2);
    Dataset::new(&src, 2).mutate(6);
    Dataset::new(&src.join("more"), 3).mixed(6, 70_000);
    let live = backed_up(&engine, group);
    let live_src = tmp.path().join("live-src");
    copy_dir(&src, &live_src);
    clock.advance(DAY * 3 / 4); // `old` has expired, `live` has not
    Dataset::new(&src, 4).mutate(5);
    engine.retention_now().expect("the expiry is seen before the copies are made");
    let live_expiry = engine.run(group, live.0).expect("run").retention.expiry.expect("expiry");
    drop(engine);
    Baseline { tmp, clock, group, old, live, live_expiry, old_src, live_src, src }
}

fn gc_now() -> GcOptions {
    GcOptions { grace: Duration::ZERO, repack_below: 0.9 }
}

/// What each operation does, and what must hold after it failed anywhere.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A backup of the changed source, by one worker: with two, which blobs share a pack (and
    /// so the number of writes) depends on timing.
    Backup,
    /// Two collections: the first expires `old` and condemns or repacks, the second sweeps.
    Gc,
    /// `live`'s retention extended by 5 days under a legal hold.
    Retention,
    /// A slot for a new passphrase added, then every other slot removed.
    KeyChange,
}

impl Op {
    fn apply(self, b: &Baseline, engine: &Engine) -> Result<(), String> {
        match self {
            Op::Backup => engine
                .backup(&b.src, &BackupOptions { threads: Some(1), ..BackupOptions::default() })
                .map(drop)
                .map_err(|e| format!("{e:#}")),
            Op::Gc => {
                for _ in 0..2 {
                    engine.gc(gc_now()).map_err(|e| format!("{e:#}"))?;
                }
                Ok(())
            }
            Op::Retention => {
                let update = RunUpdate {
                    run: Some(b.live.0),
                    days_to_keep: Some(5),
                    enable_legal_hold: Some(true),
                    ..RunUpdate::default()
                };
                engine
                    .update_runs(b.group, &[update], &Principal::admin("dso"))
                    .map(drop)
                    .map_err(|e| format!("{e:#}"))
            }
            Op::KeyChange => {
                let secret = Secret::passphrase(NEW);
                let added = engine
                    .add_key(&secret, KdfParams::INSECURE_FOR_TESTS, "new")
                    .map_err(|e| format!("{e:#}"))?;
                for key in engine.keys().map_err(|e| format!("{e:#}"))? {
                    if key.id != added.id && key.label != "new" {
                        engine.remove_key(&key.id).map_err(|e| format!("{e:#}"))?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Checks a repository after `self` failed (or, with `done`, after it ran to completion).
    fn verify(self, b: &Baseline, engine: &Engine, done: bool, context: &str) {
        let check = engine.check(CheckOptions { read_data: true }).expect("check");
        assert!(check.problems.is_empty(), "{context}: {:?}", check.problems);
        let restore = |snap: SnapshotId, expected: &Path, name: &str| {
            let target = b.tmp.path().join(name);
            let _ = std::fs::remove_dir_all(&target);
            engine
                .restore(snap, b"", &target, &RestoreOptions::default())
                .unwrap_or_else(|e| panic!("{context}: restore {name}: {e}"));
            let diff = compare_trees(expected, &target, Compare::default());
            assert!(diff.is_empty(), "{context}: {name}: {diff:?}");
        };
        restore(b.live.1, &b.live_src, "restored-live");
        let old_kept = engine.snapshot(b.old.1).is_ok();
        match self {
            Op::Gc if done => assert!(!old_kept, "{context}: the expired snapshot went"),
            Op::Gc => {}
            _ => assert!(old_kept, "{context}: only gc removes a snapshot"),
        }
        if old_kept {
            restore(b.old.1, &b.old_src, "restored-old");
        }
        let snapshots = engine.snapshots().expect("snapshots").len();
        if let Op::Backup = self {
            let list: Vec<_> = engine
                .snapshots()
                .expect("snapshots")
                .into_iter()
                .map(|s| (s.id, s.start_time_us))
                .collect();
            // A crash just after the snapshot's batch leaves it committed although the caller
            // heard of a failure; running again then adds one more.
            let most = if done { 4 } else { 3 };
            assert!((2..=most).contains(&snapshots), "{context}: {snapshots} snapshots {list:?}");
            if done {
                let newest = engine
                    .snapshots()
                    .expect("snapshots")
                    .into_iter()
                    .max_by_key(|s| s.id)
                    .expect("one");
                restore(newest.id, &b.src, "restored-new");
            }
        }
        if let Op::KeyChange = self {
            assert!(!engine.keys().expect("keys").is_empty(), "{context}: the last key stays");
            if done {
                let labels: Vec<String> =
                    engine.keys().expect("keys").into_iter().map(|k| k.label).collect();
                assert!(labels.iter().all(|l| l == "new"), "{context}: only new keys: {labels:?}");
            }
        }
        if let Op::Retention = self {
            // Retention, hold and audit entry change together or not at all: each change that
            // took effect extended the expiry by 5 days and wrote one entry.
            let live = engine.run(b.group, b.live.0).expect("live run").retention;
            let audited = engine
                .audit_log()
                .expect("audit")
                .iter()
                .filter(|e| e.action == "update_run")
                .count();
            let extended = live.expiry.expect("expiry").0 - b.live_expiry.0;
            assert_eq!(
                extended,
                5 * DAY * i64::try_from(audited).expect("few"),
                "{context}: {live:?}, {audited} entries"
            );
            assert_eq!(live.legal_hold, audited > 0, "{context}: {live:?}");
            if done {
                assert!(live.legal_hold, "{context}");
            }
        }
    }
}

/// Runs `op` once per write point with that point failing in every mode.
fn every_write_point(op: Op) {
    let b = baseline();
    let plan = FaultPlan::count();
    let repo = b.copy("counted");
    let engine = b.open(&repo, &Decorators::faults(&plan)).expect("open without faults");
    op.apply(&b, &engine).expect("the operation without faults");
    drop(engine);
    let points = plan.passed();
    let described = plan.points();
    assert!(points >= 5, "{op:?} passes only {points} write points: {described:?}");
    eprintln!("{op:?}: {points} write points × {} modes", MODES.len());
    for (i, point) in described.iter().enumerate() {
        eprintln!("  {:>3} {point}", i + 1);
    }
    for n in 1..=points {
        for mode in MODES {
            let context = format!(
                "{op:?}, {mode:?} at point {n} of {points} ({})",
                described[n as usize - 1]
            );
            let repo = b.copy("faulted");
            let plan = FaultPlan::at(n, mode);
            let failed =
                b.open(&repo, &Decorators::faults(&plan)).and_then(|engine| op.apply(&b, &engine));
            let error = failed.expect_err(&format!("{context}: the fault was swallowed"));
            assert!(plan.tripped(), "{context}: the point was not reached: {error}");
            assert!(
                error.contains("injected fault") || error.contains("reopen the repository"),
                "{context}: the error does not come from the fault: {error}"
            );
            let engine = b
                .open(&repo, &Decorators::default())
                .unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            op.verify(&b, &engine, false, &context);
            // The journal agrees with the catalog: a catalog rebuilt from the store alone holds
            // the same records.
            let records = Records::of(&b, &engine);
            drop(engine);
            let engine = b.rebuild(&repo).unwrap_or_else(|e| panic!("{context}: rebuild: {e}"));
            assert_eq!(Records::of(&b, &engine), records, "{context}: the rebuilt catalog differs");
            op.apply(&b, &engine).unwrap_or_else(|e| panic!("{context}: run again: {e}"));
            op.verify(&b, &engine, true, &format!("{context}, run again"));
        }
    }
}

#[test]
fn a_backup_fails_cleanly_at_every_write_point() {
    every_write_point(Op::Backup);
}

#[test]
fn garbage_collection_fails_cleanly_at_every_write_point() {
    every_write_point(Op::Gc);
}

#[test]
fn a_retention_change_fails_cleanly_at_every_write_point() {
    every_write_point(Op::Retention);
}

#[test]
fn a_key_change_fails_cleanly_at_every_write_point() {
    every_write_point(Op::KeyChange);
}

/// A pack the sealer cannot store ends the backup with that error while the workers still have
/// many packs to hand over. (The sealer's queue once stayed open after its failure: the workers
/// filled it and waited on it forever.)
#[test]
fn a_backup_whose_sealer_fails_returns_the_error_while_workers_have_packs_to_hand_over() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let opts = InitOptions {
        pack_target_size: 64 << 10,
        kdf: KdfParams::INSECURE_FOR_TESTS,
        ..InitOptions::with_secret(Secret::passphrase(OLD))
    };
    drop(Engine::init(&repo, &opts).expect("init"));
    let src = tmp.path().join("src");
    Dataset::new(&src, 7).mixed(48, 200_000); // far more packs than the sealer's queue holds
    let plan = FaultPlan::at_first("finish packs/", FaultMode::Fail);
    let engine = Engine::open_with(
        &repo,
        &OpenOptions {
            secret: Some(Secret::passphrase(OLD)),
            decorators: Decorators::faults(&plan),
            ..OpenOptions::default()
        },
    )
    .expect("open");
    // On its own thread, so that a backup that waits forever fails the test instead of hanging it.
    let (done, outcome) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let backup = BackupOptions { threads: Some(2), ..BackupOptions::default() };
        let result = engine.backup(&src, &backup).map(drop).map_err(|e| format!("{e:#}"));
        done.send(result).expect("send");
    });
    let result = outcome
        .recv_timeout(Duration::from_mins(2))
        .expect("the backup is still waiting two minutes after its sealer failed");
    worker.join().expect("backup thread");
    let error = result.expect_err("the sealer's failure was swallowed");
    assert!(plan.tripped(), "no pack was sealed: {error}");
    assert!(error.contains("injected fault"), "not the sealer's error: {error}");
}
