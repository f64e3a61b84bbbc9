//! [`ObjectStore`] over one S3 bucket (the account bucket `mftg-<account-id>`, versioned).
//! A move is a copy of the exact version followed by a delete of that version, so nothing is
//! removed before its copy exists; objects over 5 GB are copied part by part.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use aws_sdk_s3::Client;
use gateway::ports::{Object, ObjectMeta, ObjectReader, ObjectStore, ObjectWriter, PART_SIZE};
use gateway::Millis;
use gateway::{GatewayError, Result};

/// S3's limit for a single CopyObject.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// [`ObjectStore`](gateway::ports::ObjectStore) over one S3 bucket (the account bucket, versioned).
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    multipart_copy_above: u64,
    copy_part_size: u64,
}

/// An S3 client from an SDK configuration, with path-style addressing when an endpoint URL is
/// set (emulators have no per-bucket host names).
pub fn client(conf: &aws_config::SdkConfig) -> Client {
    let mut builder = aws_sdk_s3::config::Builder::from(conf);
    if conf.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    Client::from_conf(builder.build())
}

impl S3Store {
    /// The bucket `bucket`, through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            multipart_copy_above: MAX_SINGLE_COPY,
            copy_part_size: 512 * 1024 * 1024,
        }
    }

    /// From an SDK configuration (see [`client`]).
    pub fn from_conf(conf: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self::new(client(conf), bucket)
    }

    /// Copies objects larger than `above` bytes in parts of `part` bytes (S3 itself allows single
    /// copies up to 5 GB and parts of 5 MB to 5 GB; tests lower the threshold).
    pub fn with_multipart_copy(mut self, above: u64, part: u64) -> Self {
        self.multipart_copy_above = above;
        self.copy_part_size = part.max(5 * 1024 * 1024);
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Deletes every version and delete marker in the bucket, then the bucket: what tearing a
    /// deployment down needs, since a versioned bucket cannot be deleted while anything is in it.
    /// Returns how many versions and markers were deleted.
    pub async fn delete_bucket_and_versions(&self) -> Result<usize> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let mut deleted = 0;
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .max_keys(1000)
                .send()
                .await
                .map_err(|e| port("ListObjectVersions", &self.bucket, e))?;
            let mut ids = Vec::new();
            for (key, version) in page
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    page.delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                )
            {
                let id = ObjectIdentifier::builder()
                    .key(key.unwrap_or_default())
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .map_err(|e| GatewayError::port("s3", e))?;
                ids.push(id);
            }
            if ids.is_empty() {
                break;
            }
            deleted += ids.len();
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| GatewayError::port("s3", e))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| port("DeleteObjects", &self.bucket, e))?;
            if let Some(e) = out.errors().first() {
                return Err(GatewayError::port(
                    "s3",
                    format!(
                        "DeleteObjects {}: {} {}",
                        self.bucket,
                        e.key().unwrap_or_default(),
                        e.message().unwrap_or_default()
                    ),
                ));
            }
        }
        self.client
            .delete_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| port("DeleteBucket", &self.bucket, e))?;
        Ok(deleted)
    }

    /// Creates the bucket in `region`, with versioning on when `versioned` (for tests and
    /// emulators; deployments get theirs from the templates).
    pub async fn create_bucket(&self, region: &str, versioned: bool) -> Result<()> {
        use aws_sdk_s3::types::{
            BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
            VersioningConfiguration,
        };
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        req.send()
            .await
            .map_err(|e| port("CreateBucket", &self.bucket, e))?;
        if versioned {
            self.client
                .put_bucket_versioning()
                .bucket(&self.bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| port("PutBucketVersioning", &self.bucket, e))?;
        }
        Ok(())
    }

    fn copy_source(&self, key: &str, version: Option<&str>) -> String {
        let mut s = format!("{}/{}", self.bucket, encode_key(key));
        if let Some(v) = version {
            s.push_str("?versionId=");
            s.push_str(&encode_key(v));
        }
        s
    }

    async fn multipart_copy(
        &self,
        from: &str,
        version: Option<&str>,
        to: &str,
        size: u64,
        metadata: &BTreeMap<String, String>,
    ) -> Result<ObjectMeta> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(to)
            .set_metadata(Some(metadata.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| port("CreateMultipartUpload", to, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| GatewayError::port("s3", "CreateMultipartUpload: no upload id"))?
            .to_string();
        let result = self.copy_parts(from, version, to, size, &upload_id).await;
        let parts = match result {
            Ok(p) => p,
            Err(e) => {
                // Leave no half-made object (and no stored parts) behind.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(e);
            }
        };
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(to)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| port("CompleteMultipartUpload", to, e))?;
        Ok(object_meta(
            size,
            done.e_tag(),
            done.version_id(),
            now(),
            metadata.clone(),
        ))
    }

    async fn copy_parts(
        &self,
        from: &str,
        version: Option<&str>,
        to: &str,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>> {
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1i32;
        while start < size {
            let end = (start + self.copy_part_size).min(size) - 1;
            let out = self
                .client
                .upload_part_copy()
                .bucket(&self.bucket)
                .key(to)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(self.copy_source(from, version))
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await
                .map_err(|e| port("UploadPartCopy", to, e))?;
            let etag = out
                .copy_part_result()
                .and_then(|r| r.e_tag())
                .unwrap_or_default()
                .to_string();
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(etag)
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        Ok(parts)
    }
}

fn now() -> Millis {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| Millis(d.as_millis() as i64))
        .unwrap_or(Millis(0))
}

