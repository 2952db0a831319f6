//! Key slots: what unlocks an encrypted repository.
//!
//! The repository's random [`MasterKey`] is stored only wrapped — sealed under a key-encryption
//! key — in one or more *key slots*, each an object of the store (`keys/<id>.key`). A slot is
//! unlocked by a passphrase (through Argon2id, with the slot's own salt and cost) or by a key
//! file (any file of at least 32 bytes, hashed). Adding a slot needs the master key, so only
//! someone who can open the repository can add one; the last slot cannot be removed. Byte
//! layout in `docs/FORMAT.md`.

use coldkeep_store::backend::{Backend, ErrorKind, ObjectKind, ObjectName};
use coldkeep_store::crypto::{MasterKey, SealingKey};
use coldkeep_store::{random_bytes, StoreError};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// First 8 bytes of a key slot object.
pub const KEY_MAGIC: [u8; 8] = *b"CLDKKEY\0";
const SLOT_VERSION: u8 = 1;
/// A key file must hold at least this many bytes (it is the secret).
pub const MIN_KEY_FILE_LEN: usize = 32;

/// What unlocks an encrypted repository. Its bytes are wiped from memory when dropped, and
/// never shown by `Debug`.
#[derive(Clone)]
pub enum Secret {
    Passphrase(Zeroizing<String>),
    /// The contents of a key file.
    KeyFile(Zeroizing<Vec<u8>>),
}

impl Secret {
    pub fn passphrase(p: impl Into<String>) -> Self {
        Self::Passphrase(Zeroizing::new(p.into()))
    }

    pub fn key_file(bytes: Vec<u8>) -> Self {
        Self::KeyFile(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Secret::Passphrase(<secret>)"),
            Self::KeyFile(_) => f.write_str("Secret::KeyFile(<secret>)"),
        }
    }
}

/// Argon2id's cost for a passphrase slot: the memory (KiB), passes and lanes every guess of
/// the passphrase costs an attacker, and each unlock costs the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 4 lanes: RFC 9106's "second recommended option". The lanes are
    /// filled in parallel, so on this project's 2-core test machine an unlock takes about
    /// 0.075 s (0.17 s with one lane on pages of 4 KiB); an attacker's cost per guess is the
    /// same either way.
    fn default() -> Self {
        Self { memory_kib: 64 << 10, iterations: 3, parallelism: 4 }
    }
}

impl KdfParams {
    /// The cheapest Argon2id allows: for tests only, where a passphrase guards nothing.
    pub const INSECURE_FOR_TESTS: Self = Self { memory_kib: 8, iterations: 1, parallelism: 1 };

    fn derive(self, passphrase: &str, salt: &[u8; 16]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|e| KeyError::BadKdf(e.to_string()))?;
        let blocks = params.block_count();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        let done = match KdfMemory::new(blocks) {
            Some(mut memory) => argon.hash_password_into_with_memory(
                passphrase.as_bytes(),
                salt,
                &mut *out,
                memory.blocks(),
            ),
            None => argon.hash_password_into(passphrase.as_bytes(), salt, &mut *out),
        };
        done.map_err(|e| KeyError::BadKdf(e.to_string()))?;
        Ok(out)
    }
}

/// Argon2id's memory on huge pages where the kernel gives them.
///
/// Why: filling 64 MiB of fresh 4 KiB pages takes 16 384 page faults, about 0.045 s here, a
/// third of an unlock; 2 MiB pages take 32. The kernel's default (`madvise` mode) gives huge
/// pages only to a mapping that asks, so this is an anonymous mapping, aligned to 2 MiB, that
/// asks. A kernel that refuses gives ordinary pages and the same result.
struct KdfMemory {
    map: memmap2::MmapMut,
    offset: usize,
    len: usize,
}

impl KdfMemory {
    const HUGE_PAGE: usize = 2 << 20;

