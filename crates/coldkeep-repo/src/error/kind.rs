//! One error type for callers that do not care which operation failed, and the kind of every
//! failure: what a caller (a CLI's exit code, a REST gateway's status, a retry loop) can do
//! about it.
//!
//! Every operation keeps its own typed error, with the context a user needs. Each has a
//! `kind()`, and each converts into [`Error`], which keeps the typed error inside (see
//! [`Error::downcast_ref`]) and shows its message unchanged.

use std::fmt;

use coldkeep_catalog::{CatalogError, KvError};
use coldkeep_store::StoreError;

use super::{
    BackupError, CheckError, DataError, InitError, IoError, OpenError, ReadError, RestoreError,
};
use crate::journal::JournalError;
use crate::keys::KeyError;

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// What was asked for does not exist: a snapshot, a path in it, a policy, a group, a run.
    NotFound,
    /// The request cannot be done as asked (a bad policy, a range too large, a path that is
    /// not a file).
    InvalidInput,
    /// The request collides with the state of things: a record changed since it was read, an
    /// object in use, a run in progress, a target that is not empty.
    Conflict,
    /// A legal hold, a DataLock or a permission rule refused the change.
    Refused,
    /// Another process has the repository open.
    Busy,
    /// The repository is open read-only (or on read-only media) and the request writes.
    ReadOnly,
    /// The storage has no room.
    DiskFull,
    /// The repository's content is damaged or missing: a checksum, a record, a pack.
    Corrupt,
    /// A failure that may pass (a timeout, a dropped connection): the same request may
    /// succeed if tried again.
    Transient,
    /// Canceled, or past its time limit.
    Canceled,
    /// Any other I/O failure.
    Io,
}

impl ErrorKind {
    /// The kind of an I/O error of the machine's own files (sources, targets, the repository
    /// directory).
    pub fn of_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Self::NotFound,
            K::StorageFull | K::QuotaExceeded => Self::DiskFull,
            K::ReadOnlyFilesystem => Self::ReadOnly,
            _ => match coldkeep_store::ErrorKind::of(e) {
                coldkeep_store::ErrorKind::Transient => Self::Transient,
                _ => Self::Io,
            },
        }
    }
}

/// Any error of the engine, with its [`ErrorKind`].
pub struct Error {
    kind: ErrorKind,
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation's own error, when it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }

    /// The operation's own error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.inner
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("kind", &self.kind).field("inner", &self.inner).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// The kind of an error, for code that holds any of them (the conversion into [`Error`]).
/// The engine's own errors also have `kind()` as an inherent method, so callers need not
/// import this trait; the errors of the crates below have it through this trait alone.
pub trait HasErrorKind {
    fn kind(&self) -> ErrorKind;
}

/// Every error that has a kind converts into [`Error`]: the engine's own errors, the control
/// plane's, and those of the crates below.
impl<E: HasErrorKind + std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Self { kind: e.kind(), inner: Box::new(e) }
    }
}

/// Makes an error's inherent `kind()` its [`HasErrorKind`] too.
#[macro_export]
macro_rules! has_error_kind {
    ($($error:ty),* $(,)?) => {
        $(
            impl $crate::HasErrorKind for $error {
                fn kind(&self) -> $crate::ErrorKind {
                    <$error>::kind(self)
                }
            }
        )*
    };
}

has_error_kind!(
    InitError,
    OpenError,
    BackupError,
    ReadError,
    RestoreError,
    CheckError,
    DataError,
    IoError,
    KeyError,
    JournalError,
);

impl HasErrorKind for KvError {
    fn kind(&self) -> ErrorKind {
        match self {
            KvError::ReadOnly { .. } => ErrorKind::ReadOnly,
            KvError::Conflict { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Io,
        }
    }
}

impl HasErrorKind for CatalogError {
    fn kind(&self) -> ErrorKind {
        match self {
            CatalogError::Kv(e) => HasErrorKind::kind(e),
            _ => ErrorKind::Corrupt,
        }
    }
}

/// A store's failure, as the engine meets it: every object it reads is one the catalog or a
/// pack names, so a missing object is damage, not a request for something absent.
impl HasErrorKind for StoreError {
    fn kind(&self) -> ErrorKind {
        use coldkeep_store::ErrorKind as K;
        match self {
            StoreError::Corrupted { .. } | StoreError::OutOfRange { .. } => ErrorKind::Corrupt,
            _ => match StoreError::kind(self) {
                K::NotFound => ErrorKind::Corrupt,
                K::AlreadyExists => ErrorKind::Conflict,
                K::Full => ErrorKind::DiskFull,
                K::Transient => ErrorKind::Transient,
                _ => ErrorKind::Io,
            },
        }
    }
}

impl JournalError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            JournalError::Corrupt { .. } | JournalError::CatalogOlder { .. } => ErrorKind::Corrupt,
            JournalError::Raced { .. } => ErrorKind::Conflict,
            JournalError::Store(e) => HasErrorKind::kind(e),
            JournalError::Kv(e) => HasErrorKind::kind(e),
        }
    }
}

