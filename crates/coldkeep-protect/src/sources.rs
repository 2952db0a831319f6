//! Source registrations (the seed's `/data-protect/sources/registrations`): a host path, a log
//! directory or a disk image registered once, and enumerated — at registration, on update, and
//! on refresh — into the objects a protection group can name:
//!
//! * a host path: the path itself and each directory directly under it;
//! * a log directory: the directory;
//! * a disk image: the file, or each regular file of a directory of images.
//!
//! A source cannot be deleted while a protection group protects anything under its path.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use coldkeep_catalog::{Batch, Catalog, Counter};
use coldkeep_model::{
    path_of, DiscoveredObject, GroupId, ObjectKind, ProtectionGroup, SourceId, SourceRegistration,
    SourceSpec,
};

use crate::{check_fresh, ProtectError, Protection};
use coldkeep_repo::error::IoError;

fn discovered(kind: ObjectKind, path: &Path) -> DiscoveredObject {
    let name = path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned();
    DiscoveredObject { name, kind, path: path.as_os_str().as_bytes().to_vec() }
}

/// The objects `spec` holds now.
fn enumerate(spec: &SourceSpec) -> Result<Vec<DiscoveredObject>, ProtectError> {
    let path = path_of(&spec.path);
    if spec.name.trim().is_empty() || !path.is_absolute() {
        return Err(ProtectError::InvalidRequest(
            "a source needs a name and an absolute path".into(),
        ));
    }
    let io = |op| move |e| ProtectError::Io(IoError::new(op, path, e));
    let md = std::fs::metadata(path).map_err(io("inspect"))?;
    let children = |want: fn(&std::fs::Metadata) -> bool| -> Result<Vec<_>, ProtectError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io("list"))? {
            let entry = entry.map_err(io("list"))?;
            // Symlinks are not followed: what a source holds is what is under its path.
            if entry.file_type().map_err(io("inspect"))?.is_symlink() {
                continue;
            }
            if want(&entry.metadata().map_err(io("inspect"))?) {
                found.push(discovered(spec.kind, &entry.path()));
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    };
    Ok(match spec.kind {
        ObjectKind::DirectoryTree if md.is_dir() => {
            let mut objects = vec![discovered(spec.kind, path)];
            objects.extend(children(std::fs::Metadata::is_dir)?);
            objects
        }
        ObjectKind::DiskImage if md.is_dir() => children(std::fs::Metadata::is_file)?,
        ObjectKind::LogDirectory if !md.is_dir() => {
            return Err(ProtectError::InvalidRequest(format!(
                "{} is not a directory",
                path.display()
            )));
        }
        _ => vec![discovered(spec.kind, path)],
    })
}

impl Protection {
    pub fn register_source(&self, spec: SourceSpec) -> Result<SourceRegistration, ProtectError> {
        let objects = enumerate(&spec)?;
        let now = self.now()?;
        let source = SourceRegistration {
            id: SourceId::new(self.catalog.allocate(Counter::Source)?),
            spec,
            objects,
            registration_time_usecs: now,
            last_refresh_time_usecs: now,
            last_modification_time_usecs: now,
        };
        self.catalog.put(&source)?;
        Ok(source)
    }

    pub fn source(&self, id: SourceId) -> Result<SourceRegistration, ProtectError> {
        self.catalog.get(&id.key())?.ok_or(ProtectError::SourceNotFound(id))
    }

    /// Registered sources, by id; all of them when `ids` is empty.
    pub fn sources(&self, ids: &[SourceId]) -> Result<Vec<SourceRegistration>, ProtectError> {
        let all = self.catalog.scan::<SourceRegistration>(&[])?;
        Ok(all.into_iter().filter(|s| ids.is_empty() || ids.contains(&s.id)).collect())
    }

    /// Replaces a source's specification and enumerates it again. With `if_last_modified`,
    /// refuses a stale update.
    pub fn update_source(
        &self,
        id: SourceId,
        spec: SourceSpec,
        if_last_modified: Option<coldkeep_model::Usecs>,
    ) -> Result<SourceRegistration, ProtectError> {
        let _edit = self.edit();
        let current = self.source(id)?;
        check_fresh("source", id.get(), if_last_modified, current.last_modification_time_usecs)?;
        let objects = enumerate(&spec)?;
        let modified = self.modification_time(current.last_modification_time_usecs)?;
        let source = SourceRegistration {
            spec,
            objects,
            last_refresh_time_usecs: modified,
            last_modification_time_usecs: modified,
            ..current
        };
        self.catalog.put(&source)?;
        Ok(source)
    }

    /// Enumerates a source's objects again.
    pub fn refresh_source(&self, id: SourceId) -> Result<SourceRegistration, ProtectError> {
        let _edit = self.edit();
        let mut source = self.source(id)?;
        source.objects = enumerate(&source.spec)?;
        source.last_refresh_time_usecs = self.now()?;
        self.catalog.put(&source)?;
        Ok(source)
    }

    /// Deletes a source no protection group protects anything of.
    pub fn delete_source(&self, id: SourceId) -> Result<(), ProtectError> {
        let _edit = self.edit();
        let source = self.source(id)?;
        let root = path_of(&source.spec.path);
        let users: Vec<GroupId> = self
            .catalog
            .scan::<ProtectionGroup>(&[])?
            .into_iter()
            .filter(|g| !g.is_deleted && g.objects.iter().any(|o| o.spec.path().starts_with(root)))
            .map(|g| g.id)
            .collect();
        if !users.is_empty() {
            return Err(ProtectError::SourceInUse { id, groups: users });
        }
        let mut batch = Batch::new();
        Catalog::stage_delete(&mut batch, &source);
        Ok(self.catalog.write(batch)?)
    }
}
