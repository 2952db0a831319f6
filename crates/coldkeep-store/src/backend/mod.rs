//! Where a repository's objects live: the one seam between coldkeep and its storage.
//!
//! A repository is a set of immutable, content-named objects. [`Backend`] is all coldkeep asks
//! of the storage that holds them, on the model of restic's `Backend` and rustic_core's
//! `ReadBackend`/`WriteBackend`:
//!
//! * [`create`](Backend::create) an object as a stream, made visible whole and only when
//!   [`finish`](ObjectWriter::finish)ed, and **create-only**: an object that exists is never
//!   overwritten ([`ErrorKind::AlreadyExists`]). Two writers cannot clobber each other, and a
//!   retried write of a content-named object fails harmlessly.
//! * [`open`](Backend::open) it and read byte ranges ([`ObjectReader::read_at`]), so restoring
//!   one file never reads a whole pack.
//! * [`stat`](Backend::stat), [`list`](Backend::list) and [`delete`](Backend::delete).
//!
//! Every failure is a [`StoreError`](crate::StoreError) whose [`kind`](crate::StoreError::kind)
//! says whether trying again may help ([`ErrorKind::Transient`]) or not.
//!
//! * Optionally, [`object_lock`](Backend::object_lock): retention and legal holds the storage
//!   itself enforces ([`ObjectLock`]), so that a locked snapshot's objects cannot be deleted
//!   even with the storage's own credentials.
//!
//! Two implementations live here: [`LocalBackend`] (a directory: memory maps and `pread` stay
//! inside it) and [`MemoryBackend`] (tests, and the reference the others are checked against).
//! Both pass the one [`conformance`] suite; every new backend must too.

pub mod conformance;
mod local;
mod lock;
mod memory;

use std::borrow::Cow;
use std::fmt;

pub use local::LocalBackend;
pub use lock::ObjectLock;
pub use memory::MemoryBackend;

use crate::{PackId, StoreError};

/// The kinds of object a repository holds. Each kind is a namespace of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A pack of chunks (`docs/FORMAT.md`).
    Pack,
    /// A key slot: the repository's master key, wrapped (`docs/FORMAT.md`).
    Key,
    /// An entry of the catalog's journal: one batch's changes to the record tables.
    Journal,
    /// The repository's config (`docs/FORMAT.md`): one object, named `config`, written last
    /// at `init`, so that a store holding it holds a whole repository.
    Config,
}

impl ObjectKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ObjectKind; 4] =
        [ObjectKind::Pack, ObjectKind::Key, ObjectKind::Journal, ObjectKind::Config];

    /// The kind's name, as backends use it in paths and keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Pack => "packs",
            ObjectKind::Key => "keys",
            ObjectKind::Journal => "journal",
            ObjectKind::Config => "config",
        }
    }
}

/// The name of the one object of [`ObjectKind::Config`].
const CONFIG_NAME: &str = "config";

/// The name of an object: its kind and a name inside that kind.
///
/// Names are what content-addressed ids print as: lowercase ASCII letters, digits, `-` and `_`,
/// 2 to 128 characters. Anything else is refused when a name is made, so no backend ever sees a
/// name that could leave its namespace (`..`, `/`) or differ only by case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName {
    kind: ObjectKind,
    name: String,
}

impl ObjectName {
    /// A name of `kind`, or `None` when `name` is not a valid object name. The config kind has
    /// one object, [`ObjectName::config`].
    pub fn new(kind: ObjectKind, name: &str) -> Option<Self> {
        let valid = (2..=128).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && (kind != ObjectKind::Config || name == CONFIG_NAME);
        valid.then(|| Self { kind, name: name.to_owned() })
    }

    /// The repository's config.
    pub fn config() -> Self {
        Self { kind: ObjectKind::Config, name: CONFIG_NAME.to_owned() }
    }

    /// The object that holds pack `id`.
    pub fn pack(id: PackId) -> Self {
        Self { kind: ObjectKind::Pack, name: id.to_string() }
    }

    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pack this object holds, when it is one.
    pub fn pack_id(&self) -> Option<PackId> {
        (self.kind == ObjectKind::Pack).then(|| self.name.parse().ok()).flatten()
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

/// What a backend knows of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: ObjectName,
    /// Length in bytes.
    pub len: u64,
    /// When the object was written (µs since the epoch, by the storage's clock).
    pub written_us: i64,
}

/// How an object will be read: a hint that lets a backend choose between a copy per read and
/// a mapping.
///
/// It matters for memory: every touched page of a memory map counts towards the process's
/// resident set, and on a fault the kernel maps the neighbouring cached pages too
/// ("fault-around", 64 KiB), whatever `madvise` says. Reading a few small tree blobs from many
/// mapped packs grew a backup's RSS by 200 MB; `pread` into a buffer costs one copy and keeps
/// only that buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A few ranges, anywhere (trees, single files).
    Random,
    /// Most of the object, in offset order (restore, check).
    Sequential,
}

/// The kind of a storage failure: what a caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// An object of that name exists already (a create-only write lost).
    AlreadyExists,
    /// The storage has no room.
    Full,
    /// The storage refused access (credentials, permissions, read-only media).
    Denied,
    /// A failure that may pass: a timeout, a dropped connection, a throttled request. The same
    /// call may succeed if tried again.
    Transient,
    /// Anything else: trying again will not help.
    Permanent,
}

impl ErrorKind {
    /// The kind of an I/O error.
    pub fn of(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Self::NotFound,
            K::AlreadyExists => Self::AlreadyExists,
            K::StorageFull | K::QuotaExceeded => Self::Full,
            K::PermissionDenied | K::ReadOnlyFilesystem => Self::Denied,
            K::Interrupted
            | K::TimedOut
            | K::WouldBlock
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::BrokenPipe
            | K::NotConnected
            | K::ResourceBusy => Self::Transient,
            _ => Self::Permanent,
        }
    }
}

