//! A repository in a store of its own with its catalog as a local cache (`Engine::open_remote`),
//! here on an in-memory store: the suite the S3 store's tests run against a real server too.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use coldkeep::backend::{
    Access, Backend, MemoryBackend, ObjectInfo, ObjectKind, ObjectName, ObjectReader, ObjectWriter,
};
use coldkeep::{
    BackupOptions, CheckOptions, Engine, InitOptions, KdfParams, OpenMode, OpenOptions, Remote,
    RestoreOptions, Secret, StoreError,
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

/// A memory store that watches its packs: a sequential read (a restore's) and the finish of a
/// write (a backup's upload) can be made slow, as a bucket across a network is, and the most in
/// flight at once is kept, as is the most open at once; a random read (a tree's or a blob's) is
/// counted, and can be made to fail.
#[derive(Debug, Default)]
struct WatchedStore {
    inner: MemoryBackend,
    slow_ms: u64,
    fetches: Gauge,
    open: Arc<Gauge>,
    uploads: Arc<Gauge>,
    random_opens: AtomicUsize,
    fail_random: AtomicBool,
}

/// A pack writer that takes `slow_ms` to finish, as an upload across a network does, counted in
/// its store's `uploads` gauge meanwhile.
#[derive(Debug)]
struct SlowWriter {
    inner: Box<dyn ObjectWriter>,
    slow_ms: u64,
    uploads: Arc<Gauge>,
}

impl ObjectWriter for SlowWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.write(bytes)
    }
    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        self.uploads.during(self.slow_ms);
        self.inner.finish()
    }
}

/// How many of something there are now, and the most there were at once.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Gauge {
    fn up(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn down(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    /// Counted for `ms` milliseconds, as a slow request is.
    fn during(&self, ms: u64) {
        self.up();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        self.down();
    }
}

/// A sequential reader, counted in its store's `open` gauge while it lives.
#[derive(Debug)]
struct CountedReader {
    inner: Box<dyn ObjectReader>,
    gauge: Arc<Gauge>,
}

impl ObjectReader for CountedReader {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<std::borrow::Cow<'_, [u8]>, StoreError> {
        self.inner.read_at(offset, len)
    }
}

impl Drop for CountedReader {
    fn drop(&mut self) {
        self.gauge.down();
    }
}

impl WatchedStore {
    fn slow(ms: u64) -> Self {
        Self { slow_ms: ms, ..Self::default() }
    }
}

impl Backend for WatchedStore {
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let inner = self.inner.create(name)?;
        if name.kind() != ObjectKind::Pack || self.slow_ms == 0 {
            return Ok(inner);
        }
        let uploads = Arc::clone(&self.uploads);
        Ok(Box::new(SlowWriter { inner, slow_ms: self.slow_ms, uploads }))
    }
    fn open(&self, name: &ObjectName, access: Access) -> Result<Box<dyn ObjectReader>, StoreError> {
        if name.kind() != ObjectKind::Pack {
            return self.inner.open(name, access);
        }
        if access == Access::Random {
            self.random_opens.fetch_add(1, Ordering::SeqCst);
            if self.fail_random.load(Ordering::SeqCst) {
                let cause = std::io::Error::other("the store is unreachable");
                return Err(StoreError::backend("open", name, cause));
            }
            return self.inner.open(name, access);
        }
        // Open from the moment it is asked for: that is when a bucket's reader starts taking
        // memory.
        self.open.up();
        self.fetches.during(self.slow_ms);
        match self.inner.open(name, access) {
            Ok(inner) => Ok(Box::new(CountedReader { inner, gauge: Arc::clone(&self.open) })),
            Err(e) => {
                self.open.down();
                Err(e)
            }
        }
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

/// A backup keeps two pack uploads in flight (two sealers). A restore keeps several pack
/// fetches in flight: each idle worker fetches the next pack while the others write, instead of
/// all of them waiting behind the one fetching the pack they need. It holds no more packs at
/// once than its memory allows.
#[test]
fn a_slow_store_gets_several_pack_uploads_and_fetches_at_once_within_a_restores_memory() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(WatchedStore::slow(40));
    let remote = Remote {
        store: Arc::clone(&store) as Arc<dyn Backend>,
        cache: scratch.path().join("cache"),
        location: "memory:slow".into(),
    };
    // Packs of many frames (a frame per chunk of these files), so that many workers want the
    // same pack at once.
    let pack_size = 256 << 10;
    let init = InitOptions {
        kdf: KdfParams::INSECURE_FOR_TESTS,
        pack_target_size: pack_size,
        ..InitOptions::with_secret(Secret::passphrase("slow"))
    };
    let src = scratch.path().join("src");
    coldkeep_testing::Dataset::new(&src, 3).mixed(200, 40_000);
    let engine = Engine::init_remote(remote, &init).expect("init");
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
    let packs = store.inner.list(ObjectKind::Pack).expect("list").len();
    assert!(packs >= 8, "only {packs} packs");
    let uploads = store.uploads.most.load(Ordering::SeqCst);
    assert!(uploads >= 2, "at most {uploads} of {packs} pack uploads were in flight at once");
    let target = scratch.path().join("restored");
    let opts = RestoreOptions { threads: Some(4), ..RestoreOptions::default() };
    engine.restore(snap.id, b"", &target, &opts).expect("restore");
    let diffs =
        coldkeep_testing::compare_trees(&src, &target, coldkeep_testing::Compare::default());
    assert!(diffs.is_empty(), "{diffs:?}");
    let most = store.fetches.most.load(Ordering::SeqCst);
    assert!(most >= 3, "at most {most} of {packs} pack fetches were in flight at once");

    // With room for three packs, no more than three are open at once, and the fetches still
    // overlap.
    let packs_at_once = 3;
    store.fetches.most.store(0, Ordering::SeqCst);
    store.open.most.store(0, Ordering::SeqCst);
    let target = scratch.path().join("restored-in-little-memory");
    let opts = RestoreOptions {
        threads: Some(8),
        pack_memory: Some(packs_at_once * pack_size),
        ..RestoreOptions::default()
    };
    engine.restore(snap.id, b"", &target, &opts).expect("restore");
    let diffs =
        coldkeep_testing::compare_trees(&src, &target, coldkeep_testing::Compare::default());
    assert!(diffs.is_empty(), "{diffs:?}");
    let open = store.open.most.load(Ordering::SeqCst);
    assert_eq!(store.open.now.load(Ordering::SeqCst), 0, "packs left open");
    assert!(open <= packs_at_once as usize, "{open} packs were open at once");
    let most = store.fetches.most.load(Ordering::SeqCst);
    assert!(most >= 2, "at most {most} pack fetches were in flight at once");
}