    /// `None` when the mapping cannot be made: the caller lets Argon2 allocate instead.
    fn new(blocks: usize) -> Option<Self> {
        let bytes = blocks.checked_mul(std::mem::size_of::<argon2::Block>())?;
        let mut map = memmap2::MmapMut::map_anon(bytes.checked_add(Self::HUGE_PAGE)?).ok()?;
        // Advice only changes the page size; without it the same bytes are computed.
        let _ = map.advise(memmap2::Advice::HugePage);
        let base = map.as_mut_ptr() as usize;
        let offset = base.next_multiple_of(Self::HUGE_PAGE) - base;
        Some(Self { map, offset, len: blocks })
    }

    fn blocks(&mut self) -> &mut [argon2::Block] {
        const _: () = assert!(std::mem::align_of::<argon2::Block>() <= KdfMemory::HUGE_PAGE);
        let start = self.map[self.offset..].as_mut_ptr();
        // SAFETY: the range lies inside the mapping (it was made `HUGE_PAGE` bytes longer than
        // `len` blocks, and `offset` is below `HUGE_PAGE`) and is borrowed mutably through
        // `self`, so nothing else aliases it; its start is 2 MiB-aligned, more than a block's
        // alignment; a block is an array of `u64`, valid for any bytes (the mapping starts
        // zeroed).
        #[allow(unsafe_code, clippy::cast_ptr_alignment)] // aligned to 2 MiB by `new`
        unsafe {
            std::slice::from_raw_parts_mut(start.cast::<argon2::Block>(), self.len)
        }
    }
}

/// How a slot is unlocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Unlock {
    Passphrase { salt: [u8; 16], kdf: KdfParams },
    KeyFile,
}

/// A key slot as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SlotRecord {
    id: [u8; 16],
    created_us: i64,
    label: String,
    unlock: Unlock,
    /// The master key, sealed under the slot's key-encryption key.
    wrapped: Vec<u8>,
}

/// What `key list` shows of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub created_us: i64,
    pub label: String,
    /// `passphrase` or `key file`.
    pub kind: &'static str,
}

impl SlotRecord {
    fn info(&self) -> KeyInfo {
        KeyInfo {
            id: hex(&self.id),
            created_us: self.created_us,
            label: self.label.clone(),
            kind: match self.unlock {
                Unlock::Passphrase { .. } => "passphrase",
                Unlock::KeyFile => "key file",
            },
        }
    }

    fn name(&self) -> ObjectName {
        ObjectName::new(ObjectKind::Key, &hex(&self.id)).expect("hex is a valid name")
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = KEY_MAGIC.to_vec();
        out.extend_from_slice(&coldkeep_catalog::record::encode(SLOT_VERSION, self));
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let body = bytes.strip_prefix(&KEY_MAGIC[..]).ok_or("bad magic")?;
        coldkeep_catalog::record::decode(SLOT_VERSION, body).map_err(|e| e.to_string())
    }

