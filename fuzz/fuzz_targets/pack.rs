//! A real pack, then damaged: the first half of the input is cut into blobs that a
//! `PackWriter` writes into a valid pack (magic, frames, trailer, CRCs; sealed under a key when
//! the first byte is odd); the second half is a list of (offset, xor) changes made to its
//! bytes. Then the pack is opened, its entries listed and every blob read, checked against its
//! id. Nothing may panic. (Raw bytes as a pack never get past the magic: this way the trailer,
//! frame, seal and blob decoders are reached.)
#![no_main]
use coldkeep_store::backend::{Access, Backend, MemoryBackend, ObjectName};
use coldkeep_store::crypto::MasterKey;
use coldkeep_store::{BlobKind, ChunkKey, PackFile, PackWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content, damage) = data.split_at(data.len() / 2);
    let store = MemoryBackend::new();
    let key = ChunkKey::from_bytes([7; 32]);
    let object_key = MasterKey::from_bytes([8; 32]).object_key();
    let seal = (content.first().is_some_and(|b| b % 2 == 1)).then_some(&object_key);
    let mut writer = PackWriter::create(&store, 1, seal).expect("writer");
    // Blob sizes from the content itself, so both grouped small blobs and frames of their own
    // occur; every third blob is a tree.
    let mut rest = content;
    let mut i = 0;
    while !rest.is_empty() {
        let len = (usize::from(rest[0]) * 613 + 1).min(rest.len());
        let (blob, tail) = rest.split_at(len);
        let kind = if i % 3 == 0 { BlobKind::Tree } else { BlobKind::Data };
        let _ = writer.add(key.id_of(blob), kind, blob);
        rest = tail;
        i += 1;
    }
    let Ok(sealed) = writer.finish() else { return };
    let name = ObjectName::pack(sealed.id);
    let mut bytes = store.get(&name).expect("read the pack");
    for change in damage.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([change[0], change[1]])) % bytes.len();
        bytes[at] ^= change[2];
    }
    store.delete(&name).expect("delete");
    store.put(&name, &bytes).expect("write the damaged pack");
    for access in [Access::Random, Access::Sequential] {
        if let Ok(pack) = PackFile::open(&store, sealed.id, access, seal) {
            if let Ok(entries) = pack.entries() {
                for e in entries {
                    let _ = pack.read_blob(&e, Some(&key));
                }
            }
        }
    }
});
