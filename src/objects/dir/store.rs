//! Atomic writes, reads and deletes of object files.
//!
//! A write goes to a temp file in the bucket's hidden [`TMP_DIR`], then is
//! renamed over the object's path, so a reader opens either the old file or
//! the new one, never a part; an open reader keeps reading the version it
//! opened. A temp file left by a crash is never listed.

use std::{
    fs::{self, File},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use super::{
    key::TMP_DIR,
    links::{is_link_error, open_nofollow, opened_inside, refuse_links},
    walk::{gone, object_meta},
};
use crate::{
    error::PortError,
    objects::{ObjectMeta, ObjectRef},
};

/// How many times a write retries the rename when a concurrent delete removes
/// the (then empty) parent directory in between.
const RENAME_ATTEMPTS: usize = 8;

/// Where to put what: the checked bucket directory and object path.
pub(super) struct Target<'a> {
    pub obj: &'a ObjectRef,
    pub bucket_dir: PathBuf,
    pub path: PathBuf,
}

/// Writes an object by filling a temp file (private, created empty; removed
/// unless renamed into place) with `fill`, then renaming it into place.
pub(super) fn write(
    target: &Target<'_>,
    fsync: bool,
    fill: impl FnOnce(&mut File, &Path) -> Result<(), PortError>,
) -> Result<ObjectMeta, PortError> {
    let tmp_dir = target.bucket_dir.join(TMP_DIR);
    fs::create_dir_all(&tmp_dir).map_err(|e| backend("create", &tmp_dir, e))?;
    let mut staged = tempfile::Builder::new()
        .suffix(".tmp")
        .tempfile_in(&tmp_dir)
        .map_err(|e| backend("create a temp file in", &tmp_dir, e))?;
    let path = staged.path().to_owned();
    fill(staged.as_file_mut(), &path)?;
    let file = File::open(&path).map_err(|e| backend("open", &path, e))?;
    if fsync {
        file.sync_all().map_err(|e| backend("sync", &path, e))?;
    }
    // Rename keeps the inode and mtime: this is the object's metadata once in place.
    let meta = file.metadata().map_err(|e| backend("stat", &path, e))?;
    let staged = staged.into_temp_path();
    rename_into_place(&staged, target)?;
    // Renamed: nothing is left to remove.
    let _ = staged.keep();
    Ok(object_meta(&target.obj.key, &meta))
}

fn rename_into_place(tmp: &Path, target: &Target<'_>) -> Result<(), PortError> {
    let conflict = || {
        PortError::invalid(format!(
            "{} conflicts with an object whose key is a prefix of it (or extends it): a directory store cannot hold both a/b and a/b/c, rename one of them",
            target.obj
        ))
    };
    let parent = target.path.parent().unwrap_or(&target.bucket_dir);
    for _ in 0..RENAME_ATTEMPTS {
        match fs::create_dir_all(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists || gone(&e) => return Err(conflict()),
            Err(e) => return Err(backend("create", parent, e)),
        }
        match fs::rename(tmp, &target.path) {
            Ok(()) => return Ok(()),
            // A delete pruned the empty parent meanwhile: create it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EISDIR | libc::ENOTEMPTY | libc::EEXIST)) => {
                return Err(conflict())
            }
            Err(e) => return Err(backend("rename into", &target.path, e)),
        }
    }
    Err(PortError::unavailable(format!("{} kept disappearing while being written: retry", target.obj)))
}

/// Reads bytes `start..end` of an object (the whole object when `range` is `None`).
pub(super) fn read(target: &Target<'_>, range: Option<(u64, u64)>) -> Result<Vec<u8>, PortError> {
    let not_found = || PortError::not_found(format!("object {} does not exist", target.obj));
    let mut file = match open_nofollow(&target.path) {
        Ok(file) => file,
        Err(e) if gone(&e) => return Err(not_found()),
        Err(e) if is_link_error(&e) => {
            return Err(refuse_links(&target.bucket_dir, target.obj, true).err().unwrap_or_else(not_found))
        }
        Err(e) => return Err(backend("open", &target.path, e)),
    };
    opened_inside(&file, &target.bucket_dir, target.obj)?;
    let meta = file.metadata().map_err(|e| backend("stat", &target.path, e))?;
    if !meta.is_file() {
        return Err(not_found());
    }
    let size = meta.len();
    let (start, end) = range.unwrap_or((0, size));
    let (start, end) = (start.min(size), end.min(size));
    let len = end.saturating_sub(start);
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.seek(SeekFrom::Start(start)).map_err(|e| backend("seek", &target.path, e))?;
    file.take(len).read_to_end(&mut buf).map_err(|e| backend("read", &target.path, e))?;
    Ok(buf)
}

