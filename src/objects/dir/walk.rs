//! Object metadata from file metadata, and listing a bucket directory.

use std::{
    fs::{self, Metadata},
    io,
    os::unix::fs::MetadataExt,
    path::Path,
    time::UNIX_EPOCH,
};

use sha2::{Digest, Sha256};

use super::key::TMP_DIR;
use crate::{error::PortError, objects::ObjectMeta};

/// An object's metadata. The etag hashes size, modification time (ns) and
/// inode, so it changes whenever the content is replaced (every put is a new
/// file) and, for files edited in place, whenever the mtime moves.
pub(super) fn object_meta(key: &str, meta: &Metadata) -> ObjectMeta {
    let mut hash = Sha256::new();
    for part in [meta.len(), meta.mtime() as u64, meta.mtime_nsec() as u64, meta.ino(), meta.dev()] {
        hash.update(part.to_le_bytes());
    }
    let last_modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    ObjectMeta {
        key: key.to_owned(),
        size: meta.len(),
        etag: hex::encode(&hash.finalize()[..16]),
        last_modified,
    }
}

/// Every object in `bucket_dir` whose key starts with `prefix`, sorted by key.
pub(super) fn list(bucket_dir: &Path, prefix: &str) -> Result<Vec<ObjectMeta>, PortError> {
    // Start at the deepest directory the prefix names, when it names one.
    let (mut start, mut start_key) = (bucket_dir.to_path_buf(), String::new());
    if let Some((dir, _)) = prefix.rsplit_once('/') {
        if super::key::check_key(dir).is_ok() {
            start = bucket_dir.join(dir);
            start_key = format!("{dir}/");
        }
    }
    let mut out = Vec::new();
    walk(&start, &start_key, prefix, &mut out)?;
    out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn walk(dir: &Path, dir_key: &str, prefix: &str, out: &mut Vec<ObjectMeta>) -> Result<(), PortError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(PortError::Backend(format!("cannot list {}: {e}", dir.display()))),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(PortError::Backend(format!("cannot list {}: {e}", dir.display()))),
        };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(path = %entry.path().display(), "skipping a file whose name is not utf-8");
            continue;
        };
        if dir_key.is_empty() && name == TMP_DIR {
            continue;
        }
        let key = format!("{dir_key}{name}");
        // `metadata` follows symlinks: a link to a file is an object.
        let meta = match entry.file_type() {
            Ok(t) if t.is_dir() => {
                let sub = format!("{key}/");
                if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                    walk(&entry.path(), &sub, prefix, out)?;
                }
                continue;
            }
            Ok(_) if !key.starts_with(prefix) => continue,
            Ok(_) => fs::metadata(entry.path()),
            Err(e) => Err(e),
        };
        match meta {
            Ok(meta) if meta.is_file() => out.push(object_meta(&key, &meta)),
            Ok(_) => tracing::debug!(path = %entry.path().display(), "skipping a link that is not to a file"),
            Err(e) if gone(&e) => {}
            Err(e) => return Err(PortError::Backend(format!("cannot stat {}: {e}", entry.path().display()))),
        }
    }
    Ok(())
}

/// Whether an error means the path is not there (deleted meanwhile, or a parent is a file).
pub(super) fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}
