//! The Objects port: S3-shaped object storage.
//!
//! Locally each bucket is a directory and writes are atomic renames; on AWS it
//! is S3 (ranged GET, multipart PUT for large bodies).

#[cfg(feature = "local")]
pub mod dir;

use std::{fmt, ops::Range, path::Path, str::FromStr};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{PortError, PortResult};

/// Where an object is: `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

impl ObjectRef {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        ObjectRef { bucket: bucket.into(), key: key.into() }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl FromStr for ObjectRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| format!("object uri {s:?} must look like s3://bucket/key"))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| format!("object uri {s:?} has no key: use s3://bucket/key"))?;
        check_bucket(bucket).map_err(|e| e.message().to_owned())?;
        if key.is_empty() {
            return Err(format!("object uri {s:?} has an empty key: use s3://bucket/key"));
        }
        Ok(ObjectRef::new(bucket, key))
    }
}

/// Checks S3's bucket naming rules (3–63 of lowercase letters, digits, '.', '-'):
/// [`PortError::Invalid`] naming the bucket and the rule.
pub fn check_bucket(bucket: &str) -> PortResult<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(PortError::invalid(format!(
            "bucket name {bucket:?} is not valid: use 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit"
        )))
    }
}

/// What HEAD and LIST tell about an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Changes whenever the content changes.
    pub etag: String,
    /// Milliseconds since the epoch.
    pub last_modified: i64,
}

/// The Objects capability. Implementations: a directory per bucket; S3.
#[async_trait]
pub trait Objects: Send + Sync {
    /// The object's metadata, or `None` when it does not exist.
    async fn head(&self, obj: &ObjectRef) -> PortResult<Option<ObjectMeta>>;
    /// The whole object; [`crate::error::PortError::NotFound`] when missing.
    async fn get(&self, obj: &ObjectRef) -> PortResult<Vec<u8>>;
    /// Bytes `range.start..range.end` (clamped to the object's size).
    async fn get_range(&self, obj: &ObjectRef, range: Range<u64>) -> PortResult<Vec<u8>>;
    /// Stores `body` atomically: readers see the old object or the new one, never a part.
    async fn put(&self, obj: &ObjectRef, body: Vec<u8>) -> PortResult<ObjectMeta>;
    /// Stores the content of a local file (multipart upload on S3 for large files).
    async fn put_file(&self, obj: &ObjectRef, path: &Path) -> PortResult<ObjectMeta>;
    /// Objects whose key starts with `prefix`, in key order, following every page.
    async fn list(&self, bucket: &str, prefix: &str) -> PortResult<Vec<ObjectMeta>>;
    /// Deletes an object (no error if absent).
    async fn delete(&self, obj: &ObjectRef) -> PortResult<()>;
    /// Stores a local file like [`Objects::put_file`], recording `sha256` (the
    /// content's SHA-256, hex) with the object where the store keeps metadata
    /// (S3: user metadata `sha256`); other stores just store the file.
    async fn put_file_sha256(&self, obj: &ObjectRef, path: &Path, sha256: &str) -> PortResult<ObjectMeta> {
        let _ = sha256;
        self.put_file(obj, path).await
    }
    /// [`Objects::head`], with the SHA-256 that [`Objects::put_file_sha256`]
    /// recorded (`None` when the store keeps none, or the object has none).
    async fn head_sha256(&self, obj: &ObjectRef) -> PortResult<Option<(ObjectMeta, Option<String>)>> {
        Ok(self.head(obj).await?.map(|meta| (meta, None)))
    }
    /// Stores the concatenation of `parts`, in order, as `dest` (atomically,
    /// like [`Objects::put`]); [`crate::error::PortError::NotFound`] names a
    /// missing part and leaves `dest` as it was. This default reads every part
    /// into memory; a directory store copies file to file in the kernel.
    async fn concat(&self, parts: &[ObjectRef], dest: &ObjectRef) -> PortResult<ObjectMeta> {
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(&self.get(part).await?);
        }
        self.put(dest, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_s3_uris() {
        let r: ObjectRef = "s3://orders-in/2024/data.csv".parse().unwrap();
        assert_eq!(r, ObjectRef::new("orders-in", "2024/data.csv"));
        assert_eq!(r.to_string(), "s3://orders-in/2024/data.csv");
        assert!("orders-in/x".parse::<ObjectRef>().unwrap_err().contains("s3://"));
        assert!("s3://Bad_Bucket/x".parse::<ObjectRef>().unwrap_err().contains("Bad_Bucket"));
        assert!("s3://bucket".parse::<ObjectRef>().is_err());
        assert!("s3://bucket/".parse::<ObjectRef>().is_err());
    }
}
