//! A repository on disk and the handles every operation shares.
//!
//! ```text
//! <repo>/config     parameters, encrypted or not (written last at init: marks a complete repo)
//! <repo>/keys/      key slots, keys/<id>.key: the master key, wrapped (encrypted repositories)
//! <repo>/catalog/   RocksDB: chunk index, packs, snapshots
//! <repo>/packs/     immutable pack files, packs/<2 hex>/<id>.pack; packs/tmp/ unfinished
//! <repo>/lock       flock(2)ed by the process that has the repository open
//! <repo>/commits    the number of the catalog's last durable batch (see `commit_log`)
//! ```
//!
//! A repository opens [`OpenMode::ReadWrite`] (one process, exclusive lock) or
//! [`OpenMode::ReadOnly`] (any number of readers, shared lock, nothing written). Reading must
//! never need a write: a read-write open writes the catalog, so on a full disk only the
//! read-only open can still list and restore what the repository holds.

pub mod commit_log;
pub mod lock;
pub(crate) mod tickets;
mod tree_cache;
mod trees;

pub(crate) use tree_cache::TreeCache;

pub use trees::{tree_in, Trees, TREE_LOADS_IN_FLIGHT};

pub use commit_log::CatalogBehind;

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use coldkeep_catalog::{Catalog, ChunkLocation, FaultyKv, KvError, KvStore};
use coldkeep_catalog_rocks::RocksKv;
use coldkeep_chunker::{Chunker, ChunkerConfig};
use coldkeep_store::crypto::{MasterKey, SealingKey};
use coldkeep_store::faults::{FaultPlan, FaultyBackend};
use coldkeep_store::{
    Access, Backend, ChunkId, ChunkKey, ErrorKind, LocalBackend, ObjectInfo, ObjectKind,
    ObjectName, PackFile, PackId, PackWriter, StoreError,
};

use self::commit_log::{ReadOnlyKv, SequencedKv};
use self::lock::{FileLock, ProcessLock, RepoLock};
use self::tickets::BackupTickets;
use crate::config::{Keys, RepoConfig};
use crate::error::{DataError, InitError, IoError, OpenError};
use crate::journal::{CommitPoint, JournaledKv};
use crate::keys::{KdfParams, KeyError, KeySlots, Secret};
use crate::tree::Tree;

/// Options fixed when a repository is created.
///
/// A repository is encrypted unless asked otherwise: the default options need a [`secret`]
/// (`init` fails with [`InitError::SecretRequired`] without one), or [`InitOptions::unencrypted`].
///
/// [`secret`]: InitOptions::secret
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub chunker: ChunkerConfig,
    /// zstd level for new blobs (1..=19; [`DEFAULT_ZSTD_LEVEL`] by default).
    pub zstd_level: i32,
    /// Packs are sealed once they reach this size (16 MiB by default).
    pub pack_target_size: u64,
    /// Encrypt what the repository stores (`true` by default).
    pub encrypt: bool,
    /// What unlocks the repository's first key slot.
    pub secret: Option<Secret>,
    /// Argon2id's cost for a passphrase.
    pub kdf: KdfParams,
}

/// zstd level of a new repository. Level 1 backs up the Linux tree 13 % faster than level 3
/// for a repository 5.5 % larger, still 7 % smaller than restic's (docs/BENCHMARKS.md).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: ChunkerConfig::default(),
            zstd_level: DEFAULT_ZSTD_LEVEL,
            pack_target_size: 16 << 20,
            encrypt: true,
            secret: None,
            kdf: KdfParams::default(),
        }
    }
}

impl InitOptions {
    /// The default options, encrypted under `secret`.
    pub fn with_secret(secret: Secret) -> Self {
        Self { secret: Some(secret), ..Self::default() }
    }

    /// The default options, without encryption (recorded in the config).
    pub fn unencrypted() -> Self {
        Self { encrypt: false, ..Self::default() }
    }
}