    /// The key-encryption key `secret` gives for this slot, if it is the slot's kind of secret.
    fn kek(&self, secret: &Secret) -> Result<Option<SealingKey>, KeyError> {
        Ok(match (&self.unlock, secret) {
            (Unlock::Passphrase { salt, kdf }, Secret::Passphrase(p)) => {
                Some(SealingKey::for_wrapping(&*kdf.derive(p, salt)?))
            }
            (Unlock::KeyFile, Secret::KeyFile(bytes)) => Some(SealingKey::for_wrapping(bytes)),
            _ => None,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    coldkeep_catalog::hex(bytes)
}

/// The associated data of a slot's wrapped key: it belongs to this repository and this slot.
fn aad(repo_id: &[u8; 16], slot: &[u8; 16]) -> Vec<u8> {
    [&b"CLDK key slot"[..], repo_id, slot].concat()
}

/// Errors of key slots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No slot opens with the secret given.
    #[error("wrong passphrase or key file: no key slot of this repository opens with it")]
    WrongKey,
    #[error("this repository is not encrypted: it has no keys")]
    NotEncrypted,
    #[error("no key slot {0}")]
    NotFound(String),
    #[error("the repository is open read-only: cannot change keys")]
    ReadOnly,
    #[error("key slot {0} is the last one: the repository could never be opened again without it")]
    LastSlot(String),
    #[error("a key file must hold at least {MIN_KEY_FILE_LEN} bytes, this one holds {0}")]
    KeyFileTooShort(usize),
    #[error("invalid passphrase cost: {0}")]
    BadKdf(String),
    #[error("key slot {id} is damaged: {reason}")]
    Corrupt { id: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key slots of a repository.
#[derive(Debug)]
pub struct KeySlots<'a> {
    pub(crate) store: &'a dyn Backend,
    pub(crate) repo_id: [u8; 16],
}

impl KeySlots<'_> {
    fn all(&self) -> Result<Vec<SlotRecord>, KeyError> {
        let mut slots = Vec::new();
        for info in self.store.list(ObjectKind::Key)? {
            let bytes = match self.store.get(&info.name) {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::NotFound => continue, // removed meanwhile
                Err(e) => return Err(e.into()),
            };
            let slot = SlotRecord::decode(&bytes)
                .map_err(|reason| KeyError::Corrupt { id: info.name.name().to_owned(), reason })?;
            slots.push(slot);
        }
        Ok(slots)
    }

    /// Adds a slot that `secret` unlocks, holding `master`.
    pub fn add(
        &self,
        master: &MasterKey,
        secret: &Secret,
        kdf: KdfParams,
        label: &str,
        now_us: i64,
    ) -> Result<KeyInfo, KeyError> {
        let id = random_bytes();
        let unlock = match secret {
            Secret::Passphrase(_) => Unlock::Passphrase { salt: random_bytes(), kdf },
            Secret::KeyFile(bytes) if bytes.len() < MIN_KEY_FILE_LEN => {
                return Err(KeyError::KeyFileTooShort(bytes.len()))
            }
            Secret::KeyFile(_) => Unlock::KeyFile,
        };
        let mut slot =
            SlotRecord { id, created_us: now_us, label: label.to_owned(), unlock, wrapped: vec![] };
        let kek = slot.kek(secret)?.expect("the slot was made for this secret");
        slot.wrapped = kek.seal(&aad(&self.repo_id, &id), master.as_bytes());
        self.store.put(&slot.name(), &slot.encode())?;
        Ok(slot.info())
    }

    /// The master key, from the first slot `secret` opens, and that slot's id.
    pub fn unlock(&self, secret: &Secret) -> Result<(MasterKey, String), KeyError> {
        for slot in self.all()? {
            let Some(kek) = slot.kek(secret)? else { continue };
            let Ok(bytes) = kek.open(&aad(&self.repo_id, &slot.id), &slot.wrapped) else {
                continue;
            };
            let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Corrupt {
                id: hex(&slot.id),
                reason: "the wrapped key is not 32 bytes".into(),
            })?;
            return Ok((MasterKey::from_bytes(bytes), hex(&slot.id)));
        }
        Err(KeyError::WrongKey)
    }

    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let mut keys: Vec<KeyInfo> = self.all()?.iter().map(SlotRecord::info).collect();
        keys.sort_by(|a, b| (a.created_us, &a.id).cmp(&(b.created_us, &b.id)));
        Ok(keys)
    }

