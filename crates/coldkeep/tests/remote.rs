//! A repository in a store of its own with its catalog as a local cache (`Engine::open_remote`),
//! here on an in-memory store: the suite the S3 store's tests run against a real server too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use coldkeep::backend::{
    Access, Backend, MemoryBackend, ObjectInfo, ObjectKind, ObjectName, ObjectReader, ObjectWriter,
};
use coldkeep::{
    BackupOptions, Engine, InitOptions, KdfParams, Remote, RestoreOptions, Secret, StoreError,
};

#[test]
fn a_remote_repository_is_shared_by_two_caches_and_survives_losing_one() {
    let scratch = tempfile::tempdir().expect("tempdir");
    coldkeep_testing::remote::remote_repository_suite(
        &(Arc::new(MemoryBackend::new()) as Arc<dyn Backend>),
        "memory:remote",
        scratch.path(),
    );
}

/// Faults at every store write of a backup (it once hung here: a sealer that failed left its
/// queue open and the workers waiting on it).
#[test]
fn a_remote_repository_survives_a_fault_at_every_store_write_of_a_backup() {
    let scratch = tempfile::tempdir().expect("tempdir");
    coldkeep_testing::remote::remote_faults_suite(
        &(Arc::new(MemoryBackend::new()) as Arc<dyn Backend>),
        "memory:faults",
        scratch.path(),
    );
}

/// A store whose pack reads answer slowly, as a bucket across a network does, and that counts
/// how many of them are in flight at once.
#[derive(Debug, Default)]
struct SlowPackReads {
    inner: MemoryBackend,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

impl Backend for SlowPackReads {
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.inner.create(name)
    }
    fn open(&self, name: &ObjectName, access: Access) -> Result<Box<dyn ObjectReader>, StoreError> {
        if name.kind() != ObjectKind::Pack || access != Access::Sequential {
            return self.inner.open(name, access);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(40));
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.inner.open(name, access)
    }
    fn stat(&self, name: &ObjectName) -> Result<ObjectInfo, StoreError> {
        self.inner.stat(name)
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>, StoreError> {
        self.inner.list(kind)
    }
    fn delete(&self, name: &ObjectName) -> Result<(), StoreError> {
        self.inner.delete(name)
    }
    fn remove_unfinished(&self) -> Result<usize, StoreError> {
        self.inner.remove_unfinished()
    }
}

/// A restore keeps several pack fetches in flight: each idle worker fetches the next pack while
/// the others write, instead of all of them waiting behind the one fetching the pack they need.
#[test]
fn a_restore_from_a_slow_store_fetches_several_packs_at_once() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SlowPackReads::default());
    let remote = Remote {
        store: Arc::clone(&store) as Arc<dyn Backend>,
        cache: scratch.path().join("cache"),
        location: "memory:slow".into(),
    };
    // Packs of many frames (a frame per chunk of these files), so that many workers want the
    // same pack at once.
    let init = InitOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        pack_target_size: 256 << 10,
        ..InitOptions::with_secret(Secret::passphrase("slow"))
    };
    let src = scratch.path().join("src");
    coldkeep_testing::Dataset::new(&src, 3).mixed(200, 40_000);
    let engine = Engine::init_remote(remote, &init).expect("init");
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
    let packs = store.inner.list(ObjectKind::Pack).expect("list").len();
    assert!(packs >= 8, "only {packs} packs");
    let target = scratch.path().join("restored");
    let opts = RestoreOptions { threads: Some(4), ..RestoreOptions::default() };
    engine.restore(snap.id, b"", &target, &opts).expect("restore");
    let diffs =
        coldkeep_testing::compare_trees(&src, &target, coldkeep_testing::Compare::default());
    assert!(diffs.is_empty(), "{diffs:?}");
    let most = store.most.load(Ordering::SeqCst);
    assert!(most >= 3, "at most {most} of {packs} pack fetches were in flight at once");
}