impl KeyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            KeyError::WrongKey => ErrorKind::Refused,
            KeyError::NotFound(_) => ErrorKind::NotFound,
            KeyError::LastSlot(_) => ErrorKind::Conflict,
            KeyError::ReadOnly => ErrorKind::ReadOnly,
            KeyError::NotEncrypted | KeyError::KeyFileTooShort(_) | KeyError::BadKdf(_) => {
                ErrorKind::InvalidInput
            }
            KeyError::Corrupt { .. } => ErrorKind::Corrupt,
            KeyError::Store(e) => HasErrorKind::kind(e),
        }
    }
}

impl IoError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::of_io(&self.cause)
    }
}

impl DataError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DataError::Store(e) => HasErrorKind::kind(e),
            DataError::Catalog(e) => HasErrorKind::kind(e),
            _ => ErrorKind::Corrupt,
        }
    }
}

impl InitError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            InitError::AlreadyExists(_) => ErrorKind::Conflict,
            InitError::Chunker(_) | InitError::SecretRequired => ErrorKind::InvalidInput,
            InitError::Io(e) => e.kind(),
            InitError::Catalog(e) => HasErrorKind::kind(e),
            InitError::Store(e) => HasErrorKind::kind(e),
            InitError::DiskFull { .. } => ErrorKind::DiskFull,
            InitError::Key(e) => e.kind(),
            InitError::Journal(e) => e.kind(),
        }
    }
}

impl OpenError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpenError::NotARepository(_) => ErrorKind::NotFound,
            OpenError::UnsupportedVersion(_)
            | OpenError::SecretRequired
            | OpenError::CatalogNotEmpty(_) => ErrorKind::InvalidInput,
            OpenError::Key(e) => e.kind(),
            OpenError::Journal(e) => e.kind(),
            OpenError::CorruptConfig { .. }
            | OpenError::CatalogBehind { .. }
            | OpenError::CatalogUnreadable { .. } => ErrorKind::Corrupt,
            OpenError::Busy(_) => ErrorKind::Busy,
            OpenError::DiskFull { .. } => ErrorKind::DiskFull,
            OpenError::Io(e) => e.kind(),
            OpenError::Catalog(e) => HasErrorKind::kind(e),
            OpenError::Store(e) => HasErrorKind::kind(e),
        }
    }
}

impl BackupError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackupError::Source { cause, .. } => ErrorKind::of_io(cause),
            BackupError::ParentNotFound(_) => ErrorKind::NotFound,
            BackupError::Io(e) => e.kind(),
            BackupError::Data(e) => e.kind(),
            BackupError::Store(e) => HasErrorKind::kind(e),
            BackupError::Catalog(e) => HasErrorKind::kind(e),
            BackupError::Stopped(_) => ErrorKind::Canceled,
        }
    }
}

impl ReadError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReadError::SnapshotNotFound(_) | ReadError::PathNotFound(_) => ErrorKind::NotFound,
            ReadError::NotAFile(_) | ReadError::BadCookie(_) | ReadError::ReadTooLarge { .. } => {
                ErrorKind::InvalidInput
            }
            ReadError::Data(e) => e.kind(),
            ReadError::Catalog(e) => HasErrorKind::kind(e),
            ReadError::Io(e) => e.kind(),
        }
    }
}

impl RestoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RestoreError::Read(e) => e.kind(),
            RestoreError::TargetNotEmpty(_)
            | RestoreError::Interrupted(_)
            | RestoreError::SymlinkEscape(_) => ErrorKind::Conflict,
            // A name no backup writes: the snapshot's trees were tampered with.
            RestoreError::HostilePath { .. } => ErrorKind::Corrupt,
            RestoreError::Stopped(_) => ErrorKind::Canceled,
            RestoreError::Io(e) => e.kind(),
        }
    }
}

impl CheckError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CheckError::Unreadable(e) => e.kind,
            CheckError::Catalog(e) => HasErrorKind::kind(e),
            CheckError::Io(e) => e.kind(),
            CheckError::Store(e) => HasErrorKind::kind(e),
        }
    }
}