    /// Removes slot `id`, unless it is the last.
    pub fn remove(&self, id: &str) -> Result<(), KeyError> {
        let slots = self.all()?;
        let slot = slots
            .iter()
            .find(|s| hex(&s.id) == id)
            .ok_or_else(|| KeyError::NotFound(id.to_owned()))?;
        if slots.len() == 1 {
            return Err(KeyError::LastSlot(id.to_owned()));
        }
        self.store.delete(&slot.name())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldkeep_store::backend::MemoryBackend;

    /// The derivation on its own mapping gives Argon2id's answer: the same bytes as the
    /// crate's own allocation, for one lane and for several, and for a memory that is not a
    /// whole number of huge pages.
    #[test]
    fn derivation_on_huge_pages_matches_argon2() {
        let salt = [9u8; 16];
        for kdf in [
            KdfParams { memory_kib: 3 << 10, iterations: 2, parallelism: 1 },
            KdfParams { memory_kib: (4 << 10) + 64, iterations: 1, parallelism: 4 },
        ] {
            let ours = kdf.derive("correct horse", &salt).expect("derive");
            let params =
                argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
                    .expect("params");
            let mut theirs = [0u8; 32];
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(b"correct horse", &salt, &mut theirs)
                .expect("argon2");
            assert_eq!(*ours, theirs, "{kdf:?}");
        }
    }

    #[test]
    fn slots_unlock_with_their_secret_only_and_the_last_stays() {
        let store = MemoryBackend::new();
        let slots = KeySlots { store: &store, repo_id: [4; 16] };
        let master = MasterKey::generate();
        let fast = KdfParams::INSECURE_FOR_TESTS;
        let pass = Secret::passphrase("correct horse");
        let first = slots.add(&master, &pass, fast, "alice", 1).expect("add");
        let (got, id) = slots.unlock(&pass).expect("unlock");
        assert_eq!((got.as_bytes(), id.as_str()), (master.as_bytes(), first.id.as_str()));
        assert!(matches!(slots.unlock(&Secret::passphrase("wrong")), Err(KeyError::WrongKey)));
        let file = Secret::key_file(vec![9; 64]);
        assert!(matches!(slots.unlock(&file), Err(KeyError::WrongKey)));
        assert!(matches!(
            slots.add(&master, &Secret::key_file(vec![1; 31]), fast, "short", 2),
            Err(KeyError::KeyFileTooShort(31))
        ));
        let second = slots.add(&master, &file, fast, "backup key", 2).expect("add file");
        assert_eq!(slots.unlock(&file).expect("file").0.as_bytes(), master.as_bytes());
        assert_eq!(
            slots.list().expect("list").iter().map(|k| k.kind).collect::<Vec<_>>(),
            ["passphrase", "key file"]
        );
        slots.remove(&first.id).expect("remove");
        assert!(matches!(slots.unlock(&pass), Err(KeyError::WrongKey)), "removed");
        assert!(matches!(slots.remove(&second.id), Err(KeyError::LastSlot(_))));
        assert!(matches!(slots.remove("00"), Err(KeyError::NotFound(_))));
        // A slot of another repository does not open here, even with the right passphrase.
        let other = KeySlots { store: &store, repo_id: [5; 16] };
        assert!(matches!(other.unlock(&file), Err(KeyError::WrongKey)));
        assert_eq!(format!("{pass:?}"), "Secret::Passphrase(<secret>)");
    }

    #[test]
    fn a_damaged_slot_is_an_error_not_a_panic() {
        let store = MemoryBackend::new();
        let slots = KeySlots { store: &store, repo_id: [4; 16] };
        let info = slots
            .add(
                &MasterKey::generate(),
                &Secret::key_file(vec![3; 40]),
                KdfParams::INSECURE_FOR_TESTS,
                "k",
                1,
            )
            .expect("add");
        let name = ObjectName::new(ObjectKind::Key, &info.id).expect("name");
        let bytes = store.get(&name).expect("get");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            store.delete(&name).expect("delete");
            store.put(&name, &bad).expect("put");
            match slots.unlock(&Secret::key_file(vec![3; 40])) {
                Err(KeyError::Corrupt { .. } | KeyError::WrongKey) => {}
                other => panic!("flip at {i}: {other:?}"),
            }
        }
    }
}
