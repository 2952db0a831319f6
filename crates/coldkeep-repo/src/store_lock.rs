//! DataLocks and legal holds enforced by the store itself, where it can (S3 Object Lock).
//!
//! coldkeep's own rules keep a locked or held snapshot from deletion through any coldkeep API.
//! Where the store offers [`ObjectLock`], the objects the snapshot needs are locked in the store
//! too, so that even the store's own credentials (a bucket's keys in the wrong hands) cannot
//! delete them early. What a snapshot needs, to be read back by a fresh machine that has only
//! the store and a key:
//!
//! * the packs that hold its trees and its data;
//! * the config and every key slot, without which nothing decrypts;
//! * every journal entry, without which no catalog can be rebuilt to know the snapshot. A
//!   snapshot's record depends on every entry before it (replay applies them in order), entries
//!   are small, and none is ever deleted, so the journal is locked whole.
//!
//! A Compliance DataLock becomes a retention until the lock's end; retention only grows, so
//! locking twice, or a shorter lock over a longer one, changes nothing. A legal hold becomes the
//! store's legal hold; lifting it lifts the store's only on the objects no other held snapshot
//! needs. Callers lock *before* they commit the lock to the catalog: a crash in between leaves
//! objects retained longer than the catalog says, never a catalog promising a lock the store
//! lacks. The one exception is the journal entry of that commit, locked right after it (and by
//! every later lock, since each locks the whole journal).

use std::collections::{BTreeSet, HashSet};

use coldkeep_catalog::SnapshotId;
use coldkeep_store::{ObjectKind, ObjectLock, ObjectName, StoreError};

use crate::error::DataError;
use crate::repo::Repository;

/// What a store lock did: how many objects it touched, or that the store cannot lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreLocking {
    /// The store has no lock of its own (a directory, a bucket without Object Lock): coldkeep's
    /// rules are the only protection.
    Unsupported,
    /// The store locked (or unlocked) this many objects.
    Applied { objects: usize },
}

impl Repository {
    /// Retains the objects `snapshots` need until `until_us`, in the store's strictest mode.
    pub fn retain_in_store(
        &self,
        snapshots: &[SnapshotId],
        until_us: i64,
    ) -> Result<StoreLocking, DataError> {
        if until_us <= crate::repo::now_us() {
            // Ended already (by this machine's clock): a store refuses a retention in the past.
            return Ok(StoreLocking::Applied { objects: 0 });
        }
        self.lock_each(snapshots, |lock, name| lock.retain_until(name, until_us))
    }

    /// Places the store's legal hold on the objects `snapshots` need.
    pub fn hold_in_store(&self, snapshots: &[SnapshotId]) -> Result<StoreLocking, DataError> {
        self.lock_each(snapshots, |lock, name| lock.set_legal_hold(name, true))
    }

    /// Lifts the store's legal hold from the objects `released` needed that none of
    /// `still_held` needs.
    pub fn release_in_store(
        &self,
        released: &[SnapshotId],
        still_held: &[SnapshotId],
    ) -> Result<StoreLocking, DataError> {
        let Some(lock) = self.store().object_lock()? else {
            return Ok(StoreLocking::Unsupported);
        };
        let keep = self.objects_needed_by(still_held)?;
        let lift: Vec<ObjectName> = self
            .objects_needed_by(released)?
            .into_iter()
            .filter(|name| !keep.contains(name))
            .collect();
        for name in &lift {
            lock.set_legal_hold(name, false)?;
        }
        Ok(StoreLocking::Applied { objects: lift.len() })
    }

    /// Retains the whole journal until `until_us`: called right after a commit that recorded a
    /// Compliance lock, so that the commit's own entry is retained too.
    pub fn retain_journal_in_store(&self, until_us: i64) -> Result<StoreLocking, DataError> {
        if until_us <= crate::repo::now_us() {
            return Ok(StoreLocking::Applied { objects: 0 });
        }
        self.lock_journal(|lock, name| lock.retain_until(name, until_us))
    }

    /// Places the store's legal hold on the whole journal (see [`Self::retain_journal_in_store`]).
    pub fn hold_journal_in_store(&self) -> Result<StoreLocking, DataError> {
        self.lock_journal(|lock, name| lock.set_legal_hold(name, true))
    }

    fn lock_journal(
        &self,
        apply: impl Fn(&dyn ObjectLock, &ObjectName) -> Result<(), StoreError>,
    ) -> Result<StoreLocking, DataError> {
        let Some(lock) = self.store().object_lock()? else {
            return Ok(StoreLocking::Unsupported);
        };
        let entries = self.store().list(ObjectKind::Journal)?;
        for info in &entries {
            apply(lock, &info.name)?;
        }
        Ok(StoreLocking::Applied { objects: entries.len() })
    }

    /// Whether the store itself refuses to delete `name` now (retained or held).
    pub fn locked_in_store(&self, name: &ObjectName) -> Result<bool, StoreError> {
        match self.store().object_lock()? {
            Some(lock) => lock.is_locked(name, crate::repo::now_us()),
            None => Ok(false),
        }
    }

    fn lock_each(
        &self,
        snapshots: &[SnapshotId],
        apply: impl Fn(&dyn ObjectLock, &ObjectName) -> Result<(), StoreError>,
    ) -> Result<StoreLocking, DataError> {
        let Some(lock) = self.store().object_lock()? else {
            return Ok(StoreLocking::Unsupported);
        };
        let names = self.objects_needed_by(snapshots)?;
        for name in &names {
            apply(lock, name)?;
        }
        tracing::debug!(objects = names.len(), "locked in the store");
        Ok(StoreLocking::Applied { objects: names.len() })
    }

    /// The objects `snapshots` need (see the module documentation); a snapshot no longer in the
    /// catalog needs nothing.
    pub fn objects_needed_by(
        &self,
        snapshots: &[SnapshotId],
    ) -> Result<BTreeSet<ObjectName>, DataError> {
        let mut names = BTreeSet::new();
        if snapshots.is_empty() {
            return Ok(names);
        }
        let mut trees = HashSet::new();
        let mut failed = None;
        for &id in snapshots {
            let Some(snapshot) = self.catalog().snapshot(id)? else { continue };
            let load = |tree: &_| self.load_tree(tree);
            crate::reach::walk(&load, snapshot.root, &mut trees, &mut |chunk, _, loaded| {
                if failed.is_some() {
                    return;
                }
                if let Err(e) = loaded {
                    failed = Some(DataError::InvalidTree { id: chunk, reason: e.to_string() });
                    return;
                }
                match self.locate(&chunk) {
                    Ok(at) => {
                        names.insert(ObjectName::pack(at.pack));
                    }
                    Err(e) => failed = Some(e),
                }
            });
        }
        if let Some(e) = failed {
            // A part of the snapshot that cannot be found cannot be locked: say so, rather than
            // lock less than the snapshot needs without a word.
            return Err(e);
        }
        for kind in [ObjectKind::Config, ObjectKind::Key, ObjectKind::Journal] {
            names.extend(self.store().list(kind)?.into_iter().map(|info| info.name));
        }
        Ok(names)
    }
}
