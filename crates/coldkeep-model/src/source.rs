//! Source registrations: the places objects are protected from, registered once and enumerated
//! (the seed's `/data-protect/sources/registrations`).

use serde::{Deserialize, Serialize};

use crate::group::ObjectKind;
use crate::ids::SourceId;
use crate::time::Usecs;

/// What a caller gives to register or update a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    pub name: String,
    /// A host path (`DirectoryTree`), a log directory, or a disk image (or a directory of them).
    pub kind: ObjectKind,
    /// Absolute, as raw bytes.
    #[serde(with = "crate::group::path_bytes")]
    pub path: Vec<u8>,
}

/// An object found in a source, ready to be named in a protection group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredObject {
    pub name: String,
    pub kind: ObjectKind,
    #[serde(with = "crate::group::path_bytes")]
    pub path: Vec<u8>,
}

/// A stored source registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRegistration {
    pub id: SourceId,
    pub spec: SourceSpec,
    /// What the last refresh found.
    pub objects: Vec<DiscoveredObject>,
    pub registration_time_usecs: Usecs,
    pub last_refresh_time_usecs: Usecs,
    /// Changes on every update; an update that names an older value is refused as stale.
    pub last_modification_time_usecs: Usecs,
}
