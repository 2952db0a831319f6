//! The pack file format (specified byte by byte in `docs/FORMAT.md`).
//!
//! ```text
//! header   16 B  magic "CLDKPACK" | version u32 | flags u32 (bit 0: sealed)
//! frames   ...   stored bytes of each frame, back to back
//! entries  64 B each: id[32] | kind u8 | compression u8 | reserved u16 | frame offset u64
//!                     | frame stored_len u32 | frame raw_len u32 | crc32(frame stored) u32
//!                     | blob start u32 | blob len u32
//! footer   24 B  entries_offset u64 | entry_count u32 | crc32(entries) u32 | magic "CLDKPEND"
//! ```
//! All integers little-endian. In a *sealed* pack (an encrypted repository's) each frame's
//! stored bytes, and the entry table as a whole, are sealed strings (`crypto`: nonce,
//! ciphertext, tag) whose associated data names the pack, so nothing but the header and the
//! footer's lengths is readable without the key, and nothing moves between packs unnoticed.
//! A frame's CRC covers its stored (sealed) bytes: damage is found without the key. A pack is complete only when its footer is valid, and it only
//! becomes visible (as an object of its [`Backend`]) once it is whole and durable.
//!
//! A *frame* is the unit of compression: one zstd frame, or raw bytes. A large blob is a frame of
//! its own. Small data blobs (most files of a source tree are smaller than a chunk) are
//! concatenated into a shared frame of about [`GROUP_TARGET`] bytes before compression: zstd
//! then sees the redundancy between neighbouring files, so a group stores smaller at zstd level 1
//! than single blobs do at level 3, in less CPU time (docs/BENCHMARKS.md). Reading one small blob
//! costs decompressing its group, at most ~190 KiB. Tree blobs are never grouped: they are read
//! one at a time, at random, by every restore and listing.

use std::borrow::Cow;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::backend::{Access, Backend, ObjectName, ObjectReader, ObjectWriter};
use crate::blob::{self, BlobKind, Compression};
use crate::crypto::{SealingKey, SEAL_OVERHEAD};
use crate::{ChunkId, ChunkKey, PackId, StoreError};

/// First 8 bytes of every pack.
pub const PACK_MAGIC: [u8; 8] = *b"CLDKPACK";
/// Last 8 bytes of every pack.
pub const PACK_TRAILER_MAGIC: [u8; 8] = *b"CLDKPEND";
/// The pack format version this code writes. It also reads version 2, which is version 3 with
/// no flags (never sealed).
pub const PACK_VERSION: u32 = 3;
/// Header flag: frames and entry table are sealed.
const FLAG_SEALED: u32 = 1;
/// Data blobs shorter than this share a frame with their neighbours.
pub const GROUP_BLOB_MAX: usize = 64 << 10;
/// A shared frame is closed once its plaintext reaches this size.
pub const GROUP_TARGET: usize = 128 << 10;
/// The largest frame plaintext a reader accepts (chunks are at most 16 MiB): a damaged or
/// hostile entry cannot make a reader allocate more.
pub const MAX_FRAME_LEN: u32 = 64 << 20;

const HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = 64;
const FOOTER_LEN: usize = 24;

/// A stored frame: where it is in the pack and how to turn it back into plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    pub offset: u64,
    pub stored_len: u32,
    /// Length of the frame's plaintext.
    pub raw_len: u32,
    pub compression: Compression,
    /// CRC-32 of the stored bytes: finds damage without decompressing or hashing.
    pub crc32: u32,
}

/// Where a blob lives inside its pack: a frame, and a range of that frame's plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    pub id: ChunkId,
    pub kind: BlobKind,
    pub frame: Frame,
    /// Offset of the blob's plaintext inside the frame's plaintext.
    pub start: u32,
    /// Length of the blob's plaintext.
    pub len: u32,
}

