//! The store-lock suite (`coldkeep_testing::store_lock`) on the in-memory backend with Object
//! Lock; `coldkeep-store-s3`'s tests run it on a real S3 bucket with Object Lock. And a store
//! that cannot lock: runs under a Compliance lock succeed there with coldkeep's rules alone.

use std::sync::Arc;

use coldkeep::backend::{Backend, MemoryBackend};
use coldkeep_testing::store_lock::{compliance_run_without_a_store_lock, store_lock_suite};

#[test]
fn a_store_that_locks_passes_the_store_lock_suite() {
    store_lock_suite(&|| Arc::new(MemoryBackend::with_object_lock()));
}

#[test]
fn a_store_that_cannot_lock_leaves_the_locks_to_coldkeep() {
    compliance_run_without_a_store_lock(&(Arc::new(MemoryBackend::new()) as Arc<dyn Backend>));
}

/// A lock the store cannot place refuses the update that asks for it, which then changes
/// nothing: the catalog never promises a lock the store lacks.
#[test]
fn an_update_whose_store_lock_fails_changes_nothing() {
    use coldkeep::backend::ObjectKind;
    use coldkeep::model::{DataLockMode, Principal, Retention, RunUpdate, TimeUnit};
    use coldkeep::{ErrorKind, ProtectError};
    use coldkeep_testing::engine::{backed_up, daily_group};

    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    coldkeep_testing::Dataset::new(&src, 51).mixed(20, 100_000);
    let store: Arc<dyn Backend> = Arc::new(MemoryBackend::with_object_lock());
    let engine = coldkeep_testing::store_lock::engine(&store);
    let week = Retention { unit: TimeUnit::Days, duration: 7, data_lock: None };
    let g = daily_group(&engine, "damaged", &src, week);
    let (run, _) = backed_up(&engine, g);
    let before = engine.run(g, run).expect("run");
    // A pack lost behind coldkeep's back: it cannot be retained.
    let pack = store.list(ObjectKind::Pack).expect("list").remove(0).name;
    store.delete(&pack).expect("delete");

    let lock = RunUpdate {
        run: Some(run),
        data_lock: Some(DataLockMode::Compliance),
        ..Default::default()
    };
    let refused = engine.update_runs(g, &[lock], &Principal::admin("root"));
    let Err(e @ ProtectError::StoreLock(_)) = refused else { panic!("{refused:?}") };
    // A missing object that the catalog names is damage.
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_eq!(engine.run(g, run).expect("run").retention, before.retention);
    assert!(engine.audit_log().expect("audit").is_empty(), "nothing was applied");
}
