//! S3 Object Lock: the bucket requests `object_store` does not make.
//!
//! `object_store` has no API for Object Lock (retention and legal holds) or for deleting one
//! version of an object, and a bucket with Object Lock is versioned: a plain `DELETE` there only
//! hides an object behind a delete marker, keeping every byte (and every byte of a pack gc
//! meant to reclaim). So this module sends those few requests itself, signed by
//! `object_store`'s own SigV4 signer ([`AwsAuthorizer`]) with the credentials the store's
//! client resolved, over `object_store`'s HTTP client:
//!
//! * `GET ?object-lock` on the bucket: whether Object Lock is enabled (asked once);
//! * `PUT`/`GET ?retention` on an object: COMPLIANCE retention until a date — which nobody,
//!   the account's root included, can shorten or remove until it passes;
//! * `PUT`/`GET ?legal-hold`: a legal hold, on or off;
//! * `DELETE ?versionId=`: the deletion of the one version an object has (coldkeep never
//!   overwrites a name), which the bucket refuses while that version is retained or held.
//!
//! Why not `aws-sdk-s3`: it brings a second S3 client stack (its own HTTP, TLS, credential
//! chain and runtime) to make five requests whose signing and transport `object_store` already
//! has, and minutes of compilation to every build.
//!
//! Requests that fail in a way that may pass (no connection, 5xx, 429) are sent again with
//! exponential backoff, as `object_store` does for its own.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use md5::{Digest, Md5};
use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpClient, HttpConnector, HttpRequest, ReqwestConnector};
use object_store::path::Path;
use object_store::ClientOptions;

const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// The bucket's Object Lock requests (see the module documentation).
#[derive(Debug)]
pub(crate) struct BucketLock {
    http: HttpClient,
    credentials: AwsCredentialProvider,
    region: String,
    /// `<endpoint>/<bucket>`: path-style addressing, as the store's client uses.
    base: String,
    max_retries: usize,
    /// Whether the bucket has Object Lock, once an answer came.
    enabled: OnceLock<bool>,
}

/// A bucket's answer: its status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The S3 error code of a refusal (`<Code>…</Code>`), or `""`.
    fn code(&self) -> &str {
        element(&self.body, "Code").unwrap_or("")
    }
}

