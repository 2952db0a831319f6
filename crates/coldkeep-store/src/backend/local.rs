//! A backend in a local directory: `<root>/<kind>/<2 hex>/<name>.<kind>`, with unfinished
//! objects in `<root>/<kind>/tmp/`; the config is `<root>/config` (its temporary file beside it).
//!
//! An object is written to a temporary file, fsynced, renamed into place without replacing
//! (`renameat2(RENAME_NOREPLACE)`), and its directory fsynced: once visible it is whole and
//! durable, and it never changes. Fanning out over 256 sub-directories keeps listings short for
//! large repositories. This module is the only code that knows an object's path.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::{
    check_range, Access, Backend, ErrorKind, ObjectInfo, ObjectKind, ObjectName, ObjectReader,
    ObjectWriter,
};
use crate::StoreError;

/// Objects in a directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

/// The file extension of a kind's objects (`packs` → `.pack`).
fn extension(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Pack => "pack",
        ObjectKind::Key => "key",
        ObjectKind::Journal => "entry",
        ObjectKind::Config => "",
    }
}

/// Whether a kind's objects are spread over 256 sub-directories by their first byte.
fn fans_out(kind: ObjectKind) -> bool {
    kind == ObjectKind::Pack
}

/// The sub-directories a kind's objects live in, relative to its directory.
fn subdirs(kind: ObjectKind) -> Vec<String> {
    if fans_out(kind) {
        (0..=255u8).map(|i| format!("{i:02x}")).collect()
    } else {
        vec![String::new()]
    }
}

impl LocalBackend {
    /// Creates (or reuses) the directory layout under `root`, readable by its owner alone.
    pub fn create(root: &Path) -> Result<Self, StoreError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        let this = Self { root: root.to_owned() };
        for kind in ObjectKind::ALL.into_iter().filter(|k| *k != ObjectKind::Config) {
            let dir = this.kind_dir(kind);
            for sub in std::iter::once("tmp".to_owned()).chain(subdirs(kind)) {
                let sub = dir.join(sub);
                builder
                    .create(&sub)
                    .map_err(|e| StoreError::backend("create directory", sub.display(), e))?;
            }
            sync_dir(&dir)?;
        }
        sync_dir(root)?;
        Ok(this)
    }

    /// Opens an existing layout under `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        // Directories are made when first needed: a repository made before keys existed has no
        // `keys/`, and one copied by a tool that drops empty directories (git, some sync tools)
        // lacks `tmp/` and unused fan-out directories.
        let this = Self { root: root.to_owned() };
        let packs = this.kind_dir(ObjectKind::Pack);
        if !packs.is_dir() {
            let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory");
            return Err(StoreError::backend("open", packs.display(), e));
        }
        Ok(this)
    }

    fn kind_dir(&self, kind: ObjectKind) -> PathBuf {
        match kind {
            ObjectKind::Config => self.root.clone(),
            _ => self.root.join(kind.as_str()),
        }
    }

    /// Where a kind's unfinished objects are written.
    fn tmp_dir(&self, kind: ObjectKind) -> PathBuf {
        match kind {
            ObjectKind::Config => self.root.clone(),
            _ => self.kind_dir(kind).join("tmp"),
        }
    }

    /// Where a finished object lives.
    fn path_of(&self, name: &ObjectName) -> PathBuf {
        let (n, kind) = (name.name(), name.kind());
        if kind == ObjectKind::Config {
            return self.root.join(n);
        }
        let dir = self.kind_dir(kind);
        let dir = if fans_out(kind) { dir.join(&n[..2]) } else { dir };
        dir.join(format!("{n}.{}", extension(kind)))
    }

    fn info(name: ObjectName, meta: &fs::Metadata) -> ObjectInfo {
        let written_us = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_micros() as i64);
        ObjectInfo { name, len: meta.len(), written_us }
    }
}

