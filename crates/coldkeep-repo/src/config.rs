//! The repository config file: the parameters fixed at `init` — chunking, compression, pack size
//! and whether the repository is encrypted (the chunk key of one that is not). Byte layout in
//! `docs/FORMAT.md`:
//!
//! ```text
//! magic "CLDKREPO" | version u32 | body_len u32 | body (bincode) | crc32(all before) u32
//! ```
//! It is written last at `init` (its presence marks a complete repository) and never changes.

use std::path::Path;

use coldkeep_chunker::{CdcParams, ChunkerConfig};
use coldkeep_store::ChunkKey;
use serde::{Deserialize, Serialize};

use crate::error::OpenError;

/// First 8 bytes of the config file.
pub const CONFIG_MAGIC: [u8; 8] = *b"CLDKREPO";
/// The repository format version this build writes. It reads version 3 too (a repository from
/// before encryption: plaintext, its chunk key in the config).
pub const REPO_VERSION: u32 = 4;

/// How files are cut into chunks (a serializable mirror of [`ChunkerConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkingSpec {
    Cdc { min: u32, avg: u32, max: u32 },
    Fixed { size: u32 },
}

impl From<ChunkingSpec> for ChunkerConfig {
    fn from(s: ChunkingSpec) -> Self {
        match s {
            ChunkingSpec::Cdc { min, avg, max } => ChunkerConfig::Cdc(CdcParams { min, avg, max }),
            ChunkingSpec::Fixed { size } => ChunkerConfig::Fixed(size),
        }
    }
}

impl From<ChunkerConfig> for ChunkingSpec {
    fn from(c: ChunkerConfig) -> Self {
        match c {
            ChunkerConfig::Cdc(p) => ChunkingSpec::Cdc { min: p.min, avg: p.avg, max: p.max },
            ChunkerConfig::Fixed(size) => ChunkingSpec::Fixed { size },
        }
    }
}

/// How a repository's keys are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Keys {
    /// Encrypted: the key slots (`keys/`) hold the master key, from which the chunk-id key
    /// and the object key are derived. No secret is in the config.
    Sealed,
    /// Not encrypted (`init --no-encryption`): chunk ids are computed under this key.
    Plain(ChunkKey),
}

/// Parameters fixed when a repository is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub repo_id: [u8; 16],
    pub created_us: i64,
    pub chunking: ChunkingSpec,
    pub keys: Keys,
    /// zstd level for new blobs.
    pub zstd_level: i32,
    /// A pack is sealed once it reaches this many bytes.
    pub pack_target_size: u64,
}

/// The config of format version 3, read into [`RepoConfig`] as a plain repository.
#[derive(Deserialize)]
struct RepoConfigV3 {
    repo_id: [u8; 16],
    created_us: i64,
    chunking: ChunkingSpec,
    chunk_key: ChunkKey,
    zstd_level: i32,
    pack_target_size: u64,
}

impl From<RepoConfigV3> for RepoConfig {
    fn from(v3: RepoConfigV3) -> Self {
        Self {
            repo_id: v3.repo_id,
            created_us: v3.created_us,
            chunking: v3.chunking,
            keys: Keys::Plain(v3.chunk_key),
            zstd_level: v3.zstd_level,
            pack_target_size: v3.pack_target_size,
        }
    }
}

impl RepoConfig {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let body = coldkeep_catalog::record::encode(1, self);
        let mut out = Vec::with_capacity(body.len() + 20);
        out.extend_from_slice(&CONFIG_MAGIC);
        out.extend_from_slice(&REPO_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<Self, OpenError> {
        let corrupt = |reason: &str| OpenError::CorruptConfig {
            path: path.to_owned(),
            reason: reason.into(),
        };
        let (head, crc) = bytes.split_last_chunk::<4>().ok_or_else(|| corrupt("too short"))?;
        let (magic, rest) = head.split_first_chunk::<8>().ok_or_else(|| corrupt("too short"))?;
        if *magic != CONFIG_MAGIC {
            return Err(corrupt("bad magic"));
        }
        if crc32fast::hash(head) != u32::from_le_bytes(*crc) {
            return Err(corrupt("checksum mismatch"));
        }
        let (version, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("too short"))?;
        let version = u32::from_le_bytes(*version);
        if version != REPO_VERSION && version != 3 {
            return Err(OpenError::UnsupportedVersion(version));
        }
        let (len, body) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("too short"))?;
        if u32::from_le_bytes(*len) as usize != body.len() {
            return Err(corrupt("body length mismatch"));
        }
        let decode = |e: coldkeep_catalog::RecordError| corrupt(&e.to_string());
        if version == 3 {
            return coldkeep_catalog::record::decode::<RepoConfigV3>(1, body)
                .map(Into::into)
                .map_err(decode);
        }
        coldkeep_catalog::record::decode(1, body).map_err(decode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RepoConfig {
        RepoConfig {
            repo_id: [5; 16],
            created_us: 42,
            chunking: ChunkerConfig::default().into(),
            keys: Keys::Plain(ChunkKey::from_bytes([8; 32])),
            zstd_level: 3,
            pack_target_size: 16 << 20,
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let path = Path::new("config");
        let bytes = sample().encode();
        assert_eq!(RepoConfig::decode(&bytes, path).expect("decode"), sample());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(RepoConfig::decode(&bad, path).is_err(), "flip at {i} not caught");
        }
        assert!(RepoConfig::decode(&bytes[..bytes.len() - 1], path).is_err());
        let sealed = RepoConfig { keys: Keys::Sealed, ..sample() };
        assert_eq!(RepoConfig::decode(&sealed.encode(), path).expect("decode"), sealed);
    }
}
