//! The local [`Objects`]: a directory per bucket.
//!
//! Bucket `b` is the directory `{root}/b` and key `x/y.csv` the file
//! `{root}/b/x/y.csv`, so any program can read outputs, and files dropped into
//! a bucket's directory by any program are objects like the others. Writes
//! are atomic (a temp file in the bucket's hidden `.batchfan-tmp/`, then a
//! rename); keys must be relative paths ([`check_key`]); bucket names follow
//! S3's rules. Ranged reads clamp like S3; listing is recursive and sorted.
//! A symbolic link below a bucket directory is never an object, and no read,
//! write or delete goes through one ([`links`]): [`DirObjects::list_skipped`]
//! says which links (and non-UTF-8 names) a listing left out.
//!
//! ```no_run
//! # async fn demo() -> Result<(), batchfan::error::PortError> {
//! use batchfan::objects::{dir::DirObjects, ObjectRef, Objects};
//! let objects = DirObjects::new(".batchfan/objects");
//! let obj = ObjectRef::new("orders-out", "run-1/part-0001.csv");
//! objects.put(&obj, b"id,total\n1,9.5\n".to_vec()).await?;
//! assert_eq!(objects.get_range(&obj, 0..2).await?, b"id");
//! let on_disk = objects.path_of(&obj); // .batchfan/objects/orders-out/run-1/part-0001.csv
//! # let _ = on_disk;
//! # Ok(()) }
//! ```

mod key;
pub mod links;
mod store;
mod walk;

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

use async_trait::async_trait;

pub use self::key::{check_key, MAX_KEY_BYTES, TMP_DIR};
use self::links::Skipped;
use self::store::Target;
use crate::{
    error::{PortError, PortResult},
    objects::{check_bucket, ObjectMeta, ObjectRef, Objects},
    sqlite::blocking,
};

/// The directory implementation of [`Objects`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DirObjects {
    root: PathBuf,
    fsync: bool,
}

impl DirObjects {
    /// A store whose buckets are the directories under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> DirObjects {
        DirObjects { root: root.into(), fsync: false }
    }

    /// Whether each write is flushed to disk before it becomes visible (default: no).
    pub fn with_fsync(mut self, fsync: bool) -> DirObjects {
        self.fsync = fsync;
        self
    }

    /// The directory that holds all buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds (or would hold) `obj`. Does not check the key.
    pub fn path_of(&self, obj: &ObjectRef) -> PathBuf {
        self.root.join(&obj.bucket).join(&obj.key)
    }

    /// Like [`Objects::list`], and also the entries under `prefix` that are
    /// not objects (symbolic links, non-UTF-8 names), sorted by key.
    pub async fn list_skipped(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> PortResult<(Vec<ObjectMeta>, Vec<Skipped>)> {
        check_bucket(bucket)?;
        let (bucket_dir, prefix) = (self.root.join(bucket), prefix.to_owned());
        blocking(move || walk::list(&bucket_dir, &prefix)).await
    }

    /// Checks the names (and that no directory on the key's path is a link)
    /// and runs `f` on the blocking thread pool.
    async fn with_target<T: Send + 'static>(
        &self,
        obj: &ObjectRef,
        f: impl FnOnce(&Target<'_>) -> Result<T, PortError> + Send + 'static,
    ) -> PortResult<T> {
        let (bucket_dir, path) = key::locate(&self.root, obj)?;
        let obj = obj.clone();
        blocking(move || {
            links::refuse_links(&bucket_dir, &obj, false)?;
            f(&Target { obj: &obj, bucket_dir, path })
        })
        .await
    }
}

#[async_trait]
impl Objects for DirObjects {
    async fn head(&self, obj: &ObjectRef) -> PortResult<Option<ObjectMeta>> {
        self.with_target(obj, store::head).await
    }

    async fn get(&self, obj: &ObjectRef) -> PortResult<Vec<u8>> {
        self.with_target(obj, |t| store::read(t, None)).await
    }

    async fn get_range(&self, obj: &ObjectRef, range: Range<u64>) -> PortResult<Vec<u8>> {
        self.with_target(obj, move |t| store::read(t, Some((range.start, range.end)))).await
    }

    async fn put(&self, obj: &ObjectRef, body: Vec<u8>) -> PortResult<ObjectMeta> {
        let fsync = self.fsync;
        self.with_target(obj, move |t| store::write(t, fsync, store::write_body(&body))).await
    }

    async fn put_file(&self, obj: &ObjectRef, path: &Path) -> PortResult<ObjectMeta> {
        let (fsync, source) = (self.fsync, path.to_path_buf());
        self.with_target(obj, move |t| store::write(t, fsync, store::copy_from(&source))).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        let (objects, skipped) = self.list_skipped(bucket, prefix).await?;
        for s in skipped {
            tracing::debug!(key = %s.key, reason = ?s.reason, "not an object");
        }
        Ok(objects)
    }

    async fn delete(&self, obj: &ObjectRef) -> PortResult<()> {
        self.with_target(obj, store::delete).await
    }

    async fn concat(&self, parts: &[ObjectRef], dest: &ObjectRef) -> PortResult<ObjectMeta> {
        let mut sources = Vec::with_capacity(parts.len());
        for part in parts {
            let (bucket_dir, path) = key::locate(&self.root, part)?;
            sources.push((part.clone(), bucket_dir, path));
        }
        let fsync = self.fsync;
        self.with_target(dest, move |t| store::write(t, fsync, store::concat_from(&sources))).await
    }
}
