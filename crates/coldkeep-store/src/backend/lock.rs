//! Immutability the storage itself enforces, beyond coldkeep's own rules.
//!
//! coldkeep refuses to delete a snapshot under a legal hold or before its DataLock ends, but
//! that refusal lives in coldkeep: whoever holds the storage's own credentials (a bucket's keys,
//! a root shell) can still delete the objects underneath. Some storage can refuse them too: an
//! S3 bucket with Object Lock keeps an object version from deletion until its *retention* ends
//! (COMPLIANCE mode: nobody can shorten or lift it, not even the account's root) or while a
//! *legal hold* is on it. [`ObjectLock`] is that capability, offered by a backend through
//! [`Backend::object_lock`](super::Backend::object_lock); a backend without it (a directory)
//! returns `None`, and coldkeep's own rules are then the only protection.

use std::fmt;

use super::ObjectName;
use crate::StoreError;

/// Retention and legal holds on stored objects (see the module documentation).
///
/// Both are about deletion: while either holds, [`Backend::delete`](super::Backend::delete) of
/// the object fails with [`ErrorKind::Denied`](super::ErrorKind::Denied), through coldkeep or
/// any other client of the storage. Times are µs since the epoch, by the storage's clock.
pub trait ObjectLock: Send + Sync + fmt::Debug {
    /// Keeps `name` from deletion until at least `until_us`, in the storage's strictest mode.
    /// Retention only grows: an object already retained until `until_us` or later is left as it
    /// is. A storage that counts in whole seconds rounds up.
    fn retain_until(&self, name: &ObjectName, until_us: i64) -> Result<(), StoreError>;

    /// Until when `name` is retained, if it is (an ended retention may still be reported).
    fn retained_until(&self, name: &ObjectName) -> Result<Option<i64>, StoreError>;

    /// Places (`on`) or lifts the legal hold on `name`. Lifting one that is not there succeeds.
    fn set_legal_hold(&self, name: &ObjectName, on: bool) -> Result<(), StoreError>;

    /// Whether a legal hold is on `name`.
    fn legal_hold(&self, name: &ObjectName) -> Result<bool, StoreError>;

    /// Whether `name` cannot be deleted now: held, or retained past `now_us`.
    fn is_locked(&self, name: &ObjectName, now_us: i64) -> Result<bool, StoreError> {
        Ok(self.legal_hold(name)? || self.retained_until(name)?.is_some_and(|u| u > now_us))
    }
}
