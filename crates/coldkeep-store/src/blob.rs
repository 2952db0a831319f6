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

/// Empties `out` and makes room for `capacity` bytes in it: a new allocation when it is too
/// small, since growing it would copy the old bytes over first.
fn empty_with_capacity(out: &mut Vec<u8>, capacity: usize) {
    if out.capacity() < capacity {
        *out = Vec::with_capacity(capacity);
    }
    out.clear();
}

/// Decompresses `stored` into `out` (cleared first), which holds at most `capacity` bytes after.
fn decompress_into(stored: &[u8], capacity: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    empty_with_capacity(out, capacity);
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut().expect("just set").decompress_to_buffer(stored, out).map(drop)
    })
}

/// Turns a frame's stored bytes back into plaintext in `out` (replacing what it held),
/// refusing anything but exactly `raw_len` bytes. A caller that decodes many frames passes the
/// same buffer each time: no allocation, and no fresh pages to fault in, per frame.
pub(crate) fn decode_into(
    stored: &[u8],
    compression: Compression,
    raw_len: u32,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match compression {
        Compression::None => {
            empty_with_capacity(out, stored.len());
            out.extend_from_slice(stored);
        }
        Compression::Zstd => {
            decompress_into(stored, raw_len as usize, out).map_err(|e| format!("zstd: {e}"))?;
        }
    }
    if out.len() == raw_len as usize {
        Ok(())
    } else {
        Err(format!("plaintext is {} bytes, index says {raw_len}", out.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`decode_into`] a buffer that holds stale bytes, as a reused one does.
    fn decode(stored: &[u8], compression: Compression, raw_len: u32) -> Result<Vec<u8>, String> {
        let mut out = b"stale".repeat(1000);
        decode_into(stored, compression, raw_len, &mut out).map(|()| out)
    }

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
