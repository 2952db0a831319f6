//! The store conformance suite, and the S3 store's own cases, against a real S3 server.
//!
//! The server is the one `scripts/test.sh` starts (SeaweedFS, `scripts/s3-server.sh`): it
//! exports `COLDKEEP_TEST_S3` (a bucket's `s3://` address) with the endpoint and credentials
//! in the usual `AWS_*` variables. Without it these tests skip loudly, and fail in CI.

use coldkeep_store::backend::{conformance, Access, Backend, ErrorKind, ObjectKind, ObjectName};
use coldkeep_store::PackId;
use coldkeep_store_s3::{S3Backend, S3Options};

/// A fresh prefix of the test bucket, or `None` (after a loud skip) without a server.
fn fresh_url() -> Option<String> {
    let Ok(bucket) = std::env::var("COLDKEEP_TEST_S3") else {
        coldkeep_testing::skip(
            "no S3 server: COLDKEEP_TEST_S3 is not set (scripts/test.sh starts one)",
        );
        return None;
    };
    let id = PackId::random();
    Some(format!("{}/t-{id}", bucket.trim_end_matches('/')))
}

fn backend(url: &str, options: S3Options) -> S3Backend {
    S3Backend::from_env(url, options).expect("an S3 client")
}

#[test]
fn passes_the_conformance_suite() {
    if fresh_url().is_none() {
        return;
    }
    conformance::run_all(&|| {
        let url = fresh_url().expect("checked above");
        (Box::new(backend(&url, S3Options::default())), Box::new(()))
    });
}

/// With a small multipart threshold the suite runs again: its large object goes up in
/// parts, and create-only holds for a name written in parts.
#[test]
fn objects_in_parts_pass_the_suite_too() {
    if fresh_url().is_none() {
        return;
    }
    let parts = S3Options {
        multipart_threshold: 5 << 20,
        part_size: 5 << 20,
        parts_in_flight: 2,
        ..S3Options::default()
    };
    conformance::run_all(&|| {
        let url = fresh_url().expect("checked above");
        (Box::new(backend(&url, parts.clone())), Box::new(()))
    });
    let b = backend(&fresh_url().expect("checked above"), parts);
    let name = ObjectName::pack(PackId::random());
    let big: Vec<u8> = (0..(12u32 << 20)).map(|i| (i % 251) as u8).collect();
    b.put(&name, &big).expect("a multipart object");
    assert_eq!(b.stat(&name).expect("stat").len, big.len() as u64);
    let again = b.put(&name, &big[..6 << 20]).expect_err("create-only in parts");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");
    let r = b.open(&name, Access::Random).expect("open");
    assert_eq!(&*r.read_at(7 << 20, 1000).expect("range"), &big[7 << 20..(7 << 20) + 1000]);
}

/// A server that does not answer is a failure that may pass, never a missing object.
#[test]
fn an_unreachable_server_is_transient() {
    // The credentials of the test server's environment; only the endpoint is wrong.
    if fresh_url().is_none() {
        return;
    }
    let options = S3Options {
        // Port 9 (discard) on the loopback: nothing listens.
        endpoint: Some("http://127.0.0.1:9".into()),
        max_retries: 1,
        retry_timeout: std::time::Duration::from_secs(2),
        ..S3Options::default()
    };
    let b = backend("s3://nobucket/x", options);
    let name = ObjectName::new(ObjectKind::Key, "ab").expect("name");
    let e = b.stat(&name).expect_err("nothing answers");
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    let e = b.put(&name, b"x").expect_err("nothing answers");
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    // Whether the bucket can lock is unknown, not "no": a lock must not be skipped for it.
    let e = b.object_lock().map(|l| l.is_some()).expect_err("nothing answers");
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
}
