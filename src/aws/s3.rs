//! The S3 [`Objects`].
//!
//! | port | S3 |
//! | --- | --- |
//! | `head` | HeadObject (404 → `None`) |
//! | `get` | GetObject (NoSuchKey → [`PortError::NotFound`] naming `s3://bucket/key`) |
//! | `get_range` | GetObject with `Range: bytes=a-(b-1)`; an empty range or one past the end reads nothing (after checking the object exists) |
//! | `put` | PutObject |
//! | `put_file` | PutObject up to [`MULTIPART_THRESHOLD`]; above, a multipart upload of [`PART_SIZE`] parts (more when the file would need over 10,000 parts), 4 in flight, aborted on failure |
//! | `list` | ListObjectsV2, every page (1,000 keys each) |
//! | `delete` | DeleteObject (absent objects and buckets are fine) |
//!
//! ETags are given without S3's quotes. The `last_modified` of a `put`'s
//! answer is this machine's clock (PutObject does not return S3's); `head`
//! and `list` give S3's.

mod multipart;

use std::{ops::Range, path::Path};

use async_trait::async_trait;
use aws_sdk_s3::{
    operation::{get_object::GetObjectError, head_object::HeadObjectError},
    primitives::{ByteStream, DateTime},
    Client,
};

pub use self::multipart::{MULTIPART_THRESHOLD, PART_SIZE};
use crate::{
    aws::error::port_error,
    error::{PortError, PortResult},
    objects::{check_bucket, ObjectMeta, ObjectRef, Objects},
};

/// Longest key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;
/// The user metadata ([`Objects::put_file_sha256`]) holding the content's SHA-256 (hex).
pub const SHA256_METADATA: &str = "sha256";

/// The S3 implementation of [`Objects`]. Cheap to clone.
#[derive(Clone)]
pub struct S3Objects {
    client: Client,
}

impl S3Objects {
    pub(crate) fn new(client: Client) -> Self {
        S3Objects { client }
    }

    /// HeadObject: the object's metadata and the `sha256` user metadata, `None` when missing.
    async fn head_with_metadata(&self, obj: &ObjectRef) -> PortResult<Option<(ObjectMeta, Option<String>)>> {
        check(obj)?;
        match self.client.head_object().bucket(&obj.bucket).key(&obj.key).send().await {
            Ok(out) => {
                let sha256 = out.metadata.as_ref().and_then(|m| m.get(SHA256_METADATA)).cloned();
                let meta = ObjectMeta {
                    key: obj.key.clone(),
                    size: out.content_length.unwrap_or_default().max(0) as u64,
                    etag: etag(out.e_tag.as_deref()),
                    last_modified: millis(out.last_modified.as_ref()),
                };
                Ok(Some((meta, sha256)))
            }
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(port_error(&format!("s3 HeadObject {obj}"), e)),
        }
    }

    /// PutObject, with the `sha256` user metadata when given.
    async fn put_body(&self, obj: &ObjectRef, body: Vec<u8>, sha256: Option<&str>) -> PortResult<ObjectMeta> {
        check(obj)?;
        let size = body.len() as u64;
        let mut request =
            self.client.put_object().bucket(&obj.bucket).key(&obj.key).body(ByteStream::from(body));
        if let Some(sha) = sha256 {
            request = request.metadata(SHA256_METADATA, sha);
        }
        let out = request.send().await.map_err(|e| port_error(&format!("s3 PutObject {obj}"), e))?;
        Ok(ObjectMeta {
            key: obj.key.clone(),
            size,
            etag: etag(out.e_tag.as_deref()),
            last_modified: now_ms(),
        })
    }

