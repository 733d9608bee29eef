//! Object metadata from file metadata, and listing a bucket directory: a
//! listing holds regular files only, and says which entries it left out
//! (symbolic links, names that are not UTF-8: [`Skipped`]).

use std::{
    fs::{self, Metadata},
    io,
    os::unix::fs::MetadataExt,
    path::Path,
    time::UNIX_EPOCH,
};

use sha2::{Digest, Sha256};

use super::{
    key::TMP_DIR,
    links::{SkipReason, Skipped},
};
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

/// Every object in `bucket_dir` whose key starts with `prefix`, sorted by key,
/// and the entries under `prefix` that are not objects, sorted too.
pub(super) fn list(bucket_dir: &Path, prefix: &str) -> Result<(Vec<ObjectMeta>, Vec<Skipped>), PortError> {
    // Start at the deepest directory the prefix names, when it names one.
    let (mut start, mut start_key) = (bucket_dir.to_path_buf(), String::new());
    if let Some((dir, _)) = prefix.rsplit_once('/') {
        if super::key::check_key(dir).is_ok() {
            start = bucket_dir.join(dir);
            start_key = format!("{dir}/");
        }
    }
    let mut out = Listed::default();
    // A directory the prefix names may itself be a link: never list through it.
    let mut dir = bucket_dir.to_path_buf();
    for (i, seg) in start_key.split('/').filter(|s| !s.is_empty()).enumerate() {
        dir.push(seg);
        if fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            let key = start_key.split('/').take(i + 1).collect::<Vec<_>>().join("/");
            return Ok((Vec::new(), vec![Skipped { key, reason: SkipReason::Symlink }]));
        }
    }
    walk(&start, &start_key, prefix, &mut out)?;
    out.objects.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    out.skipped.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok((out.objects, out.skipped))
}

#[derive(Default)]
struct Listed {
    objects: Vec<ObjectMeta>,
    skipped: Vec<Skipped>,
}

fn walk(dir: &Path, dir_key: &str, prefix: &str, out: &mut Listed) -> Result<(), PortError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(PortError::backend(format!("cannot list {}: {e}", dir.display()))),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(PortError::backend(format!("cannot list {}: {e}", dir.display()))),
        };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            let key = format!("{dir_key}{}", entry.file_name().to_string_lossy());
            if key.starts_with(prefix) {
                out.skipped.push(Skipped { key, reason: SkipReason::NotUtf8 });
            }
            continue;
        };
        if dir_key.is_empty() && name == TMP_DIR {
            continue;
        }
        let key = format!("{dir_key}{name}");
        // `file_type` and `symlink_metadata` never follow a link: a link is never an object.
        let meta = match entry.file_type() {
            Ok(t) if t.is_symlink() => {
                if key.starts_with(prefix) {
                    out.skipped.push(Skipped { key, reason: SkipReason::Symlink });
                }
                continue;
            }
            Ok(t) if t.is_dir() => {
                let sub = format!("{key}/");
                if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                    walk(&entry.path(), &sub, prefix, out)?;
                }
                continue;
            }
            Ok(_) if !key.starts_with(prefix) => continue,
            Ok(_) => fs::symlink_metadata(entry.path()),
            Err(e) => Err(e),
        };
        match meta {
            Ok(meta) if meta.is_file() => out.objects.push(object_meta(&key, &meta)),
            Ok(_) => {
                tracing::debug!(path = %entry.path().display(), "skipping what is not a file (a fifo, a socket)")
            }
            Err(e) if gone(&e) => {}
            Err(e) => return Err(PortError::backend(format!("cannot stat {}: {e}", entry.path().display()))),
        }
    }
    Ok(())
}

/// Whether an error means the path is not there (deleted meanwhile, or a parent is a file).
pub(super) fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}