fn millis(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Millis {
    t.and_then(|t| t.to_millis().ok()).map_or_else(now, Millis)
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn port<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    key: &str,
    e: SdkError<E>,
) -> GatewayError {
    GatewayError::port("s3", format!("{op} {key}: {}", crate::error::describe(&e)))
}

fn is_missing<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    if matches!(e.code(), Some("NoSuchKey" | "NotFound" | "NoSuchVersion")) {
        return true;
    }
    // HeadObject answers a bare 404.
    matches!(e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404)
}

fn meta_from(
    size: Option<i64>,
    etag: Option<&str>,
    version: Option<&str>,
    modified: Option<&aws_sdk_s3::primitives::DateTime>,
    metadata: Option<&std::collections::HashMap<String, String>>,
) -> ObjectMeta {
    object_meta(
        size.unwrap_or_default().max(0) as u64,
        etag,
        version,
        millis(modified),
        metadata
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    )
}

/// What S3 tells of a version written at `at`: its write time is both its modification time
/// and when it came into the bucket (no client sets either).
fn object_meta(
    size: u64,
    etag: Option<&str>,
    version: Option<&str>,
    at: Millis,
    metadata: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        size,
        etag: clean_etag(etag),
        version: version.map(str::to_string),
        modified: at,
        written: at,
        metadata,
    }
}

fn clean_etag(e: Option<&str>) -> String {
    e.unwrap_or_default().trim_matches('"').to_string()
}

impl ObjectStore for S3Store {
    async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectMeta> {
        let size = data.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data))
            .set_metadata((!metadata.is_empty()).then(|| metadata.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| port("PutObject", key, e))?;
        Ok(object_meta(
            size,
            out.e_tag(),
            out.version_id(),
            now(),
            metadata,
        ))
    }

    /// The puts at once, each its own request.
    async fn put_all(&self, objects: Vec<(String, Vec<u8>)>) -> Result<()> {
        let puts = objects
            .into_iter()
            .map(|(key, data)| async move { self.put(&key, data, BTreeMap::new()).await });
        futures_util::future::try_join_all(puts).await.map(drop)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let Some((meta, reader)) = self.reader(key).await? else {
            return Ok(None);
        };
        let data = gateway::ports::read_all(reader).await?;
        Ok(Some(Object { data, meta }))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let out = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(port("HeadObject", key, e)),
        };
        Ok(Some(meta_from(
            out.content_length(),
            out.e_tag(),
            out.version_id(),
            out.last_modified(),
            out.metadata(),
        )))
    }

    async fn copy(&self, from: &str, version: Option<&str>, to: &str) -> Result<ObjectMeta> {
        let mut head = self.client.head_object().bucket(&self.bucket).key(from);
        if let Some(v) = version {
            head = head.version_id(v);
        }
        let source = match head.send().await {
            Ok(o) => o,
            Err(e) if is_missing(&e) => return Err(GatewayError::NotFound(from.into())),
            Err(e) => return Err(port("HeadObject", from, e)),
        };
        let size = source.content_length().unwrap_or_default().max(0) as u64;
        let metadata: BTreeMap<String, String> = source
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if size > self.multipart_copy_above {
            return self
                .multipart_copy(from, version, to, size, &metadata)
                .await;
        }
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(self.copy_source(from, version))
            .metadata_directive(MetadataDirective::Copy)
            .send()
            .await
            .map_err(|e| port("CopyObject", to, e))?;
        Ok(object_meta(
            size,
            out.copy_object_result().and_then(|r| r.e_tag()),
            out.version_id(),
            now(),
            metadata,
        ))
    }

    async fn delete(&self, key: &str, version: Option<&str>) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| port("DeleteObject", key, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectMeta)>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port("ListObjectsV2", prefix, e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push((
                    key.to_string(),
                    object_meta(
                        o.size().unwrap_or_default().max(0) as u64,
                        o.e_tag(),
                        None,
                        millis(o.last_modified()),
                        BTreeMap::new(),
                    ),
                ));
            }
        }
        Ok(out)
    }

    type Writer = S3Writer;
    type Reader = S3Reader;

    async fn writer(&self, key: &str, metadata: BTreeMap<String, String>) -> Result<S3Writer> {
        Ok(S3Writer {
            store: self.clone(),
            key: key.to_string(),
            metadata,
            buffer: Vec::new(),
            upload: None,
            parts: Vec::new(),
            size: 0,
        })
    }

    async fn reader(&self, key: &str) -> Result<Option<(ObjectMeta, S3Reader)>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(port("GetObject", key, e)),
        };
        let meta = meta_from(
            out.content_length(),
            out.e_tag(),
            out.version_id(),
            out.last_modified(),
            out.metadata(),
        );
        Ok(Some((
            meta,
            S3Reader {
                key: key.to_string(),
                body: Some(out.body),
            },
        )))
    }
}

