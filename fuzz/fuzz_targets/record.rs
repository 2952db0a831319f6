//! Arbitrary bytes as the body of each kind of catalog record. The input is sealed in a valid
//! envelope (version byte, CRC) first: raw bytes almost never carry a valid checksum, so the
//! bincode decoders behind it would never run.
#![no_main]
use coldkeep::model::{
    AuditEntry, ClockState, Policy, ProtectionGroup, Recovery, Run, SourceRegistration,
};
use coldkeep_catalog::{record, ChunkLocation, PackRecord, SnapshotRecord};
use libfuzzer_sys::fuzz_target;

fn each_version<T: serde::de::DeserializeOwned>(body: &[u8]) {
    for version in 1..=2 {
        let _ = record::decode::<T>(version, &record::seal(version, body));
    }
}

fuzz_target!(|data: &[u8]| {
    each_version::<SnapshotRecord>(data);
    each_version::<ChunkLocation>(data);
    each_version::<PackRecord>(data);
    each_version::<Policy>(data);
    each_version::<ProtectionGroup>(data);
    each_version::<Run>(data);
    each_version::<AuditEntry>(data);
    each_version::<Recovery>(data);
    each_version::<SourceRegistration>(data);
    each_version::<ClockState>(data);
    each_version::<u64>(data);
});