/// The object's metadata, `None` when there is no such file; an error naming
/// the link when it is a symbolic link.
pub(super) fn head(target: &Target<'_>) -> Result<Option<ObjectMeta>, PortError> {
    match fs::symlink_metadata(&target.path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(refuse_links(&target.bucket_dir, target.obj, true)
            .err()
            .unwrap_or_else(|| PortError::not_found(format!("object {} does not exist", target.obj)))),
        Ok(meta) if meta.is_file() => Ok(Some(object_meta(&target.obj.key, &meta))),
        Ok(_) => Ok(None),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(backend("stat", &target.path, e)),
    }
}

/// Deletes the object's file (if any), then its parent directories up to the bucket while empty.
pub(super) fn delete(target: &Target<'_>) -> Result<(), PortError> {
    match fs::remove_file(&target.path) {
        Ok(()) => {}
        Err(e) if gone(&e) || e.raw_os_error() == Some(libc::EISDIR) => return Ok(()),
        Err(e) => return Err(backend("delete", &target.path, e)),
    }
    let mut dir = target.path.parent();
    while let Some(d) = dir.filter(|d| *d != target.bucket_dir && d.starts_with(&target.bucket_dir)) {
        // Fails (and stops) at the first directory that is not empty.
        if fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// Copies a local file into a temp path (for `put_file`). The copy is the
/// owner's only (0600), whatever the mode of the source (which `fs::copy` keeps).
pub(super) fn copy_from(source: &Path) -> impl FnOnce(&mut File, &Path) -> Result<(), PortError> + '_ {
    use std::os::unix::fs::PermissionsExt;
    move |_, tmp| match fs::copy(source, tmp) {
        Ok(_) => fs::set_permissions(tmp, fs::Permissions::from_mode(0o600)).map_err(|e| {
            PortError::backend(format!("cannot make {} private: {e}", tmp.display())).caused_by(e)
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !source.exists() => Err(PortError::not_found(
            format!("local file {} does not exist: pass the path of an existing file", source.display()),
        )),
        Err(e) => Err(PortError::backend(format!("cannot copy {} into the bucket: {e}", source.display()))),
    }
}

/// Appends each part's file to a temp path, in order (for `concat`):
/// `io::copy` between files copies in the kernel (`copy_file_range`).
pub(super) fn concat_from(
    parts: &[(ObjectRef, PathBuf, PathBuf)],
) -> impl FnOnce(&mut File, &Path) -> Result<(), PortError> + '_ {
    move |out, _| {
        for (obj, bucket_dir, path) in parts {
            refuse_links(bucket_dir, obj, false)?;
            let mut part = match open_nofollow(path) {
                Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => f,
                Ok(_) => return Err(PortError::not_found(format!("object {obj} does not exist"))),
                Err(e) if gone(&e) => {
                    return Err(PortError::not_found(format!("object {obj} does not exist")))
                }
                Err(e) if is_link_error(&e) => {
                    return Err(refuse_links(bucket_dir, obj, true)
                        .err()
                        .unwrap_or_else(|| PortError::not_found(format!("object {obj} does not exist"))))
                }
                Err(e) => return Err(backend("open", path, e)),
            };
            opened_inside(&part, bucket_dir, obj)?;
            io::copy(&mut part, out).map_err(|e| backend("copy", path, e))?;
        }
        Ok(())
    }
}

/// Writes a body into a temp path (for `put`).
pub(super) fn write_body(body: &[u8]) -> impl FnOnce(&mut File, &Path) -> Result<(), PortError> + '_ {
    move |f, tmp| f.write_all(body).map_err(|e| backend("write", tmp, e))
}

fn backend(what: &str, path: &Path, e: io::Error) -> PortError {
    PortError::backend(format!("cannot {what} {}: {e}", path.display()))
}
