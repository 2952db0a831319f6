//! The pack file format (specified byte by byte in `docs/FORMAT.md`).
//!
//! ```text
//! header   16 B  magic "CLDKPACK" | version u32 | reserved u32
//! blobs    ...   stored bytes of each blob, back to back
//! entries  56 B each: id[32] | kind u8 | compression u8 | reserved u16 | offset u64
//!                     | stored_len u32 | raw_len u32 | crc32(stored) u32
//! footer   24 B  entries_offset u64 | entry_count u32 | crc32(entries) u32 | magic "CLDKPEND"
//! ```
//! All integers little-endian. A pack is complete only when its footer is valid, and it only
//! becomes visible (renamed from its temporary name) after it has been fsynced.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::blob::{self, Blob, BlobKind, Compression};
use crate::{ChunkId, ChunkKey, PackDir, PackId, StoreError};

/// First 8 bytes of every pack.
pub const PACK_MAGIC: [u8; 8] = *b"CLDKPACK";
/// Last 8 bytes of every pack.
pub const PACK_TRAILER_MAGIC: [u8; 8] = *b"CLDKPEND";
/// The pack format version this code writes and reads.
pub const PACK_VERSION: u32 = 1;

const HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = 56;
const FOOTER_LEN: usize = 24;

/// Where a blob lives inside its pack and how to read it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    pub id: ChunkId,
    pub kind: BlobKind,
    pub compression: Compression,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    /// CRC-32 of the stored bytes: finds damage without decompressing or hashing.
    pub crc32: u32,
}

impl BlobEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        out.push(self.kind as u8);
        out.push(self.compression as u8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
    }

    fn decode(b: &[u8; ENTRY_LEN]) -> Option<Self> {
        let (id, rest) = b.split_first_chunk::<32>()?;
        let (&[kind, compression, _, _], rest) = rest.split_first_chunk::<4>()?;
        let (offset, rest) = rest.split_first_chunk::<8>()?;
        let (stored_len, rest) = rest.split_first_chunk::<4>()?;
        let (raw_len, rest) = rest.split_first_chunk::<4>()?;
        let crc32 = rest.first_chunk::<4>()?;
        Some(Self {
            id: ChunkId::from_bytes(*id),
            kind: BlobKind::from_u8(kind)?,
            compression: Compression::from_u8(compression)?,
            offset: u64::from_le_bytes(*offset),
            stored_len: u32::from_le_bytes(*stored_len),
            raw_len: u32::from_le_bytes(*raw_len),
            crc32: u32::from_le_bytes(*crc32),
        })
    }
}

/// A pack that has been fully written, synced and made visible.
#[derive(Debug, Clone)]
pub struct SealedPack {
    pub id: PackId,
    /// Size of the pack file in bytes.
    pub size: u64,
    pub entries: Vec<BlobEntry>,
}

/// Appends blobs to a new pack under a temporary name; [`PackWriter::finish`] seals it.
#[derive(Debug)]
pub struct PackWriter {
    id: PackId,
    tmp_path: PathBuf,
    final_path: PathBuf,
    file: BufWriter<File>,
    offset: u64,
    entries: Vec<BlobEntry>,
    poisoned: bool,
}

impl PackWriter {
    /// Starts a new pack in `dir`.
    pub fn create(dir: &PackDir) -> Result<Self, StoreError> {
        let id = PackId::random();
        let tmp_path = dir.temp_path(id);
        let final_path = dir.path_of(id);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| StoreError::io("create pack", &tmp_path, e))?;
        let mut writer = Self {
            id,
            tmp_path,
            final_path,
            file: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            entries: Vec::new(),
            poisoned: false,
        };
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&PACK_MAGIC);
        header.extend_from_slice(&PACK_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        writer.write_all(&header)?;
        Ok(writer)
    }

    /// This pack's id.
    pub fn id(&self) -> PackId {
        self.id
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// Whether no blob has been appended yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        if let Err(e) = self.file.write_all(bytes) {
            self.poisoned = true;
            return Err(StoreError::io("write pack", &self.tmp_path, e));
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Appends one blob and returns where it will be found.
    pub fn append(&mut self, blob: &Blob) -> Result<BlobEntry, StoreError> {
        let entry = BlobEntry {
            id: blob.id,
            kind: blob.kind,
            compression: blob.compression,
            offset: self.offset,
            stored_len: u32::try_from(blob.stored.len()).expect("stored blob under 4 GiB"),
            raw_len: blob.raw_len,
            crc32: crc32fast::hash(&blob.stored),
        };
        self.write_all(&blob.stored)?;
        self.entries.push(entry);
        Ok(entry)
    }

    /// Writes the entries and footer, fsyncs, renames to the final name and fsyncs the directory.
    /// Only after this returns may the catalog refer to the pack.
    pub fn finish(mut self) -> Result<SealedPack, StoreError> {
        let mut trailer = Vec::with_capacity(self.entries.len() * ENTRY_LEN + FOOTER_LEN);
        for entry in &self.entries {
            entry.encode(&mut trailer);
        }
        let crc = crc32fast::hash(&trailer);
        let entries_offset = self.offset;
        trailer.extend_from_slice(&entries_offset.to_le_bytes());
        trailer.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        trailer.extend_from_slice(&crc.to_le_bytes());
        trailer.extend_from_slice(&PACK_TRAILER_MAGIC);
        self.write_all(&trailer)?;
        let file = self
            .file
            .into_inner()
            .map_err(|e| StoreError::io("flush pack", &self.tmp_path, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io("fsync pack", &self.tmp_path, e))?;
        drop(file);
        fs::rename(&self.tmp_path, &self.final_path)
            .map_err(|e| StoreError::io("rename pack", &self.final_path, e))?;
        let parent = self.final_path.parent().unwrap_or(Path::new("."));
        sync_dir(parent)?;
        Ok(SealedPack { id: self.id, size: self.offset, entries: self.entries })
    }
}

/// fsyncs a directory so that a rename into it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// How a pack's blobs will be read.
///
/// It matters for memory: every touched page of a memory map counts towards the process's
/// resident set, and on a fault the kernel maps the neighbouring cached pages too
/// ("fault-around", 64 KiB), whatever `madvise` says. Reading a few small tree blobs from many
/// mapped packs grew a backup's RSS by 200 MB; `pread` into a buffer costs one copy and keeps
/// only that buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A few blobs, anywhere (trees, single files): read with `pread`.
    Random,
    /// Most blobs, in offset order (restore, check): memory-mapped, read ahead aggressively.
    Sequential,
}

