//! Versioned, checksummed record encoding, shared by catalog values and tree blobs.
//!
//! ```text
//! version u8 | bincode(value) | crc32(version ‖ body) u32 LE
//! ```
//! Decoding is total: any byte string yields either the value or [`RecordError`], never a panic,
//! and bincode's allocations are bounded by the input length (`with_limit`), so a corrupt length
//! prefix cannot make it reserve gigabytes.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why bytes could not be decoded as a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    #[error("record too short ({0} bytes)")]
    TooShort(usize),
    #[error("record checksum mismatch")]
    Checksum,
    #[error("unsupported record version {found} (this build reads {supported})")]
    Version { found: u8, supported: u8 },
    #[error("record body does not decode: {0}")]
    Body(String),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

/// Encodes `value` as a record of format `version`.
///
/// # Panics
/// Only if serde fails on an in-memory value, which the types used here cannot do.
pub fn encode<T: Serialize>(version: u8, value: &T) -> Vec<u8> {
    let body = options().serialize(value).expect("in-memory serialization cannot fail");
    seal(version, &body)
}

/// A record of format `version` around `body` as it is: the version byte in front, the
/// checksum behind. [`encode`] seals a value's bincode; fuzzers and tests seal arbitrary bytes,
/// so that what they feed reaches the body decoder instead of stopping at the checksum.
pub fn seal(version: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(version);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a record written by [`encode`] with the same `version`.
pub fn decode<T: DeserializeOwned>(version: u8, bytes: &[u8]) -> Result<T, RecordError> {
    let Some((head, crc)) = bytes.split_last_chunk::<4>() else {
        return Err(RecordError::TooShort(bytes.len()));
    };
    let Some((&found, body)) = head.split_first() else {
        return Err(RecordError::TooShort(bytes.len()));
    };
    if crc32fast::hash(head) != u32::from_le_bytes(*crc) {
        return Err(RecordError::Checksum);
    }
    if found != version {
        return Err(RecordError::Version { found, supported: version });
    }
    options()
        .with_limit(body.len() as u64)
        .deserialize(body)
        .map_err(|e| RecordError::Body(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: Vec<u8>,
        items: Vec<u64>,
        flag: Option<bool>,
    }

    #[test]
    fn round_trip_and_every_flipped_bit_is_caught() {
        let value =
            Sample { name: b"x\n\xff".to_vec(), items: vec![1, 2, u64::MAX], flag: Some(true) };
        let bytes = encode(3, &value);
        assert_eq!(decode::<Sample>(3, &bytes), Ok(value));
        assert!(matches!(
            decode::<Sample>(4, &bytes),
            Err(RecordError::Version { found: 3, supported: 4 })
        ));
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode::<Sample>(3, &bad).is_err(), "flip of bit {i} not caught");
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<Sample>(1, &bytes);
            // Also with a valid checksum, so that the body decoder sees the garbage.
            let mut framed = vec![1u8];
            framed.extend_from_slice(&bytes);
            let crc = crc32fast::hash(&framed);
            framed.extend_from_slice(&crc.to_le_bytes());
            let _ = decode::<Sample>(1, &framed);
        }
    }
}