impl BucketLock {
    pub(crate) fn new(
        credentials: AwsCredentialProvider,
        region: String,
        endpoint: Option<&str>,
        bucket: &str,
        max_retries: usize,
    ) -> Result<Self, String> {
        let http = ReqwestConnector::default()
            .connect(&ClientOptions::new().with_allow_http(true))
            .map_err(|e| e.to_string())?;
        let base = match endpoint {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        Ok(Self { http, credentials, region, base, max_retries, enabled: OnceLock::new() })
    }

    /// Whether the bucket has Object Lock enabled.
    pub(crate) async fn enabled(&self) -> io::Result<bool> {
        if let Some(enabled) = self.enabled.get() {
            return Ok(*enabled);
        }
        let answer = self.send(http::Method::GET, None, "object-lock", None).await?;
        let enabled = match answer.status {
            200 => element(&answer.body, "ObjectLockEnabled") == Some("Enabled"),
            // No lock configuration: a bucket made without Object Lock.
            404 if answer.code() != "NoSuchBucket" => false,
            _ => return Err(refusal("read the bucket's Object Lock configuration", &answer)),
        };
        Ok(*self.enabled.get_or_init(|| enabled))
    }

    /// The end of `key`'s retention, if it has one.
    pub(crate) async fn retention(&self, key: &Path) -> io::Result<Option<i64>> {
        let answer = self.send(http::Method::GET, Some(key), "retention", None).await?;
        match answer.status {
            200 => {
                let date = element(&answer.body, "RetainUntilDate").ok_or_else(|| {
                    io::Error::other(format!("a retention without a date: {}", answer.body))
                })?;
                let date = DateTime::parse_from_rfc3339(date).map_err(|e| {
                    io::Error::other(format!("a retention date {date:?} that is not one: {e}"))
                })?;
                Ok(Some(date.timestamp_micros()))
            }
            404 if answer.code() != "NoSuchKey" && answer.code() != "NoSuchBucket" => Ok(None),
            _ => Err(refusal("read the retention", &answer)),
        }
    }

    /// Sets COMPLIANCE retention on `key` until `until_us`, rounded up to a whole second.
    pub(crate) async fn set_retention(&self, key: &Path, until_us: i64) -> io::Result<()> {
        let seconds = until_us.div_euclid(1_000_000) + i64::from(until_us % 1_000_000 != 0);
        let date = DateTime::<Utc>::from_timestamp(seconds, 0)
            .ok_or_else(|| io::Error::other(format!("{until_us} µs is no date")))?
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let body = format!(
            "<Retention xmlns=\"{XMLNS}\"><Mode>COMPLIANCE</Mode>\
             <RetainUntilDate>{date}</RetainUntilDate></Retention>"
        );
        let answer = self.send(http::Method::PUT, Some(key), "retention", Some(body)).await?;
        expect_success("set the retention", &answer)
    }

    /// Whether a legal hold is on `key`.
    pub(crate) async fn legal_hold(&self, key: &Path) -> io::Result<bool> {
        let answer = self.send(http::Method::GET, Some(key), "legal-hold", None).await?;
        match answer.status {
            200 => Ok(element(&answer.body, "Status") == Some("ON")),
            404 if answer.code() != "NoSuchKey" && answer.code() != "NoSuchBucket" => Ok(false),
            _ => Err(refusal("read the legal hold", &answer)),
        }
    }

    /// Places or lifts the legal hold on `key`.
    pub(crate) async fn set_legal_hold(&self, key: &Path, on: bool) -> io::Result<()> {
        let status = if on { "ON" } else { "OFF" };
        let body = format!("<LegalHold xmlns=\"{XMLNS}\"><Status>{status}</Status></LegalHold>");
        let answer = self.send(http::Method::PUT, Some(key), "legal-hold", Some(body)).await?;
        expect_success("set the legal hold", &answer)
    }

    /// Deletes version `version` of `key`: refused while it is retained or held.
    pub(crate) async fn delete_version(&self, key: &Path, version: &str) -> io::Result<()> {
        let query = format!("versionId={}", encode(version));
        let answer = self.send(http::Method::DELETE, Some(key), &query, None).await?;
        expect_success("delete the version", &answer)
    }

    /// Sends one signed request (again, while it fails in a way that may pass).
    async fn send(
        &self,
        method: http::Method,
        key: Option<&Path>,
        query: &str,
        body: Option<String>,
    ) -> io::Result<Answer> {
        let key = key.map(|k| k.parts().map(|p| encode(p.as_ref())).collect::<Vec<_>>().join("/"));
        let url = match key {
            Some(key) => format!("{}/{key}?{query}", self.base),
            None => format!("{}?{query}", self.base),
        };
        let mut attempt = 0;
        loop {
            let last = attempt >= self.max_retries;
            match self.send_once(method.clone(), &url, body.as_deref()).await {
                Ok(answer) if last || !(answer.status >= 500 || answer.status == 429) => {
                    return Ok(answer)
                }
                Err(e) if last || e.kind() != io::ErrorKind::TimedOut => return Err(e),
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&str>,
    ) -> io::Result<Answer> {
        let credential = self.credentials.get_credential().await.map_err(|e| {
            io::Error::new(io::ErrorKind::PermissionDenied, format!("no credentials: {e}"))
        })?;
        let mut request = http::Request::builder().method(method).uri(url);
        if let Some(body) = body {
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body));
            request = request.header("content-md5", md5).header("content-type", "application/xml");
        }
        let bytes = body.map(str::as_bytes).unwrap_or_default().to_vec();
        let mut request: HttpRequest = request.body(bytes.into()).map_err(io::Error::other)?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(io::Error::other)?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .bytes()
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))?;
        Ok(Answer { status, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

fn expect_success(what: &str, answer: &Answer) -> io::Result<()> {
    match answer.status {
        200..=299 => Ok(()),
        _ => Err(refusal(what, answer)),
    }
}

/// A refused request as an I/O error of the kind its status names.
fn refusal(what: &str, answer: &Answer) -> io::Error {
    let kind = match answer.status {
        404 => io::ErrorKind::NotFound,
        401 | 403 => io::ErrorKind::PermissionDenied,
        429 | 500..=599 => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    let message = element(&answer.body, "Message").unwrap_or("");
    io::Error::new(
        kind,
        format!("cannot {what}: the bucket answered {} {} {message}", answer.status, answer.code()),
    )
}

/// The text of the first `<tag>…</tag>` in `xml` (the answers here are small and flat).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].trim())
}

/// `s` percent-encoded for a URL path segment or query value (RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_without_panics() {
        let xml = "<Retention><Mode>COMPLIANCE</Mode>\
                   <RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>";
        assert_eq!(element(xml, "RetainUntilDate"), Some("2030-01-01T00:00:00Z"));
        assert_eq!(element(xml, "Status"), None);
        assert_eq!(element("<Status>ON", "Status"), None, "an element never closed");
        assert_eq!(element("</Status><Status>", "Status"), None);
        assert_eq!(element("", ""), None);
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