#[derive(Debug)]
enum Source {
    Map(memmap2::Mmap),
    File(File),
}

/// A sealed pack opened for reading.
#[derive(Debug)]
pub struct PackFile {
    id: PackId,
    len: u64,
    source: Source,
}

impl PackFile {
    /// Opens the pack (mapping it for sequential access) and validates its header.
    pub fn open(path: &Path, id: PackId, access: Access) -> Result<Self, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io("open pack", path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io("stat pack", path, e))?.len();
        let corrupted =
            |reason: &str| StoreError::Corrupted { pack: id, offset: 0, reason: reason.into() };
        if len < (HEADER_LEN + FOOTER_LEN) as u64 {
            return Err(corrupted("shorter than header and footer"));
        }
        let source = match access {
            Access::Random => Source::File(file),
            Access::Sequential => {
                // SAFETY: packs are immutable once renamed into place (they are only ever
                // created under a temporary name and deleted whole), so the mapped bytes do not
                // change under us.
                #[allow(unsafe_code)]
                let map = unsafe { memmap2::Mmap::map(&file) }
                    .map_err(|e| StoreError::io("map pack", path, e))?;
                // Advice only tunes paging; a kernel that ignores it reads the same bytes.
                let _ = map.advise(memmap2::Advice::Sequential);
                Source::Map(map)
            }
        };
        let pack = Self { id, len, source };
        let header = pack.bytes(0, HEADER_LEN).ok_or_else(|| corrupted("header unreadable"))?;
        if header[..8] != PACK_MAGIC {
            return Err(corrupted("bad header magic"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != PACK_VERSION {
            return Err(corrupted(&format!("unsupported pack version {version}")));
        }
        Ok(pack)
    }

    /// `len` bytes at `start`, or `None` when that is out of bounds or unreadable.
    fn bytes(&self, start: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let end = start.checked_add(len as u64).filter(|end| *end <= self.len)?;
        match &self.source {
            Source::Map(map) => {
                map.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?).map(Cow::Borrowed)
            }
            Source::File(file) => {
                let mut buf = vec![0u8; len];
                std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, start).ok()?;
                Some(Cow::Owned(buf))
            }
        }
    }

    /// This pack's id.
    pub fn id(&self) -> PackId {
        self.id
    }

