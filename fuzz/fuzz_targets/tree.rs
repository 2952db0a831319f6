//! Arbitrary bytes as the body of a tree blob, sealed in a valid envelope first (raw bytes
//! almost never carry a valid checksum, so the tree decoder would never run), then decoded
//! and, when that succeeds, encoded and decoded again: the round trip must give the same tree.
#![no_main]
use coldkeep::{ChunkId, Tree};
use coldkeep_catalog::record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = ChunkId::from_bytes([0; 32]);
    if let Ok(tree) = Tree::decode(id, &record::seal(1, data)) {
        let again = Tree::decode(id, &tree.encode()).expect("an encoded tree decodes");
        assert_eq!(again, tree, "a decoded tree survives a round trip");
    }
});
