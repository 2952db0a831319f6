//! Arbitrary bytes as a pack file: open, list entries, read every blob.
#![no_main]
use coldkeep_store::{Access, PackFile, PackId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.pack");
    std::fs::write(&path, data).expect("write");
    for access in [Access::Random, Access::Sequential] {
        if let Ok(pack) = PackFile::open(&path, PackId::from_bytes([0; 16]), access) {
            if let Ok(entries) = pack.entries() {
                for e in entries {
                    let _ = pack.read_blob(&e, None);
                }
            }
        }
    }
});