/// A repository's storage (see the module documentation for the contract).
///
/// Implementations are shared by every worker of an operation, hence `Send + Sync`.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Starts writing a new object. Nothing is visible under `name` until the writer's
    /// [`finish`](ObjectWriter::finish) returns; a writer dropped unfinished leaves nothing
    /// (or debris that [`remove_unfinished`](Self::remove_unfinished) clears).
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError>;

    /// Opens an object for reading.
    fn open(&self, name: &ObjectName, access: Access) -> Result<Box<dyn ObjectReader>, StoreError>;

    /// What is known of an object.
    fn stat(&self, name: &ObjectName) -> Result<ObjectInfo, StoreError>;

    /// Every finished object of `kind`, in name order.
    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>, StoreError>;

    /// Deletes an object. Deleting one that does not exist fails with [`ErrorKind::NotFound`].
    fn delete(&self, name: &ObjectName) -> Result<(), StoreError>;

    /// Removes what unfinished writes left behind (a crash in the middle of one). Call only
    /// when no writer can be running: with the repository's write lock held. Returns how many
    /// were removed.
    fn remove_unfinished(&self) -> Result<usize, StoreError>;

    /// The storage's own retention and legal holds, when it has them ([`ObjectLock`]); `None`
    /// for storage that cannot refuse a deletion by itself. It may ask the storage (whether a
    /// bucket has Object Lock), hence the error.
    fn object_lock(&self) -> Result<Option<&dyn ObjectLock>, StoreError> {
        Ok(None)
    }

    /// Writes a whole object at once (create-only, like [`create`](Self::create)).
    fn put(&self, name: &ObjectName, bytes: &[u8]) -> Result<(), StoreError> {
        let mut writer = self.create(name)?;
        writer.write(bytes)?;
        writer.finish()
    }

    /// Reads a whole object.
    fn get(&self, name: &ObjectName) -> Result<Vec<u8>, StoreError> {
        let reader = self.open(name, Access::Random)?;
        let len = usize::try_from(reader.len()).map_err(|_| {
            StoreError::backend("read", name.to_string(), std::io::Error::other("object too large"))
        })?;
        Ok(reader.read_at(0, len)?.into_owned())
    }
}

/// An object being written. Bytes go out in order; [`finish`](Self::finish) makes the object
/// durable and visible under its name in one step, or fails with
/// [`ErrorKind::AlreadyExists`] if another writer finished the name first.
pub trait ObjectWriter: Send + fmt::Debug {
    /// Appends bytes.
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;

    /// Makes the object durable, then visible. After an error the object is not visible.
    fn finish(self: Box<Self>) -> Result<(), StoreError>;
}

/// An object opened for reading.
pub trait ObjectReader: Send + Sync + fmt::Debug {
    /// The object's length.
    fn len(&self) -> u64;

    /// Whether the object is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset`. A range that does not lie inside the object fails with
    /// [`ErrorKind::Permanent`] — the caller asked for bytes the object does not have.
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, StoreError>;
}

/// Now, in µs since the epoch, by this machine's clock.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Checks that `offset..offset+len` lies inside an object of `object_len` bytes: what every
/// [`ObjectReader::read_at`] checks first.
///
/// # Errors
/// [`StoreError::OutOfRange`] when it does not.
pub fn check_range(
    name: &ObjectName,
    object_len: u64,
    offset: u64,
    len: usize,
) -> Result<(), StoreError> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= object_len => Ok(()),
        _ => Err(StoreError::OutOfRange {
            object: name.to_string(),
            offset,
            len: len as u64,
            object_len,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_their_namespace_are_refused() {
        for bad in ["", "a", "..", "a/b", "../etc", "Ab", "a.b", "a b", "é1", &"a".repeat(129)] {
            assert_eq!(ObjectName::new(ObjectKind::Pack, bad), None, "{bad:?}");
        }
        for good in ["ab", "0123456789abcdef", "snap-1_x", &"a".repeat(128)] {
            assert_eq!(
                ObjectName::new(ObjectKind::Pack, good).map(|n| n.name().to_owned()).as_deref(),
                Some(good)
            );
        }
        let id = PackId::random();
        assert_eq!(ObjectName::pack(id).pack_id(), Some(id));
        assert_eq!(ObjectName::new(ObjectKind::Pack, "zz").and_then(|n| n.pack_id()), None);
        assert_eq!(ObjectName::pack(id).to_string(), format!("packs/{id}"));
    }

    #[test]
    fn io_errors_say_whether_to_retry() {
        use std::io::{Error, ErrorKind as K};
        let kind = |k: K| StoreError::backend("read", "x", Error::from(k)).kind();
        assert_eq!(kind(K::NotFound), ErrorKind::NotFound);
        assert_eq!(kind(K::AlreadyExists), ErrorKind::AlreadyExists);
        assert_eq!(kind(K::StorageFull), ErrorKind::Full);
        assert_eq!(kind(K::PermissionDenied), ErrorKind::Denied);
        assert_eq!(kind(K::TimedOut), ErrorKind::Transient);
        assert_eq!(kind(K::ConnectionReset), ErrorKind::Transient);
        assert_eq!(kind(K::InvalidData), ErrorKind::Permanent);
        assert!(StoreError::backend("read", "x", Error::from(K::TimedOut)).is_transient());
        let corrupt =
            StoreError::Corrupted { pack: PackId::random(), offset: 0, reason: String::new() };
        assert_eq!(corrupt.kind(), ErrorKind::Permanent);
    }
}
