//! The directory that holds a repository's packs: `<root>/<2 hex>/<pack id>.pack`, with
//! unfinished packs in `<root>/tmp/`. Fanning out over 256 sub-directories keeps directory
//! listings short for large repositories.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::pack::sync_dir;
use crate::{PackId, StoreError};

/// The pack directory of a repository.
#[derive(Debug, Clone)]
pub struct PackDir {
    root: PathBuf,
}

impl PackDir {
    /// Creates (or reuses) the directory layout under `root`, readable by its owner alone.
    pub fn create(root: &Path) -> Result<Self, StoreError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        let tmp = root.join("tmp");
        builder.create(&tmp).map_err(|e| StoreError::io("create pack directory", &tmp, e))?;
        for i in 0..=255u8 {
            let sub = root.join(format!("{i:02x}"));
            builder.create(&sub).map_err(|e| StoreError::io("create pack directory", &sub, e))?;
        }
        sync_dir(root)?;
        Ok(Self { root: root.to_owned() })
    }

    /// Opens an existing layout under `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        if !root.join("tmp").is_dir() {
            return Err(StoreError::io(
                "open pack directory",
                root,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no packs/tmp directory"),
            ));
        }
        Ok(Self { root: root.to_owned() })
    }

    /// Where a sealed pack lives.
    pub fn path_of(&self, id: PackId) -> PathBuf {
        let hex = id.to_string();
        self.root.join(&hex[..2]).join(format!("{hex}.pack"))
    }

    pub(crate) fn temp_path(&self, id: PackId) -> PathBuf {
        self.root.join("tmp").join(format!("{id}.tmp"))
    }

    /// Every sealed pack on disk.
    pub fn list(&self) -> Result<Vec<PackId>, StoreError> {
        let mut ids = Vec::new();
        for i in 0..=255u8 {
            let sub = self.root.join(format!("{i:02x}"));
            let entries = fs::read_dir(&sub).map_err(|e| StoreError::io("list packs", &sub, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::io("list packs", &sub, e))?;
                let name = entry.file_name();
                let id = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".pack"))
                    .and_then(|n| n.parse::<PackId>().ok());
                ids.extend(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Deletes packs that were never sealed (left by a crash). Call only while holding the
    /// repository's write lock: they may otherwise belong to a running backup.
    pub fn remove_temp_files(&self) -> Result<usize, StoreError> {
        let tmp = self.root.join("tmp");
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(|e| StoreError::io("list temp packs", &tmp, e))? {
            let path = entry.map_err(|e| StoreError::io("list temp packs", &tmp, e))?.path();
            fs::remove_file(&path).map_err(|e| StoreError::io("remove temp pack", &path, e))?;
            removed += 1;
        }
        Ok(removed)
    }
}
