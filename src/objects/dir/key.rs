//! Which object keys a directory can hold, and where they live on disk.
//!
//! S3 keys are arbitrary strings; here a key is a relative path, so the
//! directory store rejects keys a filesystem would resolve to somewhere else
//! (`..`, `.`, empty segments, absolute paths) or cannot hold (NUL, segments
//! over 255 bytes), and the name of its own temp directory.

use std::path::{Path, PathBuf};

use crate::{
    error::{PortError, PortResult},
    objects::{check_bucket, ObjectRef},
};

/// Hidden directory inside each bucket where writes are staged before the rename.
pub const TMP_DIR: &str = ".batchfan-tmp";
/// Longest key S3 accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest file name most filesystems accept, in bytes.
const MAX_SEGMENT_BYTES: usize = 255;

/// Checks that `key` is a relative path a bucket directory can hold:
/// [`PortError::Invalid`] naming the key and what is wrong with it.
pub fn check_key(key: &str) -> PortResult<()> {
    let problem = if key.is_empty() {
        "is empty".to_owned()
    } else if key.len() > MAX_KEY_BYTES {
        format!("is {} bytes, over s3's {MAX_KEY_BYTES}", key.len())
    } else if key.contains('\0') {
        "contains a NUL byte".to_owned()
    } else if key.starts_with('/') {
        "is absolute".to_owned()
    } else if let Some(seg) = key.split('/').find(|s| s.is_empty() || *s == "." || *s == "..") {
        if seg.is_empty() {
            "has an empty path segment".to_owned()
        } else {
            format!("has a {seg:?} path segment")
        }
    } else if let Some(seg) = key.split('/').find(|s| s.len() > MAX_SEGMENT_BYTES) {
        format!("has a path segment of {} bytes, over the filesystem's {MAX_SEGMENT_BYTES}", seg.len())
    } else if key.split('/').next() == Some(TMP_DIR) {
        format!("starts with {TMP_DIR}, which is reserved for staging writes")
    } else {
        return Ok(());
    };
    Err(PortError::invalid(format!(
        "object key {key:?} {problem}: use a relative path like dir/name.ext, without empty, '.' or '..' segments"
    )))
}

/// The bucket directory and the object's file, once the names are checked.
pub(super) fn locate(root: &Path, obj: &ObjectRef) -> Result<(PathBuf, PathBuf), PortError> {
    check_bucket(&obj.bucket)?;
    check_key(&obj.key)?;
    let bucket = root.join(&obj.bucket);
    let file = bucket.join(&obj.key);
    Ok((bucket, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relative_paths() {
        for key in ["a", "a/b/c.csv", ".hidden", "a/.b", "dir with space/x", "ünï/côdé", "a..b/c"] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn rejects_what_a_directory_cannot_hold() {
        let long_segment = "x".repeat(256);
        let cases = [
            ("", "is empty"),
            ("/a", "is absolute"),
            ("a//b", "empty path segment"),
            ("a/", "empty path segment"),
            ("a/../b", "\"..\" path segment"),
            ("./a", "\".\" path segment"),
            ("a\0b", "NUL"),
            (long_segment.as_str(), "256 bytes"),
            (".batchfan-tmp/x", "reserved"),
        ];
        for (key, want) in cases {
            let err = check_key(key).unwrap_err();
            assert!(matches!(err, PortError::Invalid(_)), "{key:?}: {err}");
            assert!(
                err.message().contains(want) && err.message().contains("relative path"),
                "{key:?}: {err}"
            );
        }
        assert!(check_key(&"a/".repeat(600)).unwrap_err().message().contains("over s3's 1024"));
    }

    #[test]
    fn locate_checks_bucket_and_key() {
        let root = Path::new("/data");
        let (bucket, file) = locate(root, &ObjectRef::new("in-bucket", "a/b.txt")).unwrap();
        assert_eq!(bucket, Path::new("/data/in-bucket"));
        assert_eq!(file, Path::new("/data/in-bucket/a/b.txt"));
        assert!(matches!(locate(root, &ObjectRef::new("Bad_Bucket", "a")), Err(PortError::Invalid(_))));
        assert!(matches!(locate(root, &ObjectRef::new("ok-bucket", "../a")), Err(PortError::Invalid(_))));
    }
}