    /// Size of the pack file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (never true for a pack that opened).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn corrupted(&self, offset: u64, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupted { pack: self.id, offset, reason: reason.into() }
    }

    /// Decodes and checks the entry table from the footer.
    pub fn entries(&self) -> Result<Vec<BlobEntry>, StoreError> {
        let footer_at = self.len - FOOTER_LEN as u64;
        let footer = self
            .bytes(footer_at, FOOTER_LEN)
            .ok_or_else(|| self.corrupted(footer_at, "footer unreadable"))?;
        if footer[16..24] != PACK_TRAILER_MAGIC {
            return Err(self.corrupted(footer_at, "bad footer magic"));
        }
        let entries_offset = u64::from_le_bytes(footer[0..8].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(footer[8..12].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(footer[12..16].try_into().expect("4 bytes"));
        let table = count
            .checked_mul(ENTRY_LEN)
            .filter(|n| {
                entries_offset >= HEADER_LEN as u64
                    && entries_offset.checked_add(*n as u64) == Some(footer_at)
            })
            .and_then(|n| self.bytes(entries_offset, n))
            .ok_or_else(|| self.corrupted(footer_at, "entry table out of bounds"))?;
        if crc32fast::hash(&table) != crc {
            return Err(self.corrupted(entries_offset, "entry table checksum mismatch"));
        }
        table
            .chunks_exact(ENTRY_LEN)
            .enumerate()
            .map(|(i, raw)| {
                let raw: &[u8; ENTRY_LEN] = raw.try_into().expect("chunks_exact");
                BlobEntry::decode(raw)
                    .filter(|e| {
                        e.offset >= HEADER_LEN as u64
                            && e.offset + u64::from(e.stored_len) <= entries_offset
                    })
                    .ok_or_else(|| {
                        self.corrupted(entries_offset + (i * ENTRY_LEN) as u64, "invalid entry")
                    })
            })
            .collect()
    }

    /// The stored bytes of a blob, checked against its CRC.
    pub fn stored_bytes(&self, entry: &BlobEntry) -> Result<Cow<'_, [u8]>, StoreError> {
        let bytes = self.bytes(entry.offset, entry.stored_len as usize).ok_or_else(|| {
            self.corrupted(entry.offset, format!("blob {} out of bounds", entry.id))
        })?;
        if crc32fast::hash(&bytes) != entry.crc32 {
            return Err(
                self.corrupted(entry.offset, format!("blob {} checksum mismatch", entry.id))
            );
        }
        Ok(bytes)
    }

    /// The plaintext of a blob. With `key`, also checks that it hashes to the blob's id.
    pub fn read_blob(
        &self,
        entry: &BlobEntry,
        key: Option<&ChunkKey>,
    ) -> Result<Vec<u8>, StoreError> {
        let stored = self.stored_bytes(entry)?;
        let raw = blob::decode(&stored, entry.compression, entry.raw_len).map_err(|reason| {
            self.corrupted(entry.offset, format!("blob {}: {reason}", entry.id))
        })?;
        if let Some(key) = key {
            if key.id_of(&raw) != entry.id {
                return Err(self.corrupted(
                    entry.offset,
                    format!("blob {} content does not match its id", entry.id),
                ));
            }
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pack(dir: &PackDir, key: &ChunkKey, blobs: &[Vec<u8>]) -> SealedPack {
        let mut writer = PackWriter::create(dir).expect("create");
        for raw in blobs {
            writer.append(&Blob::prepare(key.id_of(raw), BlobKind::Data, raw, 3)).expect("append");
        }
        writer.finish().expect("finish")
    }

    #[test]
    fn blobs_round_trip_and_the_trailer_matches() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = PackDir::create(tmp.path()).expect("pack dir");
        let key = ChunkKey::from_bytes([3; 32]);
        let blobs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1000 * usize::from(i)]).collect();
        let sealed = write_pack(&dir, &key, &blobs);
        assert_eq!(dir.list().expect("list"), vec![sealed.id]);
        let pack =
            PackFile::open(&dir.path_of(sealed.id), sealed.id, Access::Sequential).expect("open");
        assert_eq!(pack.entries().expect("entries"), sealed.entries);
        for (entry, raw) in sealed.entries.iter().zip(&blobs) {
            assert_eq!(&pack.read_blob(entry, Some(&key)).expect("read"), raw);
        }
    }

    #[test]
    fn a_flipped_byte_is_found_at_its_offset() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = PackDir::create(tmp.path()).expect("pack dir");
        let key = ChunkKey::from_bytes([3; 32]);
        let sealed = write_pack(&dir, &key, &[b"first blob".repeat(50), b"second blob".repeat(50)]);
        let path = dir.path_of(sealed.id);
        let mut bytes = fs::read(&path).expect("read");
        let victim = sealed.entries[1];
        bytes[victim.offset as usize + 3] ^= 0x40;
        fs::write(&path, &bytes).expect("write");
        let pack = PackFile::open(&path, sealed.id, Access::Random).expect("open");
        assert!(pack.read_blob(&sealed.entries[0], Some(&key)).is_ok());
        match pack.read_blob(&victim, Some(&key)) {
            Err(StoreError::Corrupted { pack: p, offset, .. }) => {
                assert_eq!((p, offset), (sealed.id, victim.offset));
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    proptest::proptest! {
        /// Decoding arbitrary bytes as a pack never panics.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                                keep_magic in proptest::prelude::any::<bool>()) {
            let tmp = tempfile::tempdir().expect("tempdir");
            let path = tmp.path().join("p");
            let mut bytes = bytes;
            if keep_magic && bytes.len() >= 40 {
                bytes[..8].copy_from_slice(&PACK_MAGIC);
                bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
                let n = bytes.len();
                bytes[n - 8..].copy_from_slice(&PACK_TRAILER_MAGIC);
            }
            fs::write(&path, &bytes).expect("write");
            if let Ok(pack) = PackFile::open(&path, PackId::from_bytes([0; 16]), Access::Random) {
                if let Ok(entries) = pack.entries() {
                    for e in entries {
                        let _ = pack.read_blob(&e, None);
                    }
                }
            }
        }
    }
}