impl Backend for LocalBackend {
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let random = crate::PackId::random();
        let tmp_dir = self.tmp_dir(name.kind());
        ensure_dir(&tmp_dir)?;
        let tmp_path = tmp_dir.join(format!("{}.{random}.tmp", name.name()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
            .map_err(|e| StoreError::backend("create", tmp_path.display(), e))?;
        Ok(Box::new(LocalWriter {
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            final_path: self.path_of(name),
            tmp_path,
        }))
    }

    fn open(&self, name: &ObjectName, access: Access) -> Result<Box<dyn ObjectReader>, StoreError> {
        let path = self.path_of(name);
        let file = File::open(&path).map_err(|e| StoreError::backend("open", path.display(), e))?;
        let len =
            file.metadata().map_err(|e| StoreError::backend("stat", path.display(), e))?.len();
        let source = match access {
            Access::Sequential if len > 0 => {
                // SAFETY: objects are immutable once renamed into place (they are only ever
                // created under a temporary name and deleted whole), so the mapped bytes do not
                // change under us.
                #[allow(unsafe_code)]
                let map = unsafe { memmap2::Mmap::map(&file) }
                    .map_err(|e| StoreError::backend("map", path.display(), e))?;
                // Advice only tunes paging; a kernel that ignores it reads the same bytes.
                let _ = map.advise(memmap2::Advice::Sequential);
                Source::Map(map)
            }
            _ => Source::File(file),
        };
        Ok(Box::new(LocalReader { name: name.clone(), path, len, source }))
    }

    fn stat(&self, name: &ObjectName) -> Result<ObjectInfo, StoreError> {
        let path = self.path_of(name);
        let meta =
            fs::metadata(&path).map_err(|e| StoreError::backend("stat", path.display(), e))?;
        Ok(Self::info(name.clone(), &meta))
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>, StoreError> {
        if kind == ObjectKind::Config {
            return match self.stat(&ObjectName::config()) {
                Ok(info) => Ok(vec![info]),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(vec![]),
                Err(e) => Err(e),
            };
        }
        let suffix = format!(".{}", extension(kind));
        let mut found = Vec::new();
        for prefix in subdirs(kind) {
            let sub = self.kind_dir(kind).join(&prefix);
            let entries = match fs::read_dir(&sub) {
                Ok(entries) => entries,
                // A kind that never had an object in an older repository.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::backend("list", sub.display(), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::backend("list", sub.display(), e))?;
                let file_name = entry.file_name();
                let Some(name) = file_name
                    .to_str()
                    .and_then(|n| n.strip_suffix(&suffix))
                    .and_then(|n| ObjectName::new(kind, n))
                    .filter(|n| n.name().starts_with(&prefix))
                else {
                    continue; // not an object of ours
                };
                match entry.metadata() {
                    Ok(meta) => found.push(Self::info(name, &meta)),
                    // Deleted since the directory was read.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::backend("stat", entry.path().display(), e)),
                }
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    fn delete(&self, name: &ObjectName) -> Result<(), StoreError> {
        let path = self.path_of(name);
        fs::remove_file(&path).map_err(|e| StoreError::backend("delete", path.display(), e))
    }

    fn remove_unfinished(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        for kind in ObjectKind::ALL {
            let tmp = self.tmp_dir(kind);
            let entries = match fs::read_dir(&tmp) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::backend("list", tmp.display(), e)),
            };
            for entry in entries {
                let path = entry.map_err(|e| StoreError::backend("list", tmp.display(), e))?.path();
                // Temporary names end in `.tmp`; the config's directory holds other things too.
                if path.extension().is_none_or(|e| e != "tmp") {
                    continue;
                }
                fs::remove_file(&path)
                    .map_err(|e| StoreError::backend("delete", path.display(), e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// An object being written to its temporary file.
#[derive(Debug)]
struct LocalWriter {
    /// `None` once a write failed: what the file holds can no longer be trusted.
    file: Option<BufWriter<File>>,
    tmp_path: PathBuf,
    final_path: PathBuf,
}

impl LocalWriter {
    fn seal(&mut self) -> Result<(), StoreError> {
        let tmp = self.tmp_path.display();
        let file = self.file.take().ok_or(StoreError::Poisoned)?;
        let file =
            file.into_inner().map_err(|e| StoreError::backend("write", &tmp, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::backend("fsync", &tmp, e))?;
        drop(file);
        let parent = self.final_path.parent().unwrap_or(Path::new("."));
        ensure_dir(parent)?;
        rename_noreplace(&self.tmp_path, &self.final_path)?;
        sync_dir(parent)
    }
}

impl ObjectWriter for LocalWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or(StoreError::Poisoned)?;
        if let Err(e) = file.write_all(bytes) {
            self.file = None;
            return Err(StoreError::backend("write", self.tmp_path.display(), e));
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        self.seal()
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // Finished (renamed away) or not: the temporary name must not stay behind. A crash
        // leaves it for `remove_unfinished`.
        let _ = fs::remove_file(&self.tmp_path);
    }
}

/// Renames `from` to `to` unless `to` exists. Filesystems without `RENAME_NOREPLACE` get a
/// hard link and an unlink, which is just as exclusive.
fn rename_noreplace(from: &Path, to: &Path) -> Result<(), StoreError> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            fs::hard_link(from, to).map_err(|e| StoreError::backend("link", to.display(), e))?;
            fs::remove_file(from).map_err(|e| StoreError::backend("delete", from.display(), e))
        }
        Err(e) => Err(StoreError::backend("rename into", to.display(), e.into())),
    }
}

/// Makes `dir` (owner only) unless it is there. Its creation is made durable with its parent's
/// fsync.
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::backend("create directory", dir.display(), e))?;
    sync_dir(dir.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a directory so that a rename into it is durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::backend("fsync", dir.display(), e))
}

#[derive(Debug)]
enum Source {
    Map(memmap2::Mmap),
    File(File),
}

/// A finished object opened for reading: mapped for sequential access, read with `pread`
/// otherwise (see [`Access`]).
#[derive(Debug)]
struct LocalReader {
    name: ObjectName,
    path: PathBuf,
    len: u64,
    source: Source,
}

impl ObjectReader for LocalReader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, StoreError> {
        check_range(&self.name, self.len, offset, len)?;
        match &self.source {
            Source::Map(map) => {
                let start = usize::try_from(offset).expect("mapped, so it fits in memory");
                Ok(Cow::Borrowed(&map[start..start + len]))
            }
            Source::File(file) => {
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, offset)
                    .map_err(|e| StoreError::backend("read", self.path.display(), e))?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_conformance_suite() {
        super::super::conformance::run_all(&|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let backend = LocalBackend::create(dir.path()).expect("create");
            (Box::new(backend) as Box<dyn Backend>, Box::new(dir) as Box<dyn std::any::Any>)
        });
    }

    #[test]
    fn unfinished_writes_are_invisible_and_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::create(dir.path()).expect("create");
        let name = ObjectName::pack(crate::PackId::random());
        let mut writer = backend.create(&name).expect("create");
        writer.write(b"half").expect("write");
        // A crash: the writer never finishes and never drops.
        std::mem::forget(writer);
        assert!(backend.list(ObjectKind::Pack).expect("list").is_empty());
        assert_eq!(backend.remove_unfinished().expect("clear"), 1);
        assert_eq!(backend.remove_unfinished().expect("clear"), 0);
        assert!(LocalBackend::open(dir.path()).is_ok());
        assert!(LocalBackend::open(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn missing_directories_are_made_when_needed() {
        // A repository copied by a tool that keeps no empty directory.
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::create(dir.path()).expect("create");
        let id = crate::PackId::random();
        backend.put(&ObjectName::pack(id), b"kept").expect("put");
        let copy = tempfile::tempdir().expect("tempdir");
        let sub = &id.to_string()[..2];
        fs::create_dir_all(copy.path().join("packs").join(sub)).expect("mkdir");
        let from = dir.path().join("packs").join(sub).join(format!("{id}.pack"));
        fs::copy(&from, copy.path().join("packs").join(sub).join(format!("{id}.pack")))
            .expect("copy");
        let backend = LocalBackend::open(copy.path()).expect("open");
        assert_eq!(backend.list(ObjectKind::Pack).expect("list").len(), 1);
        assert_eq!(backend.remove_unfinished().expect("nothing unfinished"), 0);
        let other = ObjectName::pack(crate::PackId::random());
        backend.put(&other, b"new").expect("a pack in a missing fan-out directory");
        let key = ObjectName::new(ObjectKind::Key, "ab").expect("name");
        backend.put(&key, b"k").expect("a key in a missing keys/");
        assert_eq!(backend.list(ObjectKind::Pack).expect("list").len(), 2);
        assert_eq!(backend.get(&key).expect("get"), b"k");
    }

    #[test]
    fn files_that_are_not_objects_are_not_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::create(dir.path()).expect("create");
        let id = crate::PackId::random();
        backend.put(&ObjectName::pack(id), b"x").expect("put");
        let sub = dir.path().join("packs").join(&id.to_string()[..2]);
        fs::write(sub.join("notes.txt"), b"x").expect("stray file");
        fs::write(sub.join("UPPER.pack"), b"x").expect("stray file");
        fs::write(dir.path().join("packs/00/ffff.pack"), b"x").expect("misplaced");
        let listed: Vec<_> =
            backend.list(ObjectKind::Pack).expect("list").into_iter().map(|i| i.name).collect();
        assert_eq!(listed, vec![ObjectName::pack(id)]);
    }
}
