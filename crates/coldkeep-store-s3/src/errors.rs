//! What kind of failure an `object_store` error is, in the store's terms.
//!
//! `object_store` has already retried what may pass (with backoff) by the time an error
//! arrives here, so this only names the kind for the caller: a missing object, a lost
//! create-only race, refused credentials, a failure that may still pass later (the server
//! unreachable or overloaded past the retry budget), or anything else.

use std::error::Error as _;
use std::io;

use coldkeep_store::StoreError;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;

/// `e`, from operation `op` on `path`, as a [`StoreError`] of the right kind.
pub(crate) fn store_error(op: &'static str, path: &Path, e: object_store::Error) -> StoreError {
    StoreError::backend(op, path, io::Error::new(io_kind(&e), e))
}

fn io_kind(e: &object_store::Error) -> io::ErrorKind {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => io::ErrorKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => io::ErrorKind::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        E::Generic { .. } if may_pass(e) => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    }
}

/// Whether a failure may pass if the same request is sent again later: the connection
/// failed or timed out, or the server answered 5xx or 429 (too many requests) until the
/// retries ran out.
fn may_pass(e: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        // The status of a response is only in the retry error's text: `object_store` keeps
        // that type private.
        let text = c.to_string();
        if let Some(status) = text.split("status code: ").nth(1) {
            return status.starts_with('5') || status.starts_with("429");
        }
        cause = c.source();
    }
    false
}