impl BlobEntry {
    /// The blob's bytes inside its frame's plaintext.
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }

    /// Whether the blob is its frame's whole plaintext.
    fn is_whole_frame(&self) -> bool {
        self.start == 0 && self.len == self.frame.raw_len
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let f = &self.frame;
        out.extend_from_slice(self.id.as_bytes());
        out.push(self.kind as u8);
        out.push(f.compression as u8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&f.offset.to_le_bytes());
        out.extend_from_slice(&f.stored_len.to_le_bytes());
        out.extend_from_slice(&f.raw_len.to_le_bytes());
        out.extend_from_slice(&f.crc32.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
    }

    /// Decodes an entry, refusing unknown codes and ranges that cannot be right whatever the
    /// pack's length. `overhead` is what sealing adds to a frame's stored bytes.
    fn decode(b: &[u8; ENTRY_LEN], overhead: u32) -> Option<Self> {
        let (id, rest) = b.split_first_chunk::<32>()?;
        let (&[kind, compression, _, _], rest) = rest.split_first_chunk::<4>()?;
        let (offset, rest) = rest.split_first_chunk::<8>()?;
        let u32_at = |i: usize| rest.get(i..i + 4)?.try_into().ok().map(u32::from_le_bytes);
        let frame = Frame {
            offset: u64::from_le_bytes(*offset),
            stored_len: u32_at(0)?,
            raw_len: u32_at(4)?,
            compression: Compression::from_u8(compression)?,
            crc32: u32_at(8)?,
        };
        let entry = Self {
            id: ChunkId::from_bytes(*id),
            kind: BlobKind::from_u8(kind)?,
            frame,
            start: u32_at(12)?,
            len: u32_at(16)?,
        };
        let fits = entry.start.checked_add(entry.len).is_some_and(|end| end <= frame.raw_len);
        let raw_is_stored = frame.compression != Compression::None
            || frame.raw_len.checked_add(overhead) == Some(frame.stored_len);
        (frame.raw_len <= MAX_FRAME_LEN && fits && raw_is_stored).then_some(entry)
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

/// Small blobs waiting to be compressed together.
#[derive(Debug, Default)]
struct Group {
    plain: Vec<u8>,
    /// (id, start in `plain`, len) of each member.
    members: Vec<(ChunkId, u32, u32)>,
}

/// Appends blobs to a new pack object; [`PackWriter::finish`] seals it. Nothing of the pack
/// is visible until then.
///
/// The writer compresses: a worker thread that owns a writer does the CPU work of its blobs.
#[derive(Debug)]
pub struct PackWriter {
    id: PackId,
    out: Box<dyn ObjectWriter>,
    /// Seals frames and the entry table (encrypted repositories).
    seal: Option<SealingKey>,
    offset: u64,
    entries: Vec<BlobEntry>,
    group: Group,
    zstd_level: i32,
    poisoned: bool,
}

impl PackWriter {
    /// Starts a new pack in `backend` whose frames are compressed at `zstd_level` and, with
    /// `seal`, sealed under that key.
    pub fn create(
        backend: &dyn Backend,
        zstd_level: i32,
        seal: Option<&SealingKey>,
    ) -> Result<Self, StoreError> {
        let id = PackId::random();
        let out = backend.create(&ObjectName::pack(id))?;
        let flags = if seal.is_some() { FLAG_SEALED } else { 0 };
        let mut writer = Self {
            id,
            out,
            seal: seal.cloned(),
            offset: 0,
            entries: Vec::new(),
            group: Group::default(),
            zstd_level,
            poisoned: false,
        };
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&PACK_MAGIC);
        header.extend_from_slice(&PACK_VERSION.to_le_bytes());
        header.extend_from_slice(&flags.to_le_bytes());
        writer.write_all(&header)?;
        Ok(writer)
    }

    /// This pack's id.
    pub fn id(&self) -> PackId {
        self.id
    }

    /// Bytes written so far, plus the plaintext of blobs waiting in a group (an upper bound of
    /// what they will take).
    pub fn len(&self) -> u64 {
        self.offset + self.group.plain.len() as u64
    }

    /// Whether no blob has been added yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.group.members.is_empty()
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        if let Err(e) = self.out.write(bytes) {
            self.poisoned = true;
            return Err(e);
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Adds one blob. Small data blobs wait in a group, written when it is full or at
    /// [`finish`](Self::finish); the pack's index only ever lists written blobs.
    ///
    /// # Panics
    /// If `raw` is longer than [`MAX_FRAME_LEN`] (chunks are at most 16 MiB, trees far smaller).
    pub fn add(&mut self, id: ChunkId, kind: BlobKind, raw: &[u8]) -> Result<(), StoreError> {
        let len = u32::try_from(raw.len()).ok().filter(|n| *n <= MAX_FRAME_LEN);
        let len = len.expect("blob longer than MAX_FRAME_LEN");
        if kind == BlobKind::Data && raw.len() < GROUP_BLOB_MAX {
            let start = self.group.plain.len() as u32;
            self.group.plain.extend_from_slice(raw);
            self.group.members.push((id, start, len));
            if self.group.plain.len() >= GROUP_TARGET {
                self.flush_group()?;
            }
            return Ok(());
        }
        let frame = self.write_frame(raw)?;
        self.entries.push(BlobEntry { id, kind, frame, start: 0, len });
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), StoreError> {
        if self.group.members.is_empty() {
            return Ok(());
        }
        let mut group = std::mem::take(&mut self.group);
        let frame = self.write_frame(&group.plain)?;
        self.entries.extend(group.members.drain(..).map(|(id, start, len)| BlobEntry {
            id,
            kind: BlobKind::Data,
            frame,
            start,
            len,
        }));
        group.plain.clear();
        self.group = group; // keeps the buffers' capacity
        Ok(())
    }

    fn write_frame(&mut self, plain: &[u8]) -> Result<Frame, StoreError> {
        let (compression, encoded) = blob::encode_frame(plain, self.zstd_level);
        let stored = match &self.seal {
            Some(key) => Cow::Owned(key.seal(&aad(b"frame", self.id), &encoded)),
            None => encoded,
        };
        let frame = Frame {
            offset: self.offset,
            stored_len: u32::try_from(stored.len()).expect("frame under 4 GiB"),
            raw_len: u32::try_from(plain.len()).expect("frame under 4 GiB"),
            compression,
            crc32: crc32fast::hash(&stored),
        };
        self.write_all(&stored)?;
        Ok(frame)
    }

    /// Writes waiting blobs, the entries and the footer, and finishes the object (durable, then
    /// visible). Only after this returns may the catalog refer to the pack.
    pub fn finish(mut self) -> Result<SealedPack, StoreError> {
        self.flush_group()?;
        let mut table = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for entry in &self.entries {
            entry.encode(&mut table);
        }
        let mut trailer = match &self.seal {
            Some(key) => key.seal(&aad(b"index", self.id), &table),
            None => table,
        };
        let crc = crc32fast::hash(&trailer);
        let entries_offset = self.offset;
        trailer.extend_from_slice(&entries_offset.to_le_bytes());
        trailer.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        trailer.extend_from_slice(&crc.to_le_bytes());
        trailer.extend_from_slice(&PACK_TRAILER_MAGIC);
        self.write_all(&trailer)?;
        self.out.finish()?;
        Ok(SealedPack { id: self.id, size: self.offset, entries: self.entries })
    }
}

/// The associated data of a pack's sealed `part` (`frame` or `index`): it names the pack.
fn aad(part: &[u8], pack: PackId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(5 + part.len() + 16);
    aad.extend_from_slice(b"CLDK ");
    aad.extend_from_slice(part);
    aad.extend_from_slice(pack.as_bytes());
    aad
}

/// A sealed pack opened for reading.
#[derive(Debug)]
pub struct PackFile {
    id: PackId,
    len: u64,
    reader: Box<dyn ObjectReader>,
    /// The key of a pack whose frames are sealed.
    seal: Option<SealingKey>,
}

impl PackFile {
    /// Opens the pack and validates its header. `access` tells the backend how the pack will
    /// be read. `seal` is the repository's key when it is encrypted: then the pack must be
    /// sealed, and otherwise it must not be.
    pub fn open(
        backend: &dyn Backend,
        id: PackId,
        access: Access,
        seal: Option<&SealingKey>,
    ) -> Result<Self, StoreError> {
        let reader = backend.open(&ObjectName::pack(id), access)?;
        let len = reader.len();
        let corrupted =
            |reason: &str| StoreError::Corrupted { pack: id, offset: 0, reason: reason.into() };
        if len < (HEADER_LEN + FOOTER_LEN) as u64 {
            return Err(corrupted("shorter than header and footer"));
        }
        let pack = Self { id, len, reader, seal: seal.cloned() };
        let header = pack.bytes(0, HEADER_LEN)?.ok_or_else(|| corrupted("header unreadable"))?;
        if header[..8] != PACK_MAGIC {
            return Err(corrupted("bad header magic"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        let flags = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
        if !(version == PACK_VERSION || version == 2 && flags == 0) {
            return Err(corrupted(&format!("unsupported pack version {version}")));
        }
        match (flags, seal.is_some()) {
            (0, false) | (FLAG_SEALED, true) => Ok(pack),
            (0, true) => Err(corrupted("not sealed, in an encrypted repository")),
            (FLAG_SEALED, false) => Err(corrupted("sealed, in a repository without encryption")),
            _ => Err(corrupted(&format!("unknown flags {flags:#x}"))),
        }
    }

    /// `len` bytes at `start`, or `None` when that is out of the pack's bounds (damage: the
    /// pack's own offsets point outside it). A failure to read is the backend's error, not
    /// damage.
    fn bytes(&self, start: u64, len: usize) -> Result<Option<Cow<'_, [u8]>>, StoreError> {
        if start.checked_add(len as u64).is_none_or(|end| end > self.len) {
            return Ok(None);
        }
        self.reader.read_at(start, len).map(Some)
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
            .bytes(footer_at, FOOTER_LEN)?
            .ok_or_else(|| self.corrupted(footer_at, "footer unreadable"))?;
        if footer[16..24] != PACK_TRAILER_MAGIC {
            return Err(self.corrupted(footer_at, "bad footer magic"));
        }
        let entries_offset = u64::from_le_bytes(footer[0..8].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(footer[8..12].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(footer[12..16].try_into().expect("4 bytes"));
        let overhead = if self.seal.is_some() { SEAL_OVERHEAD } else { 0 };
        let table_len =
            count.checked_mul(ENTRY_LEN).and_then(|n| n.checked_add(overhead)).filter(|n| {
                entries_offset >= HEADER_LEN as u64
                    && entries_offset.checked_add(*n as u64) == Some(footer_at)
            });
        let table = match table_len {
            Some(n) => self.bytes(entries_offset, n)?,
            None => None,
        };
        let table = table.ok_or_else(|| self.corrupted(footer_at, "entry table out of bounds"))?;
        if crc32fast::hash(&table) != crc {
            return Err(self.corrupted(entries_offset, "entry table checksum mismatch"));
        }
        let table = match &self.seal {
            Some(key) => Cow::Owned(
                key.open(&aad(b"index", self.id), &table)
                    .map_err(|e| self.corrupted(entries_offset, format!("entry table: {e}")))?,
            ),
            None => table,
        };
        table
            .chunks_exact(ENTRY_LEN)
            .enumerate()
            .map(|(i, raw)| {
                let raw: &[u8; ENTRY_LEN] = raw.try_into().expect("chunks_exact");
                BlobEntry::decode(raw, overhead as u32)
                    .filter(|e| {
                        e.frame.offset >= HEADER_LEN as u64
                            && e.frame.offset + u64::from(e.frame.stored_len) <= entries_offset
                    })
                    .ok_or_else(|| {
                        self.corrupted(entries_offset + (i * ENTRY_LEN) as u64, "invalid entry")
                    })
            })
            .collect()
    }

    /// The plaintext of a frame, its stored bytes checked against their CRC.
    pub fn read_frame(&self, frame: &Frame) -> Result<Vec<u8>, StoreError> {
        let mut plain = Vec::new();
        self.read_frame_into(frame, &mut plain)?;
        Ok(plain)
    }

    /// [`read_frame`](Self::read_frame) into `plain`, replacing what it held: a reader of many
    /// frames reuses one buffer.
    pub fn read_frame_into(&self, frame: &Frame, plain: &mut Vec<u8>) -> Result<(), StoreError> {
        if frame.raw_len > MAX_FRAME_LEN {
            return Err(self.corrupted(frame.offset, "frame longer than the format allows"));
        }
        let stored = self
            .bytes(frame.offset, frame.stored_len as usize)?
            .ok_or_else(|| self.corrupted(frame.offset, "frame out of bounds"))?;
        if crc32fast::hash(&stored) != frame.crc32 {
            return Err(self.corrupted(frame.offset, "frame checksum mismatch"));
        }
        let stored = match &self.seal {
            Some(key) => Cow::Owned(
                key.open(&aad(b"frame", self.id), &stored)
                    .map_err(|e| self.corrupted(frame.offset, format!("frame: {e}")))?,
            ),
            None => stored,
        };
        blob::decode_into(&stored, frame.compression, frame.raw_len, plain)
            .map_err(|reason| self.corrupted(frame.offset, format!("frame: {reason}")))
    }

    /// One blob's plaintext out of its frame's plaintext (from [`read_frame`](Self::read_frame)).
    /// With `key`, also checks that it hashes to the blob's id.
    pub fn blob_in_frame<'f>(
        &self,
        frame_plain: &'f [u8],
        entry: &BlobEntry,
        key: Option<&ChunkKey>,
    ) -> Result<&'f [u8], StoreError> {
        let at = entry.frame.offset;
        let raw = frame_plain
            .get(entry.range())
            .ok_or_else(|| self.corrupted(at, format!("blob {} outside its frame", entry.id)))?;
        if key.is_some_and(|key| key.id_of(raw) != entry.id) {
            return Err(
                self.corrupted(at, format!("blob {} content does not match its id", entry.id))
            );
        }
        Ok(raw)
    }

    /// The plaintext of a blob. With `key`, also checks that it hashes to the blob's id.
    pub fn read_blob(
        &self,
        entry: &BlobEntry,
        key: Option<&ChunkKey>,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = self.read_frame(&entry.frame)?;
        let raw = self.blob_in_frame(&plain, entry, key)?;
        if entry.is_whole_frame() {
            Ok(plain)
        } else {
            Ok(raw.to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{MemoryBackend, ObjectKind};

    fn write_pack(
        dir: &dyn Backend,
        key: &ChunkKey,
        seal: Option<&SealingKey>,
        blobs: &[Vec<u8>],
    ) -> SealedPack {
        let mut writer = PackWriter::create(dir, 3, seal).expect("create");
        for raw in blobs {
            writer.add(key.id_of(raw), BlobKind::Data, raw).expect("add");
        }
        writer.finish().expect("finish")
    }

    /// Blobs of every size class: small ones (grouped), large ones (a frame each), and
    /// incompressible ones (stored raw).
    fn sample_blobs() -> Vec<Vec<u8>> {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = |n: usize| {
            (0..n)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect::<Vec<u8>>()
        };
        let mut blobs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1500 * usize::from(i)]).collect();
        blobs.push(Vec::new());
        blobs.push(noise(70_000));
        blobs.push(noise(1000));
        blobs.push(b"large and compressible ".repeat(20_000));
        blobs
    }

    /// Both kinds of pack: plain, and sealed under a key.
    fn seals() -> [Option<SealingKey>; 2] {
        [None, Some(crate::crypto::MasterKey::from_bytes([9; 32]).object_key())]
    }

    #[test]
    fn blobs_round_trip_and_the_trailer_matches() {
        for seal in seals() {
            blobs_round_trip(seal.as_ref());
        }
    }

    fn blobs_round_trip(seal: Option<&SealingKey>) {
        let dir = MemoryBackend::new();
        let key = ChunkKey::from_bytes([3; 32]);
        let blobs = sample_blobs();
        let sealed = write_pack(&dir, &key, seal, &blobs);
        let listed = dir.list(ObjectKind::Pack).expect("list");
        assert_eq!(
            listed.iter().map(|i| i.name.pack_id()).collect::<Vec<_>>(),
            vec![Some(sealed.id)]
        );
        assert_eq!(listed[0].len, sealed.size);
        let pack = PackFile::open(&dir, sealed.id, Access::Sequential, seal).expect("open");
        assert_eq!(pack.entries().expect("entries"), sealed.entries);
        assert_eq!(sealed.entries.len(), blobs.len());
        for raw in &blobs {
            let entry = sealed.entries.iter().find(|e| e.id == key.id_of(raw)).expect("listed");
            assert_eq!(&pack.read_blob(entry, Some(&key)).expect("read"), raw);
            assert_eq!(entry.len as usize, raw.len());
            if raw.len() >= GROUP_BLOB_MAX {
                assert!(entry.is_whole_frame(), "a large blob is a frame of its own");
            }
        }
        let frames: std::collections::HashSet<_> = sealed.entries.iter().map(|e| e.frame).collect();
        assert!(frames.len() < blobs.len() / 2, "small blobs share frames");
        assert!(frames.iter().any(|f| f.compression == Compression::None), "noise is kept raw");
        let raw: usize = blobs.iter().map(Vec::len).sum();
        assert!(sealed.size < raw as u64 / 4, "grouped frames compress: {} of {raw}", sealed.size);
    }

    #[test]
    fn a_flipped_byte_is_found_at_its_frame_and_damages_only_that_frame() {
        for seal in seals() {
            a_flipped_byte_damages_its_frame(seal.as_ref());
        }
    }

    fn a_flipped_byte_damages_its_frame(seal: Option<&SealingKey>) {
        let dir = MemoryBackend::new();
        let key = ChunkKey::from_bytes([3; 32]);
        let blobs = sample_blobs();
        let sealed = write_pack(&dir, &key, seal, &blobs);
        let name = ObjectName::pack(sealed.id);
        let mut bytes = dir.get(&name).expect("read");
        // A frame holding several small blobs.
        let victim = sealed.entries[1].frame;
        bytes[victim.offset as usize + 3] ^= 0x40;
        dir.delete(&name).expect("delete");
        dir.put(&name, &bytes).expect("write");
        let pack = PackFile::open(&dir, sealed.id, Access::Random, seal).expect("open");
        let mut damaged = 0;
        for entry in &sealed.entries {
            match pack.read_blob(entry, Some(&key)) {
                Err(StoreError::Corrupted { pack: p, offset, .. }) => {
                    assert_eq!((p, offset), (sealed.id, victim.offset));
                    assert_eq!(entry.frame, victim);
                    damaged += 1;
                }
                Ok(_) => assert_ne!(entry.frame, victim),
                Err(other) => panic!("expected corruption, got {other:?}"),
            }
        }
        assert!(damaged > 1, "every blob of the damaged group is reported");
    }

    #[test]
    fn a_sealed_pack_shows_nothing_and_opens_only_with_its_key() {
        let dir = MemoryBackend::new();
        let key = ChunkKey::from_bytes([3; 32]);
        let [_, seal] = seals();
        let marker = b"a marker that must not be readable in the pack ".repeat(40);
        let blobs = vec![marker.clone(), b"small".to_vec(), vec![7; 200_000]];
        let sealed = write_pack(&dir, &key, seal.as_ref(), &blobs);
        let bytes = dir.get(&ObjectName::pack(sealed.id)).expect("read");
        assert!(!bytes.windows(16).any(|w| w == &marker[..16]), "plaintext in a sealed pack");
        assert!(!bytes.windows(32).any(|w| w == key.id_of(&marker).as_bytes()), "a chunk id shows");
        let open =
            |seal: Option<&SealingKey>| PackFile::open(&dir, sealed.id, Access::Random, seal);
        assert!(matches!(open(None), Err(StoreError::Corrupted { .. })), "not without a key");
        let wrong = crate::crypto::MasterKey::from_bytes([1; 32]).object_key();
        let pack = open(Some(&wrong)).expect("the header has no secret");
        assert!(matches!(pack.entries(), Err(StoreError::Corrupted { .. })), "wrong key");
        // Nor is a plain pack accepted where packs are sealed.
        let plain = write_pack(&dir, &key, None, &blobs);
        let plain_open = PackFile::open(&dir, plain.id, Access::Random, seal.as_ref());
        assert!(matches!(plain_open, Err(StoreError::Corrupted { .. })));
        // A frame copied into another pack does not open there.
        let other = write_pack(&dir, &key, seal.as_ref(), &blobs);
        let mut forged = dir.get(&ObjectName::pack(other.id)).expect("read");
        let (from, to) = (sealed.entries[2].frame, other.entries[2].frame);
        assert_eq!(from.stored_len, to.stored_len);
        let (a, b) = (from.offset as usize, to.offset as usize);
        forged[b..b + to.stored_len as usize]
            .copy_from_slice(&bytes[a..a + from.stored_len as usize]);
        dir.delete(&ObjectName::pack(other.id)).expect("delete");
        dir.put(&ObjectName::pack(other.id), &forged).expect("put");
        let pack = PackFile::open(&dir, other.id, Access::Random, seal.as_ref()).expect("open");
        let entry =
            pack.entries().expect("entries").into_iter().find(|e| e.frame.offset == to.offset);
        // The CRC (inside the sealed table) already differs; the seal would refuse it too.
        assert!(pack.read_blob(&entry.expect("entry"), Some(&key)).is_err());
    }

    #[test]
    fn entries_whose_blob_leaves_its_frame_are_refused() {
        let key = ChunkKey::from_bytes([3; 32]);
        let entry = BlobEntry {
            id: key.id_of(b"x"),
            kind: BlobKind::Data,
            frame: Frame {
                offset: 16,
                stored_len: 10,
                raw_len: 10,
                compression: Compression::None,
                crc32: 0,
            },
            start: 4,
            len: 6,
        };
        let decode = |e: &BlobEntry| {
            let mut raw = Vec::new();
            e.encode(&mut raw);
            BlobEntry::decode(raw.as_slice().try_into().expect("entry length"), 0)
        };
        assert_eq!(decode(&entry), Some(entry));
        assert_eq!(decode(&BlobEntry { len: 7, ..entry }), None);
        assert_eq!(decode(&BlobEntry { start: u32::MAX, ..entry }), None);
        let raw_mismatch = Frame { raw_len: 11, ..entry.frame };
        assert_eq!(decode(&BlobEntry { frame: raw_mismatch, ..entry }), None);
        let huge =
            Frame { raw_len: MAX_FRAME_LEN + 1, compression: Compression::Zstd, ..entry.frame };
        assert_eq!(decode(&BlobEntry { frame: huge, ..entry }), None);
    }

    proptest::proptest! {
        /// Decoding arbitrary bytes as a pack never panics.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                                keep_magic in proptest::prelude::any::<bool>(),
                                sealed in proptest::prelude::any::<bool>()) {
            let [_, key] = seals();
            let seal = if sealed { key.as_ref() } else { None };
            let dir = MemoryBackend::new();
            let id = PackId::from_bytes([0; 16]);
            let mut bytes = bytes;
            if keep_magic && bytes.len() >= 40 {
                bytes[..8].copy_from_slice(&PACK_MAGIC);
                bytes[8..12].copy_from_slice(&PACK_VERSION.to_le_bytes());
                bytes[12..16].copy_from_slice(&u32::from(sealed).to_le_bytes());
                let n = bytes.len();
                bytes[n - 8..].copy_from_slice(&PACK_TRAILER_MAGIC);
            }
            dir.put(&ObjectName::pack(id), &bytes).expect("write");
            if let Ok(pack) = PackFile::open(&dir, id, Access::Random, seal) {
                if let Ok(entries) = pack.entries() {
                    for e in entries {
                        let _ = pack.read_blob(&e, None);
                    }
                }
            }
        }
    }
}
