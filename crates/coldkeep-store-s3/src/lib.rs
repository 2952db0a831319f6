//! A repository's objects in an S3-compatible bucket: a [`Backend`] over the `object_store`
//! crate's Amazon S3 client.
//!
//! Why `object_store`: it already does what every S3 client must get right and coldkeep has
//! no reason to redo — request signing, credentials from the usual environment, paging of
//! listings, and retries with exponential backoff of the failures that may pass (connection
//! errors, timeouts, 5xx, throttling), never of a refused request.
//!
//! How the [`Backend`] contract maps onto S3:
//!
//! * **Create-only.** Every object up to [`S3Options::multipart_threshold`] is one `PUT` with
//!   `If-None-Match: *` (`PutMode::Create`): of two writers of one name the first to finish
//!   wins and the other hears [`ErrorKind::AlreadyExists`], as the contract says, and a
//!   retried write fails harmlessly. Larger objects go up in parts (multipart upload), which
//!   `object_store` completes unconditionally; the name is checked just before completion.
//!   Only packs are that large, and a pack's name is 128 random bits its writer chose, so two
//!   writers never share one.
//! * **Invisible until finished.** A writer holds its bytes until
//!   [`finish`](ObjectWriter::finish); an abandoned writer leaves nothing in the bucket. A
//!   process killed inside a multipart upload leaves parts S3 does not list as objects; a
//!   bucket lifecycle rule (`AbortIncompleteMultipartUpload`) removes them, so
//!   [`remove_unfinished`](Backend::remove_unfinished) has nothing to do.
//! * **Ranged reads.** An object opened for [`Access::Random`] is read by ranged `GET`s, one per
//!   [`read_at`](ObjectReader::read_at); one opened for [`Access::Sequential`] (most of it, in
//!   order: restore, check) is fetched whole by one `GET`, into an anonymous mapping of its
//!   own ([`Whole`]): a restore holds several 16 MiB packs at once, and heap buffers of that
//!   size are what the allocator keeps and fragments (measured: the restore of the Linux tree
//!   peaked at 440 MB with the body copied to a `Vec`, 300 MB in the client's own buffer).
//! * **Deletes of a missing object** succeed silently in S3; the contract wants
//!   [`ErrorKind::NotFound`], so a delete asks first. In a versioned bucket (every bucket with
//!   Object Lock is) the delete names the object's version, so its bytes are gone rather than
//!   hidden behind a delete marker.
//! * **Object Lock.** Where the bucket has it, the backend offers
//!   [`ObjectLock`](coldkeep_store::ObjectLock): COMPLIANCE retention and legal holds, which the
//!   bucket enforces against every client (`lock`). Without it, `object_lock` is `None`.
//!
//! Object keys are `<prefix>/<kind>/<name>` (`<prefix>/config` for the config), the same
//! layout as a repository directory.
//!
//! The client is asynchronous and the [`Backend`] is not: each backend owns a small Tokio
//! runtime and blocks on it. Call it from ordinary threads (a program's own, rayon's, or
//! `spawn_blocking`), never from inside an asynchronous task.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use coldkeep_store::backend::{
    check_range, Access, Backend, ObjectInfo, ObjectKind, ObjectLock, ObjectName, ObjectReader,
    ObjectWriter,
};
use coldkeep_store::StoreError;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};

mod errors;
mod lock;

use errors::store_error;
use lock::BucketLock;