/// After a backup, the next backup and a restore read no tree from the store: the repository
/// keeps a copy of each tree it writes or reads in its local cache. A damaged cache is read
/// around (and mended from the store), and `check` still reads the store, not the cache.
#[test]
fn a_remote_repository_reads_its_trees_from_the_local_cache_but_checks_the_store() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(WatchedStore::default());
    let remote = || Remote {
        store: Arc::clone(&store) as Arc<dyn Backend>,
        cache: scratch.path().join("cache"),
        location: "memory:trees".into(),
    };
    let secret = || Secret::passphrase("trees");
    let init =
        InitOptions { kdf: KdfParams::INSECURE_FOR_TESTS, ..InitOptions::with_secret(secret()) };
    let open = OpenOptions { mode: OpenMode::ReadWrite, ..OpenOptions::with_secret(secret()) };
    let src = scratch.path().join("src");
    coldkeep_testing::Dataset::new(&src, 5).mixed(300, 20_000);
    let first = Engine::init_remote(remote(), &init).expect("init");
    first.backup(&src, &BackupOptions::default()).expect("first backup");
    drop(first);

    let restore_exactly = |engine: &Engine, id, into: &str| {
        let target = scratch.path().join(into);
        engine.restore(id, b"", &target, &RestoreOptions::default()).expect("restore");
        let diffs =
            coldkeep_testing::compare_trees(&src, &target, coldkeep_testing::Compare::default());
        assert!(diffs.is_empty(), "{diffs:?}");
    };
    store.random_opens.store(0, Ordering::SeqCst);
    let (engine, _) = Engine::open_remote(remote(), &open).expect("open");
    let second = engine.backup(&src, &BackupOptions::default()).expect("unchanged backup");
    restore_exactly(&engine, second.id, "restored");
    assert_eq!(store.random_opens.load(Ordering::SeqCst), 0, "trees were read from the store");
    drop(engine);

    // Every entry damaged: each is a miss, read from the store and written anew.
    let trees = scratch.path().join("cache");
    let mut damaged = 0;
    for entry in walk_files(&trees) {
        if entry.components().any(|c| c.as_os_str() == "trees") {
            std::fs::write(&entry, b"not a tree").expect("damage");
            damaged += 1;
        }
    }
    assert!(damaged > 20, "only {damaged} trees were cached");
    let (engine, _) = Engine::open_remote(remote(), &open).expect("open");
    restore_exactly(&engine, second.id, "restored-damaged");
    assert!(store.random_opens.load(Ordering::SeqCst) > 0, "the damaged entries were used");
    store.random_opens.store(0, Ordering::SeqCst);
    restore_exactly(&engine, second.id, "restored-mended");
    assert_eq!(store.random_opens.load(Ordering::SeqCst), 0, "the cache was not mended");

    // The store's trees unreachable: check says so although the cache holds every tree.
    drop(engine);
    store.fail_random.store(true, Ordering::SeqCst);
    let (engine, _) = Engine::open_remote(remote(), &open).expect("open");
    let checked = engine.check(CheckOptions { read_data: false });
    assert!(
        checked.as_ref().map_or(true, |report| !report.problems.is_empty()),
        "check trusted the cache: {checked:?}"
    );
}

/// Every file below `dir`.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}
