//! A whole repository in a bucket of the real S3 server (`scripts/s3-server.sh`): the remote
//! repository suite (`coldkeep_testing::remote`) — two machines' caches, incremental backups,
//! a conflict between writers, a collection, the cache deleted and rebuilt from the bucket
//! alone, restores byte-exact, `check --read-data`, a flipped byte — and the remote faults
//! suite, with a fault at every store write of a backup. Skips loudly without a
//! server, and fails in CI.

use std::sync::Arc;

use coldkeep_store::backend::Backend;
use coldkeep_store::PackId;
use coldkeep_store_s3::{S3Backend, S3Options};

fn fresh_url() -> Option<String> {
    let Ok(bucket) = std::env::var("COLDKEEP_TEST_S3") else {
        coldkeep_testing::skip(
            "no S3 server: COLDKEEP_TEST_S3 is not set (scripts/test.sh starts one)",
        );
        return None;
    };
    Some(format!("{}/repo-{}", bucket.trim_end_matches('/'), PackId::random()))
}

#[test]
fn a_repository_in_a_bucket_passes_the_remote_repository_suite() {
    let Some(url) = fresh_url() else { return };
    let store: Arc<dyn Backend> =
        Arc::new(S3Backend::from_env(&url, S3Options::default()).expect("an S3 client"));
    let scratch = tempfile::tempdir().expect("tempdir");
    coldkeep_testing::remote::remote_repository_suite(&store, &url, scratch.path());
}

/// The fault-injecting decorator around the bucket's store: a backup refused, or cut off after
/// a PUT that reached the bucket, at each of its store writes, loses nothing.
#[test]
fn a_repository_in_a_bucket_survives_a_fault_at_every_store_write_of_a_backup() {
    let Some(url) = fresh_url() else { return };
    let store: Arc<dyn Backend> =
        Arc::new(S3Backend::from_env(&url, S3Options::default()).expect("an S3 client"));
    let scratch = tempfile::tempdir().expect("tempdir");
    coldkeep_testing::remote::remote_faults_suite(&store, &url, scratch.path());
}

/// The bucket with Object Lock: DataLocks and legal holds are the bucket's too.
#[test]
fn a_bucket_with_object_lock_passes_the_store_lock_suite() {
    if fresh_url().is_none() {
        return;
    }
    coldkeep_testing::store_lock::store_lock_suite(&|| {
        let url = fresh_url().expect("checked above");
        Arc::new(S3Backend::from_env(&url, S3Options::default()).expect("an S3 client"))
    });
}

/// The bucket without Object Lock: the store says it cannot lock, and coldkeep's rules alone
/// keep a Compliance run.
#[test]
fn a_bucket_without_object_lock_leaves_the_locks_to_coldkeep() {
    let Ok(bucket) = std::env::var("COLDKEEP_TEST_S3_NOLOCK") else {
        coldkeep_testing::skip(
            "no S3 bucket without Object Lock: COLDKEEP_TEST_S3_NOLOCK is not set \
             (scripts/test.sh starts the server that has one)",
        );
        return;
    };
    let url = format!("{}/repo-{}", bucket.trim_end_matches('/'), PackId::random());
    let store: Arc<dyn Backend> =
        Arc::new(S3Backend::from_env(&url, S3Options::default()).expect("an S3 client"));
    coldkeep_testing::store_lock::compliance_run_without_a_store_lock(&store);
}
