//! Indexed files: what the file index knows of each file and directory of an indexed snapshot
//! (the seed's `POST /data-protect/search/indexed-objects` results).

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, ObjectId, SnapshotId};
use crate::time::Usecs;

/// One file or directory of an indexed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedFile {
    pub snapshot: SnapshotId,
    /// Path from the snapshot root, as raw bytes.
    #[serde(with = "crate::group::path_bytes")]
    pub path: Vec<u8>,
    pub is_dir: bool,
    pub size: u64,
    pub mtime_secs: i64,
    /// The protection group and object the snapshot was made for, when a run made it.
    pub group: Option<GroupId>,
    pub object: Option<ObjectId>,
    /// When the snapshot was taken.
    pub snapshot_time_usecs: Usecs,
}

impl IndexedFile {
    /// The last component of the path.
    pub fn name(&self) -> &[u8] {
        self.path.rsplit(|b| *b == b'/').next().unwrap_or(&self.path)
    }
}
