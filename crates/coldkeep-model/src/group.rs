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
    #[serde(with = "path_bytes")]
    pub path: Vec<u8>,
}

/// A path's bytes: in human-readable formats (JSON) a string when it is UTF-8; in binary ones
/// (the catalog's bincode) exactly as a `Vec<u8>`, so stored records are unchanged.
pub(crate) mod path_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(path: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(path) {
            Ok(text) if s.is_human_readable() => s.serialize_str(text),
            _ => path.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct StrOrBytes;
        impl<'de> Visitor<'de> for StrOrBytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path as a string or an array of bytes")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        if !d.is_human_readable() {
            return Vec::<u8>::deserialize(d);
        }
        d.deserialize_any(StrOrBytes)
    }
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
    /// The specification this group was created or last updated with: what a caller edits and
    /// passes back to update it.
    pub fn spec(&self) -> GroupSpec {
        GroupSpec {
            name: self.name.clone(),
            policy: self.policy,
            objects: self.objects.iter().map(|o| o.spec.clone()).collect(),
            description: self.description.clone(),
            priority: self.priority,
            start_time: self.start_time,
            is_paused: self.is_paused,
            is_active: self.is_active,
            abort_in_blackouts: self.abort_in_blackouts,
        }
    }

    /// The object with this id.
    pub fn object(&self, id: ObjectId) -> Option<&ProtectedObject> {
        self.objects.iter().find(|o| o.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object spec as it was encoded before paths had their own serde functions.
    #[derive(Serialize)]
    struct Plain<'a> {
        name: &'a str,
        kind: ObjectKind,
        path: &'a Vec<u8>,
    }

    #[test]
    fn object_paths_are_strings_in_json_and_plain_bytes_in_the_catalog() {
        let utf8 = ObjectSpec::new("home", ObjectKind::DirectoryTree, Path::new("/home/me"));
        let json = serde_json::to_value(&utf8).expect("json");
        assert_eq!(json["path"], "/home/me");
        assert_eq!(serde_json::from_value::<ObjectSpec>(json).expect("back"), utf8);

        let raw = ObjectSpec { path: b"/data/\xff\n".to_vec(), ..utf8.clone() };
        let json = serde_json::to_string(&raw).expect("json");
        assert_eq!(serde_json::from_str::<ObjectSpec>(&json).expect("back"), raw);

        // The binary form is a Vec<u8>'s, as records written before this encoding was chosen.
        let plain = Plain { name: &raw.name, kind: raw.kind, path: &raw.path };
        let stored = bincode::serialize(&raw).expect("bincode");
        assert_eq!(stored, bincode::serialize(&plain).expect("bincode"));
        assert_eq!(bincode::deserialize::<ObjectSpec>(&stored).expect("back"), raw);
    }
}
