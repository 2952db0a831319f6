//! A repository in a store of its own with its catalog as a local cache (`Engine::open_remote`),
//! here on an in-memory store: the suite the S3 store's tests run against a real server too.

use std::sync::Arc;

use coldkeep::backend::MemoryBackend;

#[test]
fn a_remote_repository_is_shared_by_two_caches_and_survives_losing_one() {
    let scratch = tempfile::tempdir().expect("tempdir");
    coldkeep_testing::remote::remote_repository_suite(
        &(Arc::new(MemoryBackend::new()) as Arc<dyn coldkeep::backend::Backend>),
        "memory:remote",
        scratch.path(),
    );
}

/// Faults at every store write of a backup (it once hung here: a sealer that failed left its
/// queue open and the workers waiting on it).
#[test]
fn a_remote_repository_survives_a_fault_at_every_store_write_of_a_backup() {
    let scratch = tempfile::tempdir().expect("tempdir");
    coldkeep_testing::remote::remote_faults_suite(
        &(Arc::new(MemoryBackend::new()) as Arc<dyn coldkeep::backend::Backend>),
        "memory:faults",
        scratch.path(),
    );
}