/// An object written to S3 in parts: one PutObject if it stays under a part's size, else a
/// multipart upload of [`PART_SIZE`] parts, completed by `finish`. One dropped unfinished is
/// aborted (and the bucket's lifecycle rule removes whatever an abort that never ran left).
pub struct S3Writer {
    store: S3Store,
    key: String,
    metadata: BTreeMap<String, String>,
    buffer: Vec<u8>,
    upload: Option<String>,
    parts: Vec<CompletedPart>,
    size: u64,
}

impl std::fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Writer")
            .field("key", &self.key)
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl S3Writer {
    /// Uploads the buffer as the next part, starting the multipart upload first if need be.
    async fn upload_part(&mut self) -> Result<()> {
        let client = self.store.client.clone();
        let bucket = self.store.bucket.clone();
        let upload = match &self.upload {
            Some(u) => u.clone(),
            None => {
                let created = client
                    .create_multipart_upload()
                    .bucket(&bucket)
                    .key(&self.key)
                    .set_metadata(
                        (!self.metadata.is_empty())
                            .then(|| self.metadata.clone().into_iter().collect()),
                    )
                    .send()
                    .await
                    .map_err(|e| port("CreateMultipartUpload", &self.key, e))?;
                let id = created
                    .upload_id()
                    .ok_or_else(|| {
                        GatewayError::port("s3", "CreateMultipartUpload returned no upload ID")
                    })?
                    .to_string();
                self.upload = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1)
            .map_err(|_| GatewayError::port("s3", "too many parts"))?;
        let data = std::mem::take(&mut self.buffer);
        self.size += data.len() as u64;
        let out = client
            .upload_part()
            .bucket(&bucket)
            .key(&self.key)
            .upload_id(&upload)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| port("UploadPart", &self.key, e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= PART_SIZE {
            self.upload_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<ObjectMeta> {
        let Some(upload) = self.upload.clone() else {
            let data = std::mem::take(&mut self.buffer);
            let metadata = std::mem::take(&mut self.metadata);
            return self.store.put(&self.key, data, metadata).await;
        };
        if !self.buffer.is_empty() {
            self.upload_part().await?;
        }
        let parts = std::mem::take(&mut self.parts);
        let out = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&upload)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| port("CompleteMultipartUpload", &self.key, e))?;
        self.upload = None;
        Ok(object_meta(
            self.size,
            out.e_tag(),
            out.version_id(),
            now(),
            std::mem::take(&mut self.metadata),
        ))
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        let (Some(upload), Ok(rt)) = (self.upload.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let abort = self
            .store
            .client
            .abort_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(upload);
        rt.spawn(async move {
            if let Err(e) = abort.send().await {
                tracing::warn!(error = %e, "an unfinished multipart upload was not aborted");
            }
        });
    }
}

/// An S3 object read as its body arrives, in parts of about a mebibyte.
#[derive(Debug)]
pub struct S3Reader {
    key: String,
    body: Option<ByteStream>,
}

/// What [`S3Reader`] gathers before handing a part on.
const READ_PART: usize = 1024 * 1024;

impl ObjectReader for S3Reader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        let mut part = Vec::new();
        while part.len() < READ_PART {
            match body.try_next().await {
                Ok(Some(bytes)) => part.extend_from_slice(&bytes),
                Ok(None) => {
                    self.body = None;
                    break;
                }
                Err(e) => {
                    self.body = None;
                    return Err(GatewayError::port(
                        "s3",
                        format!("GetObject {}: reading the body: {e}", self.key),
                    ));
                }
            }
        }
        Ok((!part.is_empty()).then_some(part))
    }
}

#[cfg(test)]
mod tests {
    use super::encode_key;

    #[test]
    fn copy_source_keys_are_encoded_except_slashes() {
        assert_eq!(
            encode_key("AS2/send/ALPHA/BETA/order 1 ü+x?.edi"),
            "AS2/send/ALPHA/BETA/order%201%20%C3%BC%2Bx%3F.edi"
        );
    }
}
