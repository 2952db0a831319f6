//! Arbitrary bytes as each kind of catalog record.
#![no_main]
use coldkeep_catalog::{record, ChunkLocation, PackRecord, SnapshotRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = record::decode::<SnapshotRecord>(1, data);
    let _ = record::decode::<ChunkLocation>(1, data);
    let _ = record::decode::<PackRecord>(1, data);
    let _ = record::decode::<u64>(1, data);
});
