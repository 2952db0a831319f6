//! Frames: the unit of compression in a pack — one or more blobs' plaintext, compressed with zstd
//! or kept raw — and turning them back into plaintext.

use std::borrow::Cow;
use std::cell::RefCell;

use serde::{Deserialize, Serialize};

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

/// `raw` as a frame stores it: one zstd frame at `level`, or the raw bytes when zstd does not make
/// them smaller.
pub fn encode_frame(raw: &[u8], level: i32) -> (Compression, Cow<'_, [u8]>) {
    match compress(raw, level) {
        Ok(z) if z.len() < raw.len() => (Compression::Zstd, Cow::Owned(z)),
        _ => (Compression::None, Cow::Borrowed(raw)),
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

/// Turns a frame's stored bytes back into plaintext, refusing anything but exactly `raw_len`
/// bytes.
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

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let (compression, stored) = encode_frame(&noise, 3);
        assert_eq!(compression, Compression::None);
        assert_eq!(&stored[..], &noise[..]);
        assert_eq!(decode(&stored, compression, 10_000).as_deref(), Ok(&noise[..]));
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(100);
        let (compression, stored) = encode_frame(&text, 3);
        assert_eq!(compression, Compression::Zstd);
        assert!(stored.len() < text.len());
        assert_eq!(decode(&stored, compression, 4200).as_deref(), Ok(&text[..]));
    }

    #[test]
    fn a_lying_length_is_refused() {
        let text = b"hello hello hello hello hello hello".repeat(10);
        let (compression, stored) = encode_frame(&text, 3);
        assert_eq!(compression, Compression::Zstd);
        assert!(decode(&stored, compression, 349).is_err());
        assert!(decode(&stored, compression, 351).is_err());
        assert!(decode(&stored, compression, 350).is_ok());
    }
}
