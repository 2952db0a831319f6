//! Encryption at rest: the repository's master key, the keys derived from it, and the sealed
//! envelope every encrypted byte string is stored in.
//!
//! ```text
//! sealed = nonce[24] | XChaCha20-Poly1305(key, nonce, aad, plaintext) | tag[16]
//! ```
//! XChaCha20-Poly1305 takes 192-bit nonces, so they are simply random: no counter to keep
//! across processes or machines, and no practical chance of a repeat however many objects a
//! repository holds. The associated data binds a sealed string to where it belongs (a frame to
//! its pack, a key slot to its repository): moved elsewhere, it does not open.
//!
//! The [`MasterKey`] is random and never stored in the clear: key slots wrap it. Everything
//! else is derived from it with BLAKE3's key derivation, each under its own context string, so
//! that no two uses share a key: the chunk-id key ([`MasterKey::chunk_key`]) and the object key
//! ([`MasterKey::object_key`]).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ChunkKey;

/// Bytes a sealed string has on top of its plaintext: the nonce and the tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

const CHUNK_ID_CONTEXT: &str = "coldkeep 2026-12-02 chunk id key";
const OBJECT_CONTEXT: &str = "coldkeep 2026-12-02 object encryption key";
const WRAP_CONTEXT: &str = "coldkeep 2026-12-02 key slot wrapping key";

/// A sealed string did not open: the key is wrong, or the bytes (or where they were found)
/// are not what was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed: wrong key, or the bytes were changed")]
pub struct Unauthentic;

/// The repository's random master key (32 bytes). Wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// A new random key, made at `init`.
    pub fn generate() -> Self {
        Self(crate::id::random_bytes())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key chunk ids are computed under.
    pub fn chunk_key(&self) -> ChunkKey {
        ChunkKey::from_bytes(blake3::derive_key(CHUNK_ID_CONTEXT, &self.0))
    }

    /// The key every stored object is sealed under.
    pub fn object_key(&self) -> SealingKey {
        SealingKey::new(&blake3::derive_key(OBJECT_CONTEXT, &self.0))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<secret>)")
    }
}

/// A key that seals and opens byte strings (see the module documentation).
#[derive(Clone)]
pub struct SealingKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<secret>)")
    }
}

impl SealingKey {
    fn new(key: &[u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    /// The key that wraps a master key in a key slot, from the slot's key-encryption secret
    /// (a passphrase's Argon2id output, or a key file's bytes).
    pub fn for_wrapping(secret: &[u8]) -> Self {
        let mut derived = blake3::derive_key(WRAP_CONTEXT, secret);
        let key = Self::new(&derived);
        derived.zeroize();
        key
    }

    /// Appends `plain`, sealed with associated data `aad`, to `out`.
    pub fn seal_into(&self, aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        let nonce: [u8; NONCE_LEN] = crate::id::random_bytes();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("encryption of an in-memory buffer cannot fail");
        out.reserve(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
    }

    /// `plain` sealed with associated data `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
        self.seal_into(aad, plain, &mut out);
        out
    }

    /// The plaintext of a sealed string, if it was sealed under this key with `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unauthentic> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(Unauthentic);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .map_err(|_| Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_strings_open_only_with_their_key_and_place() {
        let master = MasterKey::generate();
        let key = master.object_key();
        let sealed = key.seal(b"pack 1", b"secret bytes");
        assert_eq!(sealed.len(), 12 + SEAL_OVERHEAD);
        assert_eq!(key.open(b"pack 1", &sealed).expect("opens"), b"secret bytes");
        assert_ne!(key.seal(b"pack 1", b"secret bytes"), sealed, "a fresh nonce each time");
        assert_eq!(key.open(b"pack 2", &sealed), Err(Unauthentic), "moved elsewhere");
        assert_eq!(MasterKey::generate().object_key().open(b"pack 1", &sealed), Err(Unauthentic));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(key.open(b"pack 1", &bad), Err(Unauthentic), "flip at {i}");
        }
        for len in 0..SEAL_OVERHEAD {
            assert_eq!(key.open(b"pack 1", &sealed[..len]), Err(Unauthentic));
        }
        assert_eq!(key.open(b"", &key.seal(b"", b"")).expect("empty"), b"");
    }

    #[test]
    fn derived_keys_differ_from_each_other_and_between_repositories() {
        let a = MasterKey::from_bytes([1; 32]);
        let b = MasterKey::from_bytes([2; 32]);
        assert_ne!(a.chunk_key().id_of(b"x"), b.chunk_key().id_of(b"x"));
        assert_eq!(
            a.chunk_key().id_of(b"x"),
            MasterKey::from_bytes([1; 32]).chunk_key().id_of(b"x")
        );
        // The chunk-id key is not the object key: a sealed string does not open under a key
        // made from the chunk-id key's bytes.
        let sealed = a.object_key().seal(b"", b"x");
        assert!(SealingKey::for_wrapping(a.as_bytes()).open(b"", &sealed).is_err());
        assert_eq!(format!("{a:?}"), "MasterKey(<secret>)");
    }
}
