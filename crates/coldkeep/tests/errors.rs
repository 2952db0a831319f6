//! Every failure a caller can meet converts into `coldkeep::Error`, whose `kind()` says what it
//! is — through the public API, on a real repository. A store that cannot be read is a
//! transient or I/O failure, never reported as damage.

use std::borrow::Cow;
use std::sync::Arc;

use coldkeep::backend::{
    Access, Backend, ObjectInfo, ObjectKind as Kind, ObjectName, ObjectReader, ObjectWriter,
};
use coldkeep::model::{
    GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, RunRequest, RunStatus,
    RunType, RunUpdate, Schedule, SnapshotId, TimeUnit,
};
use coldkeep::{
    BackupOptions, CheckOptions, Decorators, Engine, Error, ErrorKind, InitOptions, OpenOptions,
    RestoreOptions, StoreError,
};
use coldkeep_testing::Dataset;

fn kind<T: std::fmt::Debug>(result: Result<T, impl Into<Error>>) -> ErrorKind {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.into().kind(),
    }
}

#[test]
fn each_failure_has_the_kind_a_caller_acts_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    assert_eq!(kind(Engine::open(&repo)), ErrorKind::NotFound);
    let engine = Engine::init(&repo, &InitOptions::unencrypted()).expect("init");
    assert_eq!(kind(Engine::init(&repo, &InitOptions::unencrypted())), ErrorKind::Conflict);
    assert_eq!(kind(Engine::open(&repo)), ErrorKind::Busy);
    assert_eq!(kind(Engine::open_read_only(&repo)), ErrorKind::Busy);

    let src = tmp.path().join("src");
    Dataset::new(&src, 7).mixed(10, 20_000);
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
    assert_eq!(kind(engine.snapshot(SnapshotId::new(99))), ErrorKind::NotFound);
    assert_eq!(kind(engine.list(snap.id, b"no/such/path")), ErrorKind::NotFound);
    assert_eq!(
        kind(engine.backup(&tmp.path().join("absent"), &BackupOptions::default())),
        ErrorKind::NotFound
    );
    let target = tmp.path().join("full");
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::write(target.join("x"), b"x").expect("write");
    assert_eq!(
        kind(engine.restore(snap.id, b"", &target, &RestoreOptions::default())),
        ErrorKind::Conflict
    );

    let policy = engine
        .create_policy(PolicySpec::incremental(
            "p",
            Schedule { unit: TimeUnit::Days, frequency: 1 },
            Retention::days(3),
        ))
        .expect("policy");
    let mut bad = PolicySpec::incremental(
        "bad",
        Schedule { unit: TimeUnit::Days, frequency: 0 },
        Retention::days(3),
    );
    bad.name = String::new();
    assert_eq!(kind(engine.create_policy(bad)), ErrorKind::InvalidInput);
    let object = ObjectSpec::new("src", ObjectKind::DirectoryTree, &src);
    let group =
        engine.create_group(GroupSpec::new("g", policy.id, vec![object.clone()])).expect("group");
    assert_eq!(kind(engine.delete_policy(policy.id)), ErrorKind::Conflict, "in use");
    let stale = group.last_modification_time_usecs.0 - 1;
    let spec = GroupSpec::new("g2", policy.id, vec![object]);
    assert_eq!(
        kind(engine.update_group(group.id, spec, Some(coldkeep::model::Usecs(stale)))),
        ErrorKind::Conflict
    );
    let run = engine.start_run(group.id, RunRequest::new(RunType::Regular)).expect("start");
    let run = engine.wait_run(group.id, run.id).expect("wait");
    assert_eq!(run.status, RunStatus::Succeeded);
    let hold =
        RunUpdate { run: Some(run.id), enable_legal_hold: Some(true), ..RunUpdate::default() };
    engine.update_runs(group.id, &[hold], &Principal::admin("dso")).expect("hold");
    let delete = RunUpdate { run: Some(run.id), delete_snapshots: true, ..RunUpdate::default() };
    assert_eq!(
        kind(engine.update_runs(group.id, &[delete], &Principal::admin("dso"))),
        ErrorKind::Refused
    );
    drop(engine);

    let reader = Engine::open_read_only(&repo).expect("read-only");
    assert_eq!(kind(reader.backup(&src, &BackupOptions::default())), ErrorKind::ReadOnly);
    assert_eq!(kind(reader.gc(coldkeep::GcOptions::default())), ErrorKind::ReadOnly);
    drop(reader);

    // A damaged pack: restore refuses it as corrupt.
    for pack in coldkeep_testing::pack_files(&repo) {
        let mut bytes = std::fs::read(&pack).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(&pack, bytes).expect("write");
    }
    let engine = Engine::open(&repo).expect("open");
    let target = tmp.path().join("restored");
    assert_eq!(
        kind(engine.restore(snap.id, b"", &target, &RestoreOptions::default())),
        ErrorKind::Corrupt
    );
    let e: Error = engine
        .restore(snap.id, b"", &tmp.path().join("again"), &RestoreOptions::default())
        .expect_err("corrupt")
        .into();
    assert!(
        e.downcast_ref::<coldkeep::RestoreError>().is_some(),
        "the typed error is inside: {e:?}"
    );
}

