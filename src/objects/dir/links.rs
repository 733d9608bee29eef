//! Symbolic links in a bucket directory are never objects, and no path
//! through one is followed: a link could point anywhere the process can read
//! (`/etc/passwd`), and a run's input must be a file of the bucket.
//!
//! The bucket directory itself (and the root above it) may be links: the
//! user chose them. Below it, [`refuse_links`] checks each directory of a key
//! before a read, write or delete; reads also open with `O_NOFOLLOW` and then
//! check where the opened file really is ([`opened_inside`]), so a link
//! swapped in between the check and the open is refused too.

use std::{
    fs::{self, File},
    io,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::Path,
};

use crate::{error::PortError, objects::ObjectRef};

/// Why a directory entry is not listed as an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// A symbolic link (to a file or a directory, inside the bucket or not).
    Symlink,
    /// A name that is not UTF-8, so not an S3 key.
    NotUtf8,
}

/// A directory entry a listing left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Skipped {
    /// The key it would have (lossy for a non-UTF-8 name: `\u{FFFD}` for bad bytes).
    pub key: String,
    pub reason: SkipReason,
}

impl Skipped {
    /// What to tell the user, naming the file and the fix.
    pub fn message(&self, bucket: &str) -> String {
        match self.reason {
            SkipReason::Symlink => format!(
                "s3://{bucket}/{} is a symbolic link, which is never an object (it could point out of the bucket): copy or move the file itself into the bucket",
                self.key
            ),
            SkipReason::NotUtf8 => format!(
                "s3://{bucket}/{} has a file name that is not utf-8, which is not an s3 key: rename it",
                self.key
            ),
        }
    }
}

fn link_error(obj: &ObjectRef, what: &str) -> PortError {
    PortError::invalid(format!(
        "object {obj}: {what} is a symbolic link, which batchfan never follows in a bucket (it could point out of it): copy the file itself into the bucket"
    ))
}

/// Refuses `obj` when a directory on its path below `bucket_dir` (and, with
/// `last`, the object's own file) is a symbolic link.
pub(super) fn refuse_links(bucket_dir: &Path, obj: &ObjectRef, last: bool) -> Result<(), PortError> {
    let segments: Vec<&str> = obj.key.split('/').collect();
    let checked = if last { segments.len() } else { segments.len() - 1 };
    let mut path = bucket_dir.to_path_buf();
    for (i, seg) in segments[..checked].iter().enumerate() {
        path.push(seg);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let what = if i + 1 == segments.len() { "it".to_owned() } else { segments[..=i].join("/") };
                return Err(link_error(obj, &what));
            }
            Ok(_) => {}
            // Not there: whatever comes next reports it missing.
            Err(e) if super::walk::gone(&e) => return Ok(()),
            Err(e) => return Err(PortError::backend(format!("cannot stat {}: {e}", path.display()))),
        }
    }
    Ok(())
}