/// How an existing repository is opened.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub mode: OpenMode,
    /// What unlocks an encrypted repository (ignored for one without encryption).
    pub secret: Option<Secret>,
    pub decorators: Decorators,
}

impl OpenOptions {
    /// Read-write, unlocked by `secret`.
    pub fn with_secret(secret: Secret) -> Self {
        Self { secret: Some(secret), ..Self::default() }
    }
}

/// How a repository is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenMode {
    /// Backups, garbage collection, protection edits: one process at a time.
    #[default]
    ReadWrite,
    /// Reading snapshots (list, read, restore, check, stats, search): nothing in the repository
    /// is written, so a full disk or read-only media can be read. Readers share the repository
    /// with each other, never with a writer. Catalog writes fail with `KvError::ReadOnly`.
    ReadOnly,
}

/// Free space a read-write open needs on the repository's filesystem. Opening the catalog
/// writes a new MANIFEST and reserves its write-ahead log (up to 8 MiB); when such a write
/// fails for want of space, Debian's RocksDB aborts the process on an assertion instead of
/// returning an error. Below this, the open is refused with [`OpenError::DiskFull`].
pub const MIN_FREE_BYTES: u64 = 16 << 20;

/// Bytes this process may still write on the filesystem holding `path` (root may use the
/// blocks the filesystem reserves for it).
fn free_bytes(path: &Path) -> Result<u64, IoError> {
    let st = rustix::fs::statvfs(path)
        .map_err(|e| IoError::new("measure free space of", path, e.into()))?;
    let blocks = if rustix::process::geteuid().is_root() { st.f_bfree } else { st.f_bavail };
    Ok(blocks.saturating_mul(st.f_frsize))
}

/// The free bytes of the filesystem holding `root` when they are fewer than
/// [`MIN_FREE_BYTES`]: too few to write to a repository there.
pub(crate) fn lacks_room(root: &Path) -> Result<Option<u64>, IoError> {
    let free = free_bytes(root)?;
    Ok((free < MIN_FREE_BYTES).then_some(free))
}

/// Makes `dir` accessible to its owner alone (0700).
fn restrict_to_owner(dir: &Path) -> Result<(), IoError> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| IoError::new("restrict the permissions of", dir, e))
}

/// A repository made before repositories were private (0755 under umask 022) is made so at
/// its next read-write open: its directory, and the catalog's and packs' under it. Failing to
/// (another owner's repository, read-only media) is logged, not fatal: what matters is the
/// top directory, and a user who cannot change it did not create it.
fn tighten_old_repository(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(root) else { return };
    #[allow(clippy::verbose_bit_mask)] // permission bits read better as octal
    if meta.mode() & 0o077 == 0 {
        return;
    }
    for dir in [root.to_owned(), root.join("catalog"), root.join("packs")] {
        if let Err(e) = restrict_to_owner(&dir) {
            tracing::warn!(%e, "the repository stays readable by other users");
            return;
        }
    }
    tracing::info!(path = %root.display(), "repository made private to its owner (0700)");
}

/// Decorators put around a repository's catalog and store when it opens: fault injection in
/// tests (see [`Decorators::faults`]); tracing or metrics in a program that embeds the engine.
/// The catalog's decorator wraps RocksDB itself, below the commit numbering, so that a failure
/// it injects is met as a failing disk would be.
#[derive(Clone, Default)]
pub struct Decorators {
    pub catalog: Option<Decorator<dyn KvStore>>,
    pub store: Option<Decorator<dyn Backend>>,
}

/// A function that wraps a catalog or a store in a decorator of the same trait.
pub type Decorator<T> = Arc<dyn Fn(Arc<T>) -> Arc<T> + Send + Sync>;

impl std::fmt::Debug for Decorators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decorators")
            .field("catalog", &self.catalog.is_some())
            .field("store", &self.store.is_some())
            .finish()
    }
}

