//! Identities: chunk ids (keyed BLAKE3), the chunk key, pack ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A hex string that is not a valid id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid {what}: {input:?}")]
pub struct ParseIdError {
    what: &'static str,
    input: String,
}

fn parse_hex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], ParseIdError> {
    let err = || ParseIdError { what, input: s.to_owned() };
    if s.len() != 2 * N || !s.is_ascii() {
        return Err(err());
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| err())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; $len]);

        impl $name {
            /// The id's bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
            /// Builds an id from its bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
            /// Builds an id from a slice of exactly the right length.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map(Self)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, &self.0[..8])?;
                write!(f, "…)")
            }
        }
        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex($what, s).map(Self)
            }
        }
    };
}

hex_id!(
    /// The keyed BLAKE3 hash of a chunk's plaintext: its identity in the repository.
    ChunkId, 32, "chunk id"
);
hex_id!(
    /// A pack file's identity: 128 random bits, also its file name.
    PackId, 16, "pack id"
);

impl PackId {
    /// A fresh random pack id.
    pub fn random() -> Self {
        Self(random_bytes())
    }
}

/// `N` bytes from the OS random source (ids, keys, nonces).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    bytes
}

/// The secret key under which chunk ids are computed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkKey([u8; 32]);

impl ChunkKey {
    /// A new random key, made at `init`.
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    /// A key from known bytes (tests and benchmarks).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id of `data` under this key.
    pub fn id_of(&self, data: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.0, data).as_bytes())
    }
}

impl fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChunkKey(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex() {
        let key = ChunkKey::from_bytes([7; 32]);
        let id = key.id_of(b"hello");
        assert_eq!(id.to_string().parse::<ChunkId>(), Ok(id));
        let pack = PackId::random();
        assert_eq!(pack.to_string().parse::<PackId>(), Ok(pack));
        assert!("zz".parse::<PackId>().is_err());
        assert!("é".repeat(16).parse::<PackId>().is_err());
    }

    #[test]
    fn the_key_changes_the_id() {
        let a = ChunkKey::from_bytes([1; 32]).id_of(b"same data");
        let b = ChunkKey::from_bytes([2; 32]).id_of(b"same data");
        assert_ne!(a, b);
        assert_eq!(a, ChunkKey::from_bytes([1; 32]).id_of(b"same data"));
    }
}
