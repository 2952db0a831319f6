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

/// Ignored: it passes alone in 2 s, but hung (over 4 minutes, and 20 on SeaweedFS) inside a
/// full `.ci/run`, so a fault leaves something waiting. Run it with
/// `cargo nextest run -p coldkeep --test remote --run-ignored all` while finding out what.
#[test]
#[ignore = "hangs intermittently after a fault: see the test's comment"]
fn a_remote_repository_survives_a_fault_at_every_store_write_of_a_backup() {
    let scratch = tempfile::tempdir().expect("tempdir");
    coldkeep_testing::remote::remote_faults_suite(
        &(Arc::new(MemoryBackend::new()) as Arc<dyn coldkeep::backend::Backend>),
        "memory:faults",
        scratch.path(),
    );
}