impl Decorators {
    /// Both catalog and store fail their writes as `plan` says, counted as one sequence.
    pub fn faults(plan: &Arc<FaultPlan>) -> Self {
        let (kv_plan, store_plan) = (Arc::clone(plan), Arc::clone(plan));
        Self {
            catalog: Some(Arc::new(move |kv| Arc::new(FaultyKv::new(kv, Arc::clone(&kv_plan))))),
            store: Some(Arc::new(move |store| {
                Arc::new(FaultyBackend::new(store, Arc::clone(&store_plan)))
            })),
        }
    }

    pub(crate) fn catalog(&self, kv: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        match &self.catalog {
            Some(wrap) => wrap(kv),
            None => kv,
        }
    }

    fn store(&self, store: Arc<dyn Backend>) -> Arc<dyn Backend> {
        match &self.store {
            Some(wrap) => wrap(store),
            None => store,
        }
    }
}

/// The label of a key slot unless told otherwise: who made it, where (`user@host`).
pub fn default_key_label() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

/// Mapped packs kept open for blob reads; bounded so that a long walk does not map everything.
const OPEN_PACKS: usize = 32;

/// An open repository.
#[derive(Debug)]
pub struct Repository {
    /// The repository's directory, or what the program that gave its parts calls it.
    location: PathBuf,
    config: RepoConfig,
    /// Chunk ids are computed under this key.
    chunk_key: ChunkKey,
    /// The master key of an encrypted repository, and the key its objects are sealed under.
    sealing: Option<(MasterKey, SealingKey)>,
    chunker: Chunker,
    catalog: Catalog,
    /// Where the packs are: nothing else in the engine knows how or where they are stored.
    store: Arc<dyn Backend>,
    open_packs: Mutex<HashMap<PackId, Arc<PackFile>>>,
    /// The backups running in this process (garbage collection waits for them).
    tickets: BackupTickets,
    /// Serializes the file index's trigram counts (see `search`).
    index_lock: Mutex<()>,
    lock: Box<dyn RepoLock>,
    /// Set when a read-only open found that the catalog lost commits (a read-write open is
    /// refused instead).
    catalog_behind: Option<CatalogBehind>,
    /// Copies of the trees of a repository in a remote store (see `tree_cache`).
    tree_cache: Option<TreeCache>,
}

/// The catalog would not open (missing, or damaged beyond what RocksDB recovers from).
fn unreadable(root: &Path, e: &KvError) -> OpenError {
    OpenError::CatalogUnreadable { path: root.to_owned(), reason: e.to_string() }
}

/// A repository's parts before its catalog is opened.
pub(crate) struct Prepared {
    pub config: RepoConfig,
    pub chunker: Chunker,
    pub lock: Box<dyn RepoLock>,
    pub store: Arc<dyn Backend>,
    pub sealing: Option<MasterKey>,
}

/// A repository's store and catalog, made by the program rather than found in a directory: an
/// in-memory repository (`MemoryBackend` and `MemKv`), or a store and catalog of its own. The
/// catalog is an index of the store: an empty one on a store that holds a repository is
/// refused at open (`JournalError::CatalogOlder`), not taken for an empty repository.
#[derive(Clone)]
pub struct Parts {
    /// Where the repository's objects are.
    pub store: Arc<dyn Backend>,
    /// Its catalog.
    pub catalog: Arc<dyn KvStore>,
    /// What messages (and `Engine::path`) call the repository.
    pub location: PathBuf,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts").field("location", &self.location).finish_non_exhaustive()
    }
}

impl Parts {
    /// A new, empty repository held in memory (tests, simulations, a scratch area).
    pub fn in_memory(location: impl Into<PathBuf>) -> Self {
        Self {
            store: Arc::new(coldkeep_store::MemoryBackend::new()),
            catalog: Arc::new(coldkeep_catalog::MemKv::new()),
            location: location.into(),
        }
    }
}

