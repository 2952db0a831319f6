//! A backend in memory: the reference implementation of the [`Backend`] contract, and the
//! storage of tests that need no disk. Made [`with_object_lock`](MemoryBackend::with_object_lock),
//! it is also the reference of [`ObjectLock`]: a retained or held object cannot be deleted.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    check_range, now_us, Access, Backend, ObjectInfo, ObjectKind, ObjectLock, ObjectName,
    ObjectReader, ObjectWriter,
};
use crate::StoreError;

#[derive(Debug)]
struct Stored {
    bytes: Arc<[u8]>,
    written_us: i64,
    retained_until: Option<i64>,
    legal_hold: bool,
}

/// Objects in memory. Clones share the same objects.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    objects: Arc<Mutex<BTreeMap<ObjectName, Stored>>>,
    /// Whether it offers [`ObjectLock`] (a bucket with Object Lock, as opposed to one without).
    lockable: bool,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend that offers [`ObjectLock`], as a bucket with Object Lock does.
    pub fn with_object_lock() -> Self {
        Self { lockable: true, ..Self::default() }
    }

    fn objects(&self) -> MutexGuard<'_, BTreeMap<ObjectName, Stored>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn not_found(op: &'static str, name: &ObjectName) -> StoreError {
    StoreError::backend(op, name.to_string(), std::io::ErrorKind::NotFound.into())
}

impl Backend for MemoryBackend {
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(MemoryWriter { backend: self.clone(), name: name.clone(), bytes: Vec::new() }))
    }

    fn open(&self, name: &ObjectName, _: Access) -> Result<Box<dyn ObjectReader>, StoreError> {
        let bytes = self.objects().get(name).map(|s| Arc::clone(&s.bytes));
        let bytes = bytes.ok_or_else(|| not_found("open", name))?;
        Ok(Box::new(MemoryReader { name: name.clone(), bytes }))
    }

    fn stat(&self, name: &ObjectName) -> Result<ObjectInfo, StoreError> {
        let objects = self.objects();
        let stored = objects.get(name).ok_or_else(|| not_found("stat", name))?;
        Ok(ObjectInfo {
            name: name.clone(),
            len: stored.bytes.len() as u64,
            written_us: stored.written_us,
        })
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>, StoreError> {
        Ok(self
            .objects()
            .iter()
            .filter(|(name, _)| name.kind() == kind)
            .map(|(name, s)| ObjectInfo {
                name: name.clone(),
                len: s.bytes.len() as u64,
                written_us: s.written_us,
            })
            .collect())
    }

    fn delete(&self, name: &ObjectName) -> Result<(), StoreError> {
        let mut objects = self.objects();
        let stored = objects.get(name).ok_or_else(|| not_found("delete", name))?;
        if stored.legal_hold || stored.retained_until.is_some_and(|u| u > now_us()) {
            let e = std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the object is under retention or a legal hold",
            );
            return Err(StoreError::backend("delete", name.to_string(), e));
        }
        objects.remove(name);
        Ok(())
    }

    fn remove_unfinished(&self) -> Result<usize, StoreError> {
        Ok(0) // an unfinished write lives in its writer only
    }

    fn object_lock(&self) -> Result<Option<&dyn ObjectLock>, StoreError> {
        Ok(self.lockable.then_some(self as &dyn ObjectLock))
    }
}

impl MemoryBackend {
    fn with_stored<T>(
        &self,
        op: &'static str,
        name: &ObjectName,
        f: impl FnOnce(&mut Stored) -> T,
    ) -> Result<T, StoreError> {
        self.objects().get_mut(name).map(f).ok_or_else(|| not_found(op, name))
    }
}

impl ObjectLock for MemoryBackend {
    fn retain_until(&self, name: &ObjectName, until_us: i64) -> Result<(), StoreError> {
        self.with_stored("retain", name, |s| {
            s.retained_until = Some(s.retained_until.map_or(until_us, |u| u.max(until_us)));
        })
    }

    fn retained_until(&self, name: &ObjectName) -> Result<Option<i64>, StoreError> {
        self.with_stored("read retention", name, |s| s.retained_until)
    }

    fn set_legal_hold(&self, name: &ObjectName, on: bool) -> Result<(), StoreError> {
        self.with_stored("set legal hold", name, |s| s.legal_hold = on)
    }

    fn legal_hold(&self, name: &ObjectName) -> Result<bool, StoreError> {
        self.with_stored("read legal hold", name, |s| s.legal_hold)
    }
}

#[derive(Debug)]
struct MemoryWriter {
    backend: MemoryBackend,
    name: ObjectName,
    bytes: Vec<u8>,
}

impl ObjectWriter for MemoryWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        let mut objects = self.backend.objects();
        if objects.contains_key(&self.name) {
            let e = std::io::ErrorKind::AlreadyExists.into();
            return Err(StoreError::backend("create", self.name.to_string(), e));
        }
        let stored = Stored {
            bytes: self.bytes.into(),
            written_us: now_us(),
            retained_until: None,
            legal_hold: false,
        };
        objects.insert(self.name.clone(), stored);
        Ok(())
    }
}

#[derive(Debug)]
struct MemoryReader {
    name: ObjectName,
    bytes: Arc<[u8]>,
}

impl ObjectReader for MemoryReader {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, StoreError> {
        check_range(&self.name, self.len(), offset, len)?;
        let start = offset as usize;
        Ok(Cow::Borrowed(&self.bytes[start..start + len]))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_the_conformance_suite() {
        super::super::conformance::run_all(&|| {
            (
                Box::new(super::MemoryBackend::new()) as Box<dyn super::Backend>,
                Box::new(()) as Box<dyn std::any::Any>,
            )
        });
    }

    #[test]
    fn passes_the_conformance_suite_with_object_lock() {
        super::super::conformance::run_all(&|| {
            (
                Box::new(super::MemoryBackend::with_object_lock()) as Box<dyn super::Backend>,
                Box::new(()) as Box<dyn std::any::Any>,
            )
        });
    }
}
