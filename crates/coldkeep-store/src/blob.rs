//! Blobs: chunks prepared for a pack (compressed or raw) and turned back into plaintext.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use crate::ChunkId;

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum BlobKind {
    /// File content.
    Data = 0,
    /// A serialized directory (a tree node list).
    Tree = 1,
}

impl BlobKind {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Data),
            1 => Some(Self::Tree),
            _ => None,
        }
    }
}

/// How a blob's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Compression {
    /// Stored as is: zstd did not make it smaller.
    None = 0,
    /// One zstd frame.
    Zstd = 1,
}

impl Compression {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::None),
            1 => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// A chunk ready to be appended to a pack.
#[derive(Debug, Clone)]
pub struct Blob {
    pub id: ChunkId,
    pub kind: BlobKind,
    pub compression: Compression,
    /// Length of the plaintext.
    pub raw_len: u32,
    /// The bytes written to the pack.
    pub stored: Vec<u8>,
}

impl Blob {
    /// Compresses `raw` with zstd at `level`, keeping the raw bytes when that is not smaller.
    ///
    /// # Panics
    /// If `raw` is 4 GiB or longer (chunks are at most 16 MiB; trees are far smaller).
    pub fn prepare(id: ChunkId, kind: BlobKind, raw: &[u8], level: i32) -> Self {
        let raw_len = u32::try_from(raw.len()).expect("blob under 4 GiB");
        match compress(raw, level) {
            Ok(z) if z.len() < raw.len() => {
                Self { id, kind, compression: Compression::Zstd, raw_len, stored: z }
            }
            _ => Self { id, kind, compression: Compression::None, raw_len, stored: raw.to_vec() },
        }
    }
}

thread_local! {
    // zstd contexts are large (~1 MiB at level 3) and costly to set up: one per thread, reused
    // for every blob, instead of one per call. Small files are most blobs, and for them the setup
    // would cost more than the compression.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress(raw: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, compressor) = slot.as_mut().expect("just set");
        compressor.compress(raw)
    })
}

fn decompress(stored: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut().expect("just set").decompress(stored, capacity)
    })
}

/// Turns stored bytes back into plaintext, refusing anything but exactly `raw_len` bytes.
pub(crate) fn decode(
    stored: &[u8],
    compression: Compression,
    raw_len: u32,
) -> Result<Vec<u8>, String> {
    let raw = match compression {
        Compression::None => stored.to_vec(),
        Compression::Zstd => {
            decompress(stored, raw_len as usize).map_err(|e| format!("zstd: {e}"))?
        }
    };
    if raw.len() == raw_len as usize {
        Ok(raw)
    } else {
        Err(format!("plaintext is {} bytes, index says {raw_len}", raw.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkKey;

    #[test]
    fn incompressible_data_is_stored_raw() {
        let key = ChunkKey::from_bytes([0; 32]);
        let noise: Vec<u8> =
            (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let blob = Blob::prepare(key.id_of(&noise), BlobKind::Data, &noise, 3);
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(100);
        let packed = Blob::prepare(key.id_of(&text), BlobKind::Data, &text, 3);
        assert_eq!(packed.compression, Compression::Zstd);
        assert!(packed.stored.len() < text.len());
        assert_eq!(
            decode(&packed.stored, packed.compression, packed.raw_len).as_deref(),
            Ok(&text[..])
        );
        if blob.compression == Compression::None {
            assert_eq!(blob.stored, noise);
        }
        assert_eq!(decode(&blob.stored, blob.compression, blob.raw_len).as_deref(), Ok(&noise[..]));
    }

    #[test]
    fn a_lying_length_is_refused() {
        let text = b"hello hello hello hello hello hello".repeat(10);
        let blob =
            Blob::prepare(ChunkKey::from_bytes([0; 32]).id_of(&text), BlobKind::Data, &text, 3);
        assert!(decode(&blob.stored, blob.compression, blob.raw_len - 1).is_err());
        assert!(decode(&blob.stored, blob.compression, blob.raw_len + 1).is_err());
    }
}