/// Where a bucket repository lives and how it is written.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Objects larger than this go up as a multipart upload.
    pub multipart_threshold: usize,
    /// The size of each part of a multipart upload (S3 wants at least 5 MiB).
    pub part_size: usize,
    /// How many parts of one upload are in flight at once.
    pub parts_in_flight: usize,
    /// How often a request that failed in a way that may pass is sent again (with
    /// exponential backoff), and for how long at most.
    pub max_retries: usize,
    pub retry_timeout: std::time::Duration,
    /// The server, for one that is not Amazon's (`http://127.0.0.1:8333`); `None` takes
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`) from the environment.
    pub endpoint: Option<String>,
}

impl Default for S3Options {
    /// Multipart above 32 MiB, in parts of 8 MiB, 4 in flight (a default pack, 16 MiB, is
    /// one `PUT`); 10 retries within 3 minutes, `object_store`'s own default.
    fn default() -> Self {
        Self {
            multipart_threshold: 32 << 20,
            part_size: 8 << 20,
            parts_in_flight: 4,
            max_retries: 10,
            retry_timeout: std::time::Duration::from_mins(3),
            endpoint: None,
        }
    }
}

/// Why a bucket repository could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3UrlError {
    #[error("{0:?} is not a bucket address: it must read s3://<bucket>[/<prefix>]")]
    NotS3(String),
    #[error("the prefix of {url:?} is not a valid object path: {reason}")]
    BadPrefix { url: String, reason: String },
    #[error("cannot set up the S3 client for {url:?}: {reason}")]
    Client { url: String, reason: String },
}

/// A repository's objects under a prefix of an S3 bucket.
pub struct S3Backend {
    client: Arc<AmazonS3>,
    lock: BucketLock,
    prefix: Path,
    url: String,
    options: S3Options,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend").field("url", &self.url).finish_non_exhaustive()
    }
}

impl S3Backend {
    /// The repository at `url` (`s3://bucket/prefix`), with the endpoint, region and
    /// credentials of the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`) and `AWS_ENDPOINT_URL`
    /// (or `AWS_ENDPOINT`, or [`S3Options::endpoint`]) for a server that is not Amazon's. An `http://` endpoint is
    /// allowed as given: naming one is the user's choice of a server without TLS.
    ///
    /// # Errors
    /// When `url` is not a bucket address or the client cannot be built from the
    /// environment. Nothing is sent until the first operation.
    pub fn from_env(url: &str, options: S3Options) -> Result<Self, S3UrlError> {
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(S3UrlError::NotS3(url.to_owned()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3UrlError::NotS3(url.to_owned()));
        }
        let prefix = Path::parse(prefix.trim_end_matches('/'))
            .map_err(|e| S3UrlError::BadPrefix { url: url.to_owned(), reason: e.to_string() })?;
        let retry = object_store::RetryConfig {
            max_retries: options.max_retries,
            retry_timeout: options.retry_timeout,
            ..object_store::RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry);
        let endpoint = options.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let endpoint = endpoint.or_else(|| std::env::var("AWS_ENDPOINT").ok());
        if let Some(endpoint) = &endpoint {
            // A server named by address answers at http(s)://host/bucket, not at
            // bucket.host (the default for Amazon's own endpoints).
            builder = builder.with_virtual_hosted_style_request(false);
            if endpoint.starts_with("http://") {
                builder = builder.with_allow_http(true);
            }
        }
        let client_error = |reason: String| S3UrlError::Client { url: url.to_owned(), reason };
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let client = builder.build().map_err(|e| client_error(e.to_string()))?;
        let lock = BucketLock::new(
            Arc::clone(client.credentials()),
            region,
            endpoint.as_deref(),
            bucket,
            options.max_retries,
        )
        .map_err(client_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("coldkeep-s3")
            .enable_all()
            .build()
            .map_err(|e| client_error(e.to_string()))?;
        Ok(Self { client: Arc::new(client), lock, prefix, url: url.to_owned(), options, runtime })
    }

    /// The bucket address this backend was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path_of(&self, name: &ObjectName) -> Path {
        match name.kind() {
            ObjectKind::Config => self.prefix.clone().join(name.name()),
            kind => self.prefix.clone().join(kind.as_str()).join(name.name()),
        }
    }

    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// The whole object at `path`, its body streamed into a [`Whole`]; a body longer or
    /// shorter than the object's announced length is an error.
    async fn get_whole(&self, path: &Path) -> Result<Whole, StoreError> {
        let failed = |e| store_error("get", path, e);
        let io_failed = |e| StoreError::backend("get", path, e);
        let invalid = |kind, what| io_failed(std::io::Error::new(kind, what));
        let got = self.client.get(path).await.map_err(failed)?;
        let len = usize::try_from(got.range.end - got.range.start)
            .map_err(|_| invalid(std::io::ErrorKind::InvalidData, "object too large"))?;
        let mut map =
            (len > 0).then(|| memmap2::MmapMut::map_anon(len)).transpose().map_err(io_failed)?;
        let (buf, mut filled) = (map.as_deref_mut().unwrap_or_default(), 0);
        let mut body = got.into_stream();
        while let Some(part) = body.try_next().await.map_err(failed)? {
            let end = filled + part.len();
            let to = buf.get_mut(filled..end).ok_or_else(|| {
                invalid(std::io::ErrorKind::InvalidData, "body longer than its length")
            })?;
            to.copy_from_slice(&part);
            filled = end;
        }
        if filled != len {
            return Err(invalid(std::io::ErrorKind::UnexpectedEof, "body shorter than its length"));
        }
        Ok(Whole(map.map(memmap2::MmapMut::make_read_only).transpose().map_err(io_failed)?))
    }

    fn info(name: &ObjectName, meta: &ObjectMeta) -> ObjectInfo {
        ObjectInfo {
            name: name.clone(),
            len: meta.size,
            written_us: meta.last_modified.timestamp_micros(),
        }
    }

    fn head(&self, name: &ObjectName, op: &'static str) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(name);
        self.block_on(self.client.head(&path)).map_err(|e| store_error(op, &path, e))
    }
}