    /// `put_file`: one PutObject, or a multipart upload above [`MULTIPART_THRESHOLD`].
    async fn upload_file(
        &self,
        obj: &ObjectRef,
        path: &Path,
        sha256: Option<&str>,
    ) -> PortResult<ObjectMeta> {
        check(obj)?;
        let size = match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => {
                return Err(PortError::invalid(format!(
                    "{} is not a file: pass the path of a file",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PortError::not_found(format!(
                    "local file {} does not exist: pass the path of an existing file",
                    path.display()
                )))
            }
            Err(e) => return Err(PortError::backend(format!("cannot read {}: {e}", path.display()))),
        };
        if size <= MULTIPART_THRESHOLD {
            let body = tokio::fs::read(path).await.map_err(|e| {
                PortError::backend(format!("cannot read {}: {e}", path.display())).caused_by(e)
            })?;
            return self.put_body(obj, body, sha256).await;
        }
        let etag = multipart::upload(&self.client, obj, path, size, sha256).await?;
        Ok(ObjectMeta { key: obj.key.clone(), size, etag, last_modified: now_ms() })
    }

    /// GetObject, optionally ranged (`bytes=a-b`, inclusive).
    async fn read(&self, obj: &ObjectRef, range: Option<(u64, u64)>) -> PortResult<Vec<u8>> {
        check(obj)?;
        let request = self.client.get_object().bucket(&obj.bucket).key(&obj.key);
        let request = match range {
            Some((first, last)) => request.range(format!("bytes={first}-{last}")),
            None => request,
        };
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) || is_no_such_bucket(&e)
                {
                    return Err(not_found(obj));
                }
                // 416: the range starts at or past the end of an object that exists.
                if range.is_some() && e.raw_response().is_some_and(|r| r.status().as_u16() == 416) {
                    return Ok(Vec::new());
                }
                return Err(port_error(&format!("s3 GetObject {obj}"), e));
            }
        };
        let body = out.body.collect().await.map_err(|e| {
            PortError::unavailable(format!("s3 GetObject {obj}: reading the body failed: {e}"))
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

/// Checks S3's bucket and key rules.
pub(crate) fn check(obj: &ObjectRef) -> PortResult<()> {
    check_bucket(&obj.bucket)?;
    if obj.key.is_empty() {
        return Err(PortError::invalid(format!(
            "object key in bucket {:?} is empty: use a key like dir/name.ext",
            obj.bucket
        )));
    }
    if obj.key.len() > MAX_KEY_BYTES {
        return Err(PortError::invalid(format!(
            "object key {:?} is {} bytes, over s3's {MAX_KEY_BYTES}: use a shorter key",
            obj.key,
            obj.key.len()
        )));
    }
    Ok(())
}

fn not_found(obj: &ObjectRef) -> PortError {
    PortError::not_found(format!("object {obj} does not exist"))
}

fn is_no_such_bucket<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    e.as_service_error().and_then(|e| e.code()) == Some("NoSuchBucket")
}

/// S3's ETag without its quotes.
pub(crate) fn etag(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim_matches('"').to_owned()
}

fn millis(t: Option<&DateTime>) -> i64 {
    t.and_then(|t| t.to_millis().ok()).unwrap_or_default()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Bytes `first..=last` to ask for, or `None` when the range is empty.
pub(crate) fn http_range(range: &Range<u64>) -> Option<(u64, u64)> {
    (range.start < range.end).then(|| (range.start, range.end - 1))
}

#[async_trait]
impl Objects for S3Objects {
    async fn head(&self, obj: &ObjectRef) -> PortResult<Option<ObjectMeta>> {
        Ok(self.head_with_metadata(obj).await?.map(|(meta, _)| meta))
    }

    async fn get(&self, obj: &ObjectRef) -> PortResult<Vec<u8>> {
        self.read(obj, None).await
    }

    async fn get_range(&self, obj: &ObjectRef, range: Range<u64>) -> PortResult<Vec<u8>> {
        match http_range(&range) {
            Some(bytes) => self.read(obj, Some(bytes)).await,
            // Nothing to read, but a missing object is still an error.
            None => match self.head(obj).await? {
                Some(_) => Ok(Vec::new()),
                None => Err(not_found(obj)),
            },
        }
    }

    async fn put(&self, obj: &ObjectRef, body: Vec<u8>) -> PortResult<ObjectMeta> {
        self.put_body(obj, body, None).await
    }

    async fn put_file(&self, obj: &ObjectRef, path: &Path) -> PortResult<ObjectMeta> {
        self.upload_file(obj, path, None).await
    }

    async fn put_file_sha256(&self, obj: &ObjectRef, path: &Path, sha256: &str) -> PortResult<ObjectMeta> {
        self.upload_file(obj, path, Some(sha256)).await
    }

    async fn head_sha256(&self, obj: &ObjectRef) -> PortResult<Option<(ObjectMeta, Option<String>)>> {
        self.head_with_metadata(obj).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        check_bucket(bucket)?;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = match self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) if is_no_such_bucket(&e) => {
                    return Err(PortError::not_found(format!(
                        "bucket {bucket:?} does not exist: create it or check the name"
                    )))
                }
                Err(e) => return Err(port_error(&format!("s3 ListObjectsV2 s3://{bucket}/{prefix}"), e)),
            };
            for o in page.contents.unwrap_or_default() {
                out.push(ObjectMeta {
                    key: o.key.unwrap_or_default(),
                    size: o.size.unwrap_or_default().max(0) as u64,
                    etag: etag(o.e_tag.as_deref()),
                    last_modified: millis(o.last_modified.as_ref()),
                });
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated == Some(true) => token = Some(next),
                _ => return Ok(out),
            }
        }
    }

    async fn delete(&self, obj: &ObjectRef) -> PortResult<()> {
        check(obj)?;
        match self.client.delete_object().bucket(&obj.bucket).key(&obj.key).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_no_such_bucket(&e) => Ok(()),
            Err(e) => Err(port_error(&format!("s3 DeleteObject {obj}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_empty_ones_send_nothing() {
        assert_eq!(http_range(&(2..5)), Some((2, 4)));
        assert_eq!(http_range(&(0..1)), Some((0, 0)));
        assert_eq!(http_range(&(4..4)), None);
        assert_eq!(http_range(&Range { start: 9, end: 3 }), None);
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(etag(Some("\"abc-2\"")), "abc-2");
        assert_eq!(etag(None), "");
    }

    #[test]
    fn keys_follow_s3_rules() {
        assert!(check(&ObjectRef::new("bucket", "a/../b")).is_ok(), "s3 keys are any text");
        assert!(
            matches!(check(&ObjectRef::new("bucket", "")), Err(PortError::Invalid(m)) if m.contains("empty"))
        );
        let long = "k".repeat(1025);
        assert!(
            matches!(check(&ObjectRef::new("bucket", long)), Err(PortError::Invalid(m)) if m.contains("1025"))
        );
        assert!(
            matches!(check(&ObjectRef::new("Bad_Bucket", "k")), Err(PortError::Invalid(m)) if m.contains("Bad_Bucket"))
        );
    }
}
