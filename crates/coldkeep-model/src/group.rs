//! Protection groups: a policy applied to a set of objects (the seed's
//! `POST /data-protect/protection-groups` body).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, ObjectId, PolicyId};
use crate::run::Priority;
use crate::time::{TimeOfDay, Usecs};

/// What kind of data an object is, which decides how it is backed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A directory tree (or a single file), chunked by content.
    DirectoryTree,
    /// A directory of append-only logs (a database's WAL or archive segments).
    LogDirectory,
    /// A large file or block device image, chunked in fixed-size blocks.
    DiskImage,
}

/// An object to protect, as a caller names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectSpec {
    pub name: String,
    pub kind: ObjectKind,
    /// Absolute path, as raw bytes (paths need not be UTF-8).
    pub path: Vec<u8>,
}

impl ObjectSpec {
    pub fn new(name: impl Into<String>, kind: ObjectKind, path: &Path) -> Self {
        Self { name: name.into(), kind, path: path.as_os_str().as_bytes().to_vec() }
    }

    pub fn path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.path))
    }
}

/// An object inside a group, with the id its snapshots are filed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtectedObject {
    pub id: ObjectId,
    pub spec: ObjectSpec,
}

/// What a caller gives to create or update a group.
#[allow(clippy::struct_excessive_bools)] // the seed's flags, each its own question
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    pub policy: PolicyId,
    pub objects: Vec<ObjectSpec>,
    pub description: String,
    pub priority: Priority,
    /// Schedules in days, weeks and months start at this time of day (UTC).
    pub start_time: TimeOfDay,
    /// No new run is scheduled while paused; a running run is not affected.
    pub is_paused: bool,
    /// An inactive group (the seed: a replica's copy) is never scheduled.
    pub is_active: bool,
    /// Cancel a running run when a blackout window of the policy starts.
    pub abort_in_blackouts: bool,
}

impl GroupSpec {
    /// An active, unpaused group protecting `objects` under `policy`.
    pub fn new(name: impl Into<String>, policy: PolicyId, objects: Vec<ObjectSpec>) -> Self {
        Self {
            name: name.into(),
            policy,
            objects,
            description: String::new(),
            priority: Priority::Medium,
            start_time: TimeOfDay::MIDNIGHT,
            is_paused: false,
            is_active: true,
            abort_in_blackouts: false,
        }
    }
}

/// A stored protection group.
#[allow(clippy::struct_excessive_bools)] // the seed's flags, each its own question
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectionGroup {
    pub id: GroupId,
    pub name: String,
    pub policy: PolicyId,
    pub objects: Vec<ProtectedObject>,
    pub description: String,
    pub priority: Priority,
    pub start_time: TimeOfDay,
    pub is_paused: bool,
    pub is_active: bool,
    pub abort_in_blackouts: bool,
    /// Created at this time: the first scheduled runs count from here.
    pub creation_time_usecs: Usecs,
    /// Changes on every update; an update that names an older value is refused as stale.
    pub last_modification_time_usecs: Usecs,
    /// Deleted, but some of its snapshots are kept (the seed's `isDeleted` with snapshots left).
    pub is_deleted: bool,
}

impl ProtectionGroup {
    /// The object with this id.
    pub fn object(&self, id: ObjectId) -> Option<&ProtectedObject> {
        self.objects.iter().find(|o| o.id == id)
    }
}