impl Backend for S3Backend {
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(S3Writer {
            client: Arc::clone(&self.client),
            handle: self.runtime.handle().clone(),
            path: self.path_of(name),
            options: self.options.clone(),
            bytes: Vec::new(),
        }))
    }

    fn open(&self, name: &ObjectName, access: Access) -> Result<Box<dyn ObjectReader>, StoreError> {
        let path = self.path_of(name);
        let source = match access {
            Access::Sequential => Source::Whole(self.block_on(self.get_whole(&path))?),
            Access::Random => {
                let meta = self.head(name, "open")?;
                Source::Ranged {
                    client: Arc::clone(&self.client),
                    handle: self.runtime.handle().clone(),
                    len: meta.size,
                }
            }
        };
        Ok(Box::new(S3Reader { name: name.clone(), path, source }))
    }

    fn stat(&self, name: &ObjectName) -> Result<ObjectInfo, StoreError> {
        Ok(Self::info(name, &self.head(name, "stat")?))
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>, StoreError> {
        if kind == ObjectKind::Config {
            let config = ObjectName::config();
            return match self.stat(&config) {
                Ok(info) => Ok(vec![info]),
                Err(e) if e.kind() == coldkeep_store::backend::ErrorKind::NotFound => Ok(vec![]),
                Err(e) => Err(e),
            };
        }
        let dir = self.prefix.clone().join(kind.as_str());
        let metas: Vec<ObjectMeta> = self
            .block_on(self.client.list(Some(&dir)).try_collect())
            .map_err(|e| store_error("list", &dir, e))?;
        let mut infos = Vec::with_capacity(metas.len());
        for meta in metas {
            let name = meta.location.filename().and_then(|n| ObjectName::new(kind, n));
            match name {
                Some(name) if self.path_of(&name) == meta.location => {
                    infos.push(Self::info(&name, &meta));
                }
                // Not one of ours (a name no repository writes, or one level deeper).
                _ => tracing::warn!(object = %meta.location, "not a repository object: ignored"),
            }
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }

    fn delete(&self, name: &ObjectName) -> Result<(), StoreError> {
        let meta = self.head(name, "delete")?;
        let path = self.path_of(name);
        match &meta.version {
            Some(version) => self.block_on(self.lock.delete_version(&path, version)),
            None => {
                return self
                    .block_on(self.client.delete(&path))
                    .map_err(|e| store_error("delete", &path, e))
            }
        }
        .map_err(|e| StoreError::backend("delete", &path, e))
    }

    fn remove_unfinished(&self) -> Result<usize, StoreError> {
        // An unfinished write lives in its writer; see the module documentation for a
        // multipart upload cut short.
        Ok(0)
    }

    fn object_lock(&self) -> Result<Option<&dyn ObjectLock>, StoreError> {
        let enabled = self
            .block_on(self.lock.enabled())
            .map_err(|e| StoreError::backend("ask for Object Lock", &self.url, e))?;
        Ok(enabled.then_some(self as &dyn ObjectLock))
    }
}

impl ObjectLock for S3Backend {
    fn retain_until(&self, name: &ObjectName, until_us: i64) -> Result<(), StoreError> {
        if self.retained_until(name)?.is_some_and(|u| u >= until_us) {
            return Ok(()); // retention only grows; COMPLIANCE refuses to shrink anyway
        }
        let path = self.path_of(name);
        self.block_on(self.lock.set_retention(&path, until_us))
            .map_err(|e| StoreError::backend("retain", &path, e))
    }

    fn retained_until(&self, name: &ObjectName) -> Result<Option<i64>, StoreError> {
        let path = self.path_of(name);
        self.block_on(self.lock.retention(&path))
            .map_err(|e| StoreError::backend("read retention", &path, e))
    }

    fn set_legal_hold(&self, name: &ObjectName, on: bool) -> Result<(), StoreError> {
        let path = self.path_of(name);
        self.block_on(self.lock.set_legal_hold(&path, on))
            .map_err(|e| StoreError::backend("set legal hold", &path, e))
    }

    fn legal_hold(&self, name: &ObjectName) -> Result<bool, StoreError> {
        let path = self.path_of(name);
        self.block_on(self.lock.legal_hold(&path))
            .map_err(|e| StoreError::backend("read legal hold", &path, e))
    }
}

/// An object being written: its bytes, held until [`finish`](ObjectWriter::finish).
struct S3Writer {
    client: Arc<AmazonS3>,
    handle: tokio::runtime::Handle,
    path: Path,
    options: S3Options,
    bytes: Vec<u8>,
}

impl fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Writer")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl S3Writer {
    async fn upload_in_parts(&self) -> Result<(), object_store::Error> {
        let upload = self.client.put_multipart(&self.path).await?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, self.options.part_size);
        for piece in self.bytes.chunks(self.options.part_size) {
            parts.wait_for_capacity(self.options.parts_in_flight).await?;
            parts.write(piece);
        }
        // Create-only: the last moment to find that another writer finished the name first.
        match self.client.head(&self.path).await {
            Ok(_) => {
                parts.abort().await?;
                return Err(object_store::Error::AlreadyExists {
                    path: self.path.to_string(),
                    source: "another writer finished this object first".into(),
                });
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                let _ = parts.abort().await;
                return Err(e);
            }
        }
        parts.finish().await.map(drop)
    }
}

