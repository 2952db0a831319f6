//! Arbitrary bytes as a tree blob.
#![no_main]
use coldkeep::{ChunkId, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Tree::decode(ChunkId::from_bytes([0; 32]), data);
});