/// A backend whose reads time out, as a dropped connection would.
#[derive(Debug)]
struct TimingOut(Arc<dyn Backend>);

#[derive(Debug)]
struct TimingOutReader(Box<dyn ObjectReader>);

impl ObjectReader for TimingOutReader {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&self, _: u64, _: usize) -> Result<Cow<'_, [u8]>, StoreError> {
        Err(StoreError::Backend {
            op: "read",
            object: "test".into(),
            cause: std::io::ErrorKind::TimedOut.into(),
        })
    }
}

impl Backend for TimingOut {
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.0.create(name)
    }
    fn open(&self, name: &ObjectName, access: Access) -> Result<Box<dyn ObjectReader>, StoreError> {
        Ok(Box::new(TimingOutReader(self.0.open(name, access)?)))
    }
    fn stat(&self, name: &ObjectName) -> Result<ObjectInfo, StoreError> {
        self.0.stat(name)
    }
    fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, StoreError> {
        self.0.list(kind)
    }
    fn delete(&self, name: &ObjectName) -> Result<(), StoreError> {
        self.0.delete(name)
    }
    fn remove_unfinished(&self) -> Result<usize, StoreError> {
        self.0.remove_unfinished()
    }
}

#[test]
fn a_store_that_cannot_be_read_is_not_reported_as_damage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let src = tmp.path().join("src");
    Dataset::new(&src, 8).mixed(10, 20_000);
    let snap = {
        let engine = Engine::init(&repo, &InitOptions::unencrypted()).expect("init");
        engine.backup(&src, &BackupOptions::default()).expect("backup")
    };
    let decorators = Decorators {
        store: Some(Arc::new(|inner| Arc::new(TimingOut(inner)) as Arc<dyn Backend>)),
        ..Decorators::default()
    };
    let opts = OpenOptions { decorators, ..OpenOptions::default() };
    let engine = Engine::open_with(&repo, &opts).expect("open");
    for read_data in [false, true] {
        let failed = engine.check(CheckOptions { read_data });
        assert_eq!(
            kind(failed),
            ErrorKind::Transient,
            "check --read-data={read_data} stops, reports no damage"
        );
    }
    let target = tmp.path().join("restored");
    assert_eq!(
        kind(engine.restore(snap.id, b"", &target, &RestoreOptions::default())),
        ErrorKind::Transient
    );
    assert_eq!(kind(engine.list(snap.id, b"")), ErrorKind::Transient);
    drop(engine);
    let engine = Engine::open(&repo).expect("open");
    assert!(engine.check(CheckOptions { read_data: true }).expect("check").is_clean());
}