/// Opens an object's file for reading without following a link at its end.
pub(super) fn open_nofollow(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Whether an open error means the last component is a symbolic link.
pub(super) fn is_link_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Refuses an opened file that is not under `bucket_dir` (a directory on
/// its path became a link after [`refuse_links`] looked). Where
/// `/proc/self/fd` is not available, the earlier checks stand alone.
pub(super) fn opened_inside(file: &File, bucket_dir: &Path, obj: &ObjectRef) -> Result<(), PortError> {
    let Ok(real) = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) else { return Ok(()) };
    let Ok(bucket) = fs::canonicalize(bucket_dir) else { return Ok(()) };
    if real.starts_with(&bucket) {
        Ok(())
    } else {
        Err(link_error(obj, "a directory on its path"))
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt, os::unix::fs::symlink};

    use super::*;
    use crate::objects::{dir::DirObjects, Objects};

    /// A store with bucket `inbox` holding `in/real.csv`, links to a file
    /// outside (`in/out.csv`), to a file inside (`in/alias.csv`) and to a
    /// directory outside (`in/dir`), and a non-UTF-8 name; plus `secret`, the outside file.
    fn store() -> (tempfile::TempDir, DirObjects, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("sub")).unwrap();
        fs::write(outside.join("secret"), "root:x:0:0\n").unwrap();
        fs::write(outside.join("sub/inner.csv"), "x\n").unwrap();
        let bucket = tmp.path().join("objects/inbox/in");
        fs::create_dir_all(&bucket).unwrap();
        fs::write(bucket.join("real.csv"), "1\n").unwrap();
        symlink(outside.join("secret"), bucket.join("out.csv")).unwrap();
        symlink(bucket.join("real.csv"), bucket.join("alias.csv")).unwrap();
        symlink(outside.join("sub"), bucket.join("dir")).unwrap();
        fs::write(bucket.join(OsStr::from_bytes(b"caf\xe9.csv")), "2\n").unwrap();
        let objects = DirObjects::new(tmp.path().join("objects"));
        (tmp, objects, outside)
    }

    #[tokio::test]
    async fn a_listing_holds_regular_files_only_and_names_what_it_left_out() {
        let (_tmp, objects, _) = store();
        let (listed, skipped) = objects.list_skipped("inbox", "in/").await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["in/real.csv"]);
        let skipped: Vec<(&str, SkipReason)> = skipped.iter().map(|s| (s.key.as_str(), s.reason)).collect();
        assert_eq!(
            skipped,
            [
                ("in/alias.csv", SkipReason::Symlink),
                ("in/caf\u{FFFD}.csv", SkipReason::NotUtf8),
                ("in/dir", SkipReason::Symlink),
                ("in/out.csv", SkipReason::Symlink),
            ]
        );
        assert_eq!(objects.list("inbox", "").await.unwrap().len(), 1, "the trait's listing too");
        // A prefix naming the linked directory lists nothing through it.
        let (listed, skipped) = objects.list_skipped("inbox", "in/dir/").await.unwrap();
        assert!(listed.is_empty(), "{listed:?}");
        assert_eq!(skipped, [Skipped { key: "in/dir".into(), reason: SkipReason::Symlink }]);
    }

    /// Issue 10, finding 4: `--input s3://bucket/link-to-etc-passwd` read the linked file.
    #[tokio::test]
    async fn reads_of_a_link_or_through_one_are_refused_naming_the_link() {
        let (_tmp, objects, _) = store();
        for key in ["in/out.csv", "in/alias.csv", "in/dir/inner.csv"] {
            let obj = ObjectRef::new("inbox", key);
            for e in [
                objects.get(&obj).await.unwrap_err(),
                objects.get_range(&obj, 0..4).await.unwrap_err(),
                objects.head(&obj).await.unwrap_err(),
                objects
                    .concat(std::slice::from_ref(&obj), &ObjectRef::new("inbox", "out/all.csv"))
                    .await
                    .unwrap_err(),
            ] {
                let text = e.to_string();
                assert!(matches!(e, PortError::Invalid(_)), "{key}: {text}");
                assert!(text.contains("symbolic link") && text.contains(key), "{key}: {text}");
                assert!(text.contains("copy the file itself into the bucket"), "{text}");
            }
        }
        let real = ObjectRef::new("inbox", "in/real.csv");
        assert_eq!(objects.get(&real).await.unwrap(), b"1\n");
        assert!(objects.head(&real).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn writes_and_deletes_never_go_through_a_linked_directory() {
        let (_tmp, objects, outside) = store();
        let through = ObjectRef::new("inbox", "in/dir/inner.csv");
        assert!(matches!(objects.put(&through, b"pwned".to_vec()).await, Err(PortError::Invalid(_))));
        assert!(matches!(objects.delete(&through).await, Err(PortError::Invalid(_))));
        assert_eq!(fs::read(outside.join("sub/inner.csv")).unwrap(), b"x\n", "the outside file is intact");
        // Replacing a link by a put replaces the link, never the file it points to.
        objects.put(&ObjectRef::new("inbox", "in/out.csv"), b"mine".to_vec()).await.unwrap();
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"root:x:0:0\n");
        assert_eq!(objects.get(&ObjectRef::new("inbox", "in/out.csv")).await.unwrap(), b"mine");
    }
}