impl ObjectWriter for S3Writer {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        let mut this = *self;
        let done = if this.bytes.len() <= this.options.multipart_threshold {
            let opts = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
            let payload = PutPayload::from(std::mem::take(&mut this.bytes));
            this.handle.block_on(this.client.put_opts(&this.path, payload, opts)).map(drop)
        } else {
            this.handle.block_on(this.upload_in_parts())
        };
        done.map_err(|e| store_error("put", &this.path, e))
    }
}

enum Source {
    /// Ranged `GET`s, one per read.
    Ranged { client: Arc<AmazonS3>, handle: tokio::runtime::Handle, len: u64 },
    /// The whole object, fetched at open.
    Whole(Whole),
}

/// An object held whole in memory, in an anonymous mapping of exactly its size (none when it
/// is empty), so that its pages go back to the system when it is dropped.
struct Whole(Option<memmap2::Mmap>);

impl Whole {
    fn bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

struct S3Reader {
    name: ObjectName,
    path: Path,
    source: Source,
}

impl fmt::Debug for S3Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Reader").field("path", &self.path).finish_non_exhaustive()
    }
}

impl ObjectReader for S3Reader {
    fn len(&self) -> u64 {
        match &self.source {
            Source::Ranged { len, .. } => *len,
            Source::Whole(whole) => whole.bytes().len() as u64,
        }
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, StoreError> {
        check_range(&self.name, self.len(), offset, len)?;
        match &self.source {
            Source::Whole(whole) => {
                let start = usize::try_from(offset).expect("inside an object held in memory");
                Ok(Cow::Borrowed(&whole.bytes()[start..start + len]))
            }
            Source::Ranged { .. } if len == 0 => Ok(Cow::Borrowed(&[])),
            Source::Ranged { client, handle, .. } => {
                let range: Range<u64> = offset..offset + len as u64;
                let bytes = handle
                    .block_on(client.get_range(&self.path, range))
                    .map_err(|e| store_error("read", &self.path, e))?;
                Ok(Cow::Owned(bytes.to_vec()))
            }
        }
    }
}