/// Reads and decodes the config of the repository in `store`.
fn read_config(store: &dyn Backend, location: &Path) -> Result<RepoConfig, OpenError> {
    let bytes = match store.get(&ObjectName::config()) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(OpenError::NotARepository(location.to_owned()))
        }
        Err(e) => return Err(e.into()),
    };
    RepoConfig::decode(&bytes, &location.join("config"))
}

/// Stack of a backup or restore worker: both walk a tree recursively, a directory level at a
/// time (with rayon's frames in between), and a tree has no depth limit of its own. 64 MiB of
/// address space (touched only as deep as the tree goes) takes 2 000 levels with room to spare
/// (`tests/deep.rs`; 6 000 passed too); the default 2 MiB overflowed at 2 000.
const WORKER_STACK: usize = 64 << 20;

/// A thread pool for one operation's workers: `threads` of them, one per core by default.
/// `path` names what the operation works on, for the error.
pub(crate) fn worker_pool(
    threads: Option<usize>,
    name: &'static str,
    path: &Path,
) -> Result<rayon::ThreadPool, IoError> {
    let threads = threads.unwrap_or_else(cores);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(WORKER_STACK)
        .thread_name(move |i| format!("coldkeep-{name}-{i}"))
        .build()
        .map_err(|e| IoError::new("start worker threads for", path, std::io::Error::other(e)))
}

/// The cores this process may use (2 when that cannot be told).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

pub fn now_us() -> i64 {
    system_time_us(SystemTime::now())
}

/// A system time as µs since the epoch (0 before it).
pub(crate) fn system_time_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Where a new repository goes: what both kinds of `init` hand to the steps they share.
pub(crate) struct Site<'a> {
    pub location: &'a Path,
    pub store: Arc<dyn Backend>,
    /// The directory of the catalog's commit file (a local catalog's; none for given parts).
    pub commits: Option<&'a Path>,
    pub commit_point: CommitPoint,
    pub lock: Box<dyn RepoLock>,
}

/// The catalog of a repository opened read-write: numbered (with its commit file in `commits`,
/// when it has one) and journaled into the store. Where the catalog is the commit point, the
/// store's unfinished objects are removed too — the write lock is held, so no one else is
/// writing them (in a shared store, others may be: see `remote`).
pub(crate) fn writable_catalog(
    kv: Arc<dyn KvStore>,
    commits: Option<&Path>,
    store: &Arc<dyn Backend>,
    master: Option<&MasterKey>,
    commit_point: CommitPoint,
) -> Result<Arc<dyn KvStore>, OpenError> {
    let kv = Arc::new(SequencedKv::new(commits, kv)?);
    let seal = master.map(MasterKey::object_key);
    let kv = JournaledKv::open(kv, Arc::clone(store), seal, commit_point)?;
    if commit_point == CommitPoint::Catalog {
        let removed = store.remove_unfinished()?;
        if removed > 0 {
            tracing::info!(removed, "removed unfinished objects left by an interrupted write");
        }
    }
    Ok(Arc::new(kv))
}

