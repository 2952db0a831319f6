//! A real pack, then damaged: the first half of the input is cut into blobs that a
//! `PackWriter` seals into a valid pack (magic, frames, trailer, CRCs); the second half is a
//! list of (offset, xor) changes made to the sealed bytes. Then the pack is opened, its entries
//! listed and every blob read, checked against its id. Nothing may panic. (Raw bytes as a pack
//! never get past the magic: this way the trailer, frame and blob decoders are reached.)
#![no_main]
use coldkeep_store::{Access, BlobKind, ChunkKey, PackDir, PackFile, PackWriter};
use libfuzzer_sys::fuzz_target;

/// One pack directory for the whole run, on tmpfs where there is one (sealing fsyncs).
fn pack_dir() -> &'static PackDir {
    static DIR: std::sync::OnceLock<(tempfile::TempDir, PackDir)> = std::sync::OnceLock::new();
    &DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let tmp = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
        let tmp = tmp.expect("tempdir");
        let dir = PackDir::create(tmp.path()).expect("pack dir");
        (tmp, dir)
    })
    .1
}

/// Deletes the run's pack however the run ends.
struct Remove(std::path::PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fuzz_target!(|data: &[u8]| {
    let (content, damage) = data.split_at(data.len() / 2);
    let dir = pack_dir();
    let key = ChunkKey::from_bytes([7; 32]);
    let mut writer = PackWriter::create(dir, 1).expect("writer");
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
    let path = dir.path_of(sealed.id);
    let _remove = Remove(path.clone());
    let mut bytes = std::fs::read(&path).expect("read sealed pack");
    for change in damage.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([change[0], change[1]])) % bytes.len();
        bytes[at] ^= change[2];
    }
    std::fs::write(&path, &bytes).expect("write damaged pack");
    for access in [Access::Random, Access::Sequential] {
        if let Ok(pack) = PackFile::open(&path, sealed.id, access) {
            if let Ok(entries) = pack.entries() {
                for e in entries {
                    let _ = pack.read_blob(&e, Some(&key));
                }
            }
        }
    }
});
