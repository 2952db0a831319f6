//! A backend in memory: the reference implementation of the [`Backend`] contract, and the
//! storage of tests that need no disk.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    check_range, Access, Backend, ObjectInfo, ObjectKind, ObjectName, ObjectReader, ObjectWriter,
};
use crate::StoreError;

#[derive(Debug)]
struct Stored {
    bytes: Arc<[u8]>,
    written_us: i64,
}

/// Objects in memory. Clones share the same objects.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    objects: Arc<Mutex<BTreeMap<ObjectName, Stored>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
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
        self.objects().remove(name).map(drop).ok_or_else(|| not_found("delete", name))
    }

    fn remove_unfinished(&self) -> Result<usize, StoreError> {
        Ok(0) // an unfinished write lives in its writer only
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
        let written_us =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        objects.insert(self.name.clone(), Stored { bytes: self.bytes.into(), written_us });
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
}