impl Repository {
    /// Creates a repository in the directory `root` (absent or empty).
    pub fn init(root: &Path, opts: &InitOptions) -> Result<Self, InitError> {
        let chunker = Chunker::new(opts.chunker)?;
        match std::fs::read_dir(root) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(InitError::AlreadyExists(root.to_owned()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(root).map_err(|e| IoError::new("create", root, e))?;
            }
            Err(_) => return Err(InitError::AlreadyExists(root.to_owned())),
        }
        // Whatever the umask, and whatever mode an existing empty directory had: the
        // repository holds the chunk key and every backed-up byte in plaintext.
        restrict_to_owner(root)?;
        // Another process initializing the same directory at the same moment got there first.
        let lock = FileLock::acquire(root, OpenMode::ReadWrite)?
            .ok_or_else(|| InitError::AlreadyExists(root.to_owned()))?;
        if let Some(free) = lacks_room(root)? {
            let path = root.to_owned();
            return Err(InitError::DiskFull { path, free, needed: MIN_FREE_BYTES });
        }
        let store = Arc::new(LocalBackend::create(root)?);
        let catalog = root.join("catalog");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&catalog)
            .map_err(|e| IoError::new("create", &catalog, e))?;
        let kv = Arc::new(RocksKv::open(&catalog, true)?);
        let site = Site {
            location: root,
            store,
            commits: Some(root),
            commit_point: CommitPoint::Catalog,
            lock: Box::new(lock),
        };
        Self::init_at(site, coldkeep_store::random_bytes(), kv, chunker, opts)
    }

    /// Creates a repository in `parts`: a store that holds no repository yet, and an empty
    /// catalog.
    pub fn init_parts(parts: Parts, opts: &InitOptions) -> Result<Self, InitError> {
        let chunker = Chunker::new(opts.chunker)?;
        if !parts.store.list(ObjectKind::Config)?.is_empty() {
            return Err(InitError::AlreadyExists(parts.location));
        }
        let repo_id = coldkeep_store::random_bytes();
        let lock = ProcessLock::acquire(repo_id, OpenMode::ReadWrite)
            .ok_or_else(|| InitError::AlreadyExists(parts.location.clone()))?;
        let site = Site {
            location: &parts.location,
            store: parts.store,
            commits: None,
            commit_point: CommitPoint::Catalog,
            lock: Box::new(lock),
        };
        Self::init_at(site, repo_id, parts.catalog, chunker, opts)
    }

    /// What both kinds of `init` share once the store, the catalog and the lock are there: the
    /// keys, the config, the catalog's numbering and journal. The config is written last: a
    /// store that holds it holds a whole repository.
    pub(crate) fn init_at(
        site: Site<'_>,
        repo_id: [u8; 16],
        kv: Arc<dyn KvStore>,
        chunker: Chunker,
        opts: &InitOptions,
    ) -> Result<Self, InitError> {
        let store = site.store;
        let (keys, sealing) = match (opts.encrypt, &opts.secret) {
            (false, _) => (Keys::Plain(ChunkKey::generate()), None),
            (true, None) => return Err(InitError::SecretRequired),
            (true, Some(secret)) => {
                let master = MasterKey::generate();
                let slots = KeySlots { store: store.as_ref(), repo_id };
                slots.add(&master, secret, opts.kdf, &default_key_label(), now_us())?;
                (Keys::Sealed, Some(master))
            }
        };
        let config = RepoConfig {
            repo_id,
            created_us: now_us(),
            chunking: opts.chunker.into(),
            keys,
            zstd_level: opts.zstd_level,
            pack_target_size: opts.pack_target_size,
        };
        let kv = Arc::new(SequencedKv::new(site.commits, kv)?);
        let seal = sealing.as_ref().map(MasterKey::object_key);
        let kv = Arc::new(JournaledKv::open(kv, store.clone(), seal, site.commit_point)?);
        store.put(&ObjectName::config(), &config.encode())?;
        Ok(Self::assemble(site.location, config, sealing, chunker, kv, store, site.lock, None))
    }

    /// What opening and rebuilding the repository in directory `root` share: the config, the
    /// lock, the store and the unlocked master key. A wrong key fails here, before the catalog
    /// is touched.
    pub(crate) fn prepare(root: &Path, opts: &OpenOptions) -> Result<Prepared, OpenError> {
        let store = match LocalBackend::open(root) {
            Ok(store) => Arc::new(store),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(OpenError::NotARepository(root.to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        Self::prepare_at(root, store, opts, |_| {
            FileLock::acquire(root, opts.mode).map(|l| l.map(|l| Box::new(l) as Box<dyn RepoLock>))
        })
    }

    /// The config read from `store` (undecorated: a decorator's failures are for the
    /// operations after the open), the lock `lock` takes, and the keys unlocked.
    pub(crate) fn prepare_at(
        location: &Path,
        store: Arc<dyn Backend>,
        opts: &OpenOptions,
        lock: impl FnOnce(&RepoConfig) -> Result<Option<Box<dyn RepoLock>>, IoError>,
    ) -> Result<Prepared, OpenError> {
        let config = read_config(store.as_ref(), location)?;
        let chunker = Chunker::new(config.chunking.into()).map_err(|e| {
            OpenError::CorruptConfig { path: location.join("config"), reason: e.to_string() }
        })?;
        let lock = lock(&config)?.ok_or_else(|| OpenError::Busy(location.to_owned()))?;
        let store = opts.decorators.store(store);
        // Unlocked before the catalog is opened: a wrong key touches nothing.
        let sealing = match &config.keys {
            Keys::Plain(_) => None,
            Keys::Sealed => {
                let secret = opts.secret.as_ref().ok_or(OpenError::SecretRequired)?;
                let slots = KeySlots { store: store.as_ref(), repo_id: config.repo_id };
                Some(slots.unlock(secret)?.0)
            }
        };
        Ok(Prepared { config, chunker, lock, store, sealing })
    }

    /// Opens the repository in directory `root`.
    pub fn open(root: &Path, opts: &OpenOptions) -> Result<Self, OpenError> {
        let (mode, decorators) = (opts.mode, &opts.decorators);
        let Prepared { config, chunker, lock, store, sealing } = Self::prepare(root, opts)?;
        let catalog = root.join("catalog");
        let (kv, behind): (Arc<dyn KvStore>, _) = match mode {
            OpenMode::ReadOnly => {
                let kv = RocksKv::open_read_only(&catalog).map_err(|e| unreadable(root, &e))?;
                let kv = decorators.catalog(Arc::new(kv));
                let behind = commit_log::verify(root, kv.as_ref(), mode)?;
                if let Some(b) = behind {
                    tracing::warn!(
                        catalog = b.catalog,
                        recorded = b.recorded,
                        "the catalog is older than the repository: it lost commits"
                    );
                }
                (Arc::new(ReadOnlyKv(kv)), behind)
            }
            OpenMode::ReadWrite => {
                if let Some(free) = lacks_room(root)? {
                    let path = root.to_owned();
                    return Err(OpenError::DiskFull { path, free, needed: MIN_FREE_BYTES });
                }
                tighten_old_repository(root);
                let kv = RocksKv::open(&catalog, false).map_err(|e| unreadable(root, &e))?;
                let kv = decorators.catalog(Arc::new(kv));
                commit_log::verify(root, kv.as_ref(), mode)?;
                let point = CommitPoint::Catalog;
                (writable_catalog(kv, Some(root), &store, sealing.as_ref(), point)?, None)
            }
        };
        Ok(Self::assemble(root, config, sealing, chunker, kv, store, lock, behind))
    }

    /// What opening and rebuilding the repository in given parts share (see
    /// [`Repository::prepare`]).
    pub(crate) fn prepare_parts(
        location: &Path,
        store: Arc<dyn Backend>,
        opts: &OpenOptions,
    ) -> Result<Prepared, OpenError> {
        Self::prepare_at(location, store, opts, |config| {
            Ok(ProcessLock::acquire(config.repo_id, opts.mode)
                .map(|l| Box::new(l) as Box<dyn RepoLock>))
        })
    }

    /// Opens the repository in `parts`.
    pub fn open_parts(parts: Parts, opts: &OpenOptions) -> Result<Self, OpenError> {
        let mode = opts.mode;
        let location = parts.location;
        let Prepared { config, chunker, lock, store, sealing } =
            Self::prepare_parts(&location, parts.store, opts)?;
        let kv = opts.decorators.catalog(parts.catalog);
        let kv: Arc<dyn KvStore> = match mode {
            OpenMode::ReadOnly => Arc::new(ReadOnlyKv(kv)),
            OpenMode::ReadWrite => {
                writable_catalog(kv, None, &store, sealing.as_ref(), CommitPoint::Catalog)?
            }
        };
        Ok(Self::assemble(&location, config, sealing, chunker, kv, store, lock, None))
    }

    #[allow(clippy::too_many_arguments)] // one call per constructor, each naming every part
    pub(crate) fn assemble(
        location: &Path,
        config: RepoConfig,
        master: Option<MasterKey>,
        chunker: Chunker,
        kv: Arc<dyn KvStore>,
        store: Arc<dyn Backend>,
        lock: Box<dyn RepoLock>,
        catalog_behind: Option<CatalogBehind>,
    ) -> Self {
        let chunk_key = match (&config.keys, &master) {
            (Keys::Plain(key), _) => key.clone(),
            (Keys::Sealed, Some(master)) => master.chunk_key(),
            (Keys::Sealed, None) => unreachable!("an encrypted repository is assembled unlocked"),
        };
        let sealing = master.map(|m| {
            let key = m.object_key();
            (m, key)
        });
        Self {
            location: location.to_owned(),
            config,
            chunk_key,
            sealing,
            chunker,
            catalog: Catalog::new(kv),
            store,
            open_packs: Mutex::new(HashMap::new()),
            tickets: BackupTickets::new(),
            index_lock: Mutex::new(()),
            lock,
            catalog_behind,
            tree_cache: None,
        }
    }

    /// This repository, its trees read through (and written to) `cache`.
    pub(crate) fn with_tree_cache(mut self, cache: TreeCache) -> Self {
        self.tree_cache = Some(cache);
        self
    }

    /// The repository's directory, or what the program that gave its parts calls it.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// The parameters fixed at `init`.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    /// The catalog: the index of what the store holds.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The backups running in this process (garbage collection waits for them).
    pub(crate) fn tickets(&self) -> &BackupTickets {
        &self.tickets
    }

    /// Serializes the file index's trigram counts (see `search`).
    pub fn index_lock(&self) -> &Mutex<()> {
        &self.index_lock
    }

    /// Set when a read-only open found that the catalog lost commits.
    pub fn catalog_behind(&self) -> Option<CatalogBehind> {
        self.catalog_behind
    }

    /// How this process opened the repository.
    pub fn mode(&self) -> OpenMode {
        self.lock.mode()
    }

    /// Fails with [`KvError::ReadOnly`] when the repository is open read-only: operations that
    /// write packs or the catalog call this before they write anything.
    pub fn ensure_writable(&self, op: &'static str) -> Result<(), KvError> {
        match self.mode() {
            OpenMode::ReadWrite => Ok(()),
            OpenMode::ReadOnly => Err(KvError::ReadOnly { op }),
        }
    }

    /// The key chunk ids are computed under.
    pub fn chunk_key(&self) -> &ChunkKey {
        &self.chunk_key
    }

    /// The key objects are sealed under, in an encrypted repository.
    pub fn seal(&self) -> Option<&SealingKey> {
        self.sealing.as_ref().map(|(_, key)| key)
    }

    /// The repository's key slots, and its master key when it is encrypted.
    pub fn key_slots(&self) -> Result<(KeySlots<'_>, &MasterKey), KeyError> {
        let (master, _) = self.sealing.as_ref().ok_or(KeyError::NotEncrypted)?;
        Ok((KeySlots { store: self.store.as_ref(), repo_id: self.config.repo_id }, master))
    }

    /// Opens a pack for reading (not through the cache of [`pack`](Self::pack)).
    pub fn open_pack(&self, id: PackId, access: Access) -> Result<PackFile, StoreError> {
        PackFile::open(&*self.store, id, access, self.seal())
    }

    /// Starts a new pack.
    pub fn new_pack(&self) -> Result<PackWriter, StoreError> {
        PackWriter::create(&*self.store, self.config.zstd_level, self.seal())
    }

    /// Maps a pack (or reuses a mapping).
    pub fn pack(&self, id: PackId) -> Result<Arc<PackFile>, DataError> {
        let mut open = self.open_packs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = open.get(&id) {
            return Ok(Arc::clone(p));
        }
        if open.len() >= OPEN_PACKS {
            open.clear();
        }
        let pack = Arc::new(self.open_pack(id, Access::Random)?);
        open.insert(id, Arc::clone(&pack));
        Ok(pack)
    }

    /// The store the repository's objects are in.
    pub(crate) fn store(&self) -> &dyn Backend {
        &*self.store
    }

    /// Every pack in the store, in id order, with its length and write time.
    pub fn stored_packs(&self) -> Result<Vec<(PackId, ObjectInfo)>, StoreError> {
        let objects = self.store.list(ObjectKind::Pack)?;
        Ok(objects.into_iter().filter_map(|info| Some((info.name.pack_id()?, info))).collect())
    }

    /// Deletes a pack from the store; one already gone counts as deleted. Returns its length
    /// when this call deleted it.
    pub fn delete_pack(&self, id: PackId) -> Result<Option<u64>, StoreError> {
        self.forget_pack(id);
        let name = ObjectName::pack(id);
        let len = match self.store.stat(&name) {
            Ok(info) => info.len,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match self.store.delete(&name) {
            Ok(()) => Ok(Some(len)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Drops a cached handle of a pack that is being deleted.
    pub fn forget_pack(&self, id: PackId) {
        self.open_packs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    }

    /// Where a chunk is stored.
    pub fn locate(&self, id: &ChunkId) -> Result<ChunkLocation, DataError> {
        self.catalog.chunk(id)?.ok_or(DataError::MissingChunk(*id))
    }

    /// The plaintext of a stored blob, checked against its id.
    pub fn load_blob(&self, id: &ChunkId) -> Result<Vec<u8>, DataError> {
        let loc = self.locate(id)?;
        Ok(self.pack(loc.pack)?.read_blob(&loc.entry, Some(&self.chunk_key))?)
    }

    /// A directory tree the catalog indexes, from the tree cache when the repository has one
    /// and it holds the tree, else from the store (and then kept in the cache).
    pub fn load_tree(&self, id: &ChunkId) -> Result<Tree, DataError> {
        let Some(cache) = &self.tree_cache else { return self.load_stored_tree(id) };
        // The catalog decides what exists; the cache only saves the fetch.
        let loc = self.locate(id)?;
        if let Some(plain) = cache.get(id, &self.chunk_key, self.seal()) {
            return Tree::decode(*id, &plain);
        }
        let plain = self.pack(loc.pack)?.read_blob(&loc.entry, Some(&self.chunk_key))?;
        let tree = Tree::decode(*id, &plain)?;
        cache.put(id, &plain, self.seal());
        Ok(tree)
    }

    /// A directory tree read from the store whatever the cache holds (`check` verifies the
    /// store).
    pub fn load_stored_tree(&self, id: &ChunkId) -> Result<Tree, DataError> {
        Tree::decode(*id, &self.load_blob(id)?)
    }

    /// Keeps a copy of tree `id` that a backup is storing, when the repository has a tree cache.
    pub(crate) fn cache_tree(&self, id: &ChunkId, plain: &[u8]) {
        if let Some(cache) = &self.tree_cache {
            cache.put(id, plain, self.seal());
        }
    }

    /// Removes from the tree cache the trees the catalog no longer indexes (after a collection
    /// here or elsewhere); returns how many. One whose lookup fails is kept.
    pub fn prune_tree_cache(&self) -> u64 {
        let Some(cache) = &self.tree_cache else { return 0 };
        let removed = cache.retain(|id| !matches!(self.catalog.chunk(id), Ok(None)));
        if removed > 0 {
            tracing::info!(removed, "trees no longer indexed removed from the tree cache");
        }
        removed
    }
}
