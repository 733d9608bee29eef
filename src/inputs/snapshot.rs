//! Input snapshots: a local `--input` file becomes an immutable object named
//! after the SHA-256 of its content, so a run (and its resume after a crash)
//! reads exactly the bytes it was planned on, whatever happens to the file.
//!
//! Locally the file is copied into `batchfan-inputs/{sha256}/{name}`: copied
//! in the kernel to a temp file in the bucket's hidden staging directory
//! while another thread hashes what has landed there
//! ([`copy_file_hashing`]), then renamed into place; the object is named
//! after the hash of the bytes it holds. When that object already exists its content
//! is hashed again rather than trusted for its name. On AWS the file is hashed,
//! then uploaded once to `{run bucket}/inputs/{sha256}/{name}` with the hash
//! in the object's metadata; an object there whose metadata does not match
//! is not trusted either.
//!
//! An existing object that does not hold the content it is named after is
//! refused ([`OnMismatch::Refuse`]: a run reading it would mix contents),
//! unless the caller asked for a fresh run ([`OnMismatch::Replace`]).

use std::{
    fs::File,
    io::{self, Read, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use super::UsageError;
use crate::{
    objects::{dir::DirObjects, dir::TMP_DIR, ObjectRef, Objects},
    plan::{lines::LineSplitter, LineRange},
};

/// Bytes read (and hashed, and written) at a time.
const CHUNK: usize = 1 << 20;
/// Bytes [`copy_file_hashing`] copies before it hands them to the hashing thread.
const COPY_CHUNK: u64 = 8 << 20;

/// What to do with an existing snapshot object that does not hold the content it is named after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMismatch {
    /// Refuse with a usage error naming the object and the fix.
    Refuse,
    /// Put the file's content back in its place (a fresh run).
    Replace,
}

/// A local input file, opened.
pub struct LocalFile {
    pub path: PathBuf,
    /// The file's name, the last segment of its snapshot's key.
    pub name: String,
    pub size: u64,
    file: File,
    /// (inode, size, mtime in ns): a file rewritten meanwhile changes one of them.
    stamp: (u64, u64, i128),
}

impl LocalFile {
    /// Opens `raw` (a path or `file://` uri); `other` names what else `--input` takes.
    pub fn open(raw: &str, other: &str) -> Result<LocalFile, UsageError> {
        let path = Path::new(raw.strip_prefix("file://").unwrap_or(raw));
        let unreadable =
            |e: io::Error| UsageError(format!("input {raw:?} cannot be read: {e}: check the path"));
        let file = File::open(path).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(UsageError(format!("input {raw:?} is not a file: pass a file, or {other}")));
        }
        let canonical = path.canonicalize().map_err(unreadable)?;
        let name = canonical
            .file_name()
            .map(|n| n.to_string_lossy().replace(['\0', '/'], "_"))
            .filter(|n| !n.starts_with('.') && n.len() <= 200)
            .unwrap_or_else(|| "input".to_owned());
        Ok(LocalFile { path: canonical, name, size: meta.len(), file, stamp: stamp(&meta) })
    }

    /// Whether the file was rewritten since it was opened.
    fn changed(&self) -> bool {
        !matches!(std::fs::metadata(&self.path), Ok(m) if stamp(&m) == self.stamp)
    }
}

fn stamp(m: &std::fs::Metadata) -> (u64, u64, i128) {
    (m.ino(), m.len(), i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()))
}

/// A snapshot taken: its object and the SHA-256 (hex) of its content.
pub struct Snapshot {
    pub object: ObjectRef,
    pub sha256: String,
    /// The record ranges found while it was hashed, when asked ([`LineScan`])
    /// and the scan could finish (an open quote is left for the planner to report).
    pub lines: Option<Scanned>,
}

/// What to find in a snapshot while it is hashed: the ranges of the `lines`
/// planner, so that planning the run does not read the file again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineScan {
    pub lines_per_item: u64,
    pub header: bool,
}

/// Ranges found by a [`LineScan`], and the bytes scanned.
#[derive(Debug, Clone, PartialEq)]
pub struct Scanned {
    pub ranges: Vec<LineRange>,
    pub bytes: u64,
}

/// Copies `file` into `bucket` of the local store as `{sha256}/{name}` (see the module docs).
/// With `scan`, the snapshot's record ranges are found on the way.
pub async fn import_local(
    file: LocalFile,
    objects: &DirObjects,
    bucket: &str,
    on_mismatch: OnMismatch,
    scan: Option<LineScan>,
) -> Result<Snapshot, UsageError> {
    let root = objects.root().join(bucket);
    let bucket = bucket.to_owned();
    tokio::task::spawn_blocking(move || import_blocking(file, &root, &bucket, on_mismatch, scan))
        .await
        .map_err(|e| UsageError(format!("cannot import input: {e}")))?
}

fn import_blocking(
    file: LocalFile,
    bucket_dir: &Path,
    bucket: &str,
    on_mismatch: OnMismatch,
    scan: Option<LineScan>,
) -> Result<Snapshot, UsageError> {
    let source = file.path.display().to_string();
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        UsageError(format!("cannot import input {source} into bucket {bucket}: {what}: {e}"))
    };
    let staging = bucket_dir.join(TMP_DIR);
    std::fs::create_dir_all(&staging).map_err(|e| failed("create the staging directory", &e))?;
    let tmp = tempfile::Builder::new()
        .prefix("input-")
        .suffix(".tmp")
        .tempfile_in(&staging)
        .map_err(|e| failed("create a temp file", &e))?;
    let mut splitter = scan.map(|s| LineSplitter::new(s.lines_per_item, s.header));
    let (sha256, bytes) = copy_file_hashing_scanning(&file.file, tmp.as_file(), splitter.as_mut())
        .map_err(|e| failed("copy", &e))?;
    let lines = splitter.and_then(|s| s.finish().ok()).map(|ranges| Scanned { ranges, bytes });
    let object = ObjectRef::new(bucket, format!("{sha256}/{}", file.name));
    let target = bucket_dir.join(&object.key);
    if target.exists() {
        let held = hash_file(&target).map_err(|e| failed("read the existing snapshot", &e))?;
        if held == sha256 {
            return Ok(Snapshot { object, sha256, lines });
        }
        if on_mismatch == OnMismatch::Refuse {
            return Err(mismatch(&object, &format!("its bytes now hash to sha256 {}", &held[..16])));
        }
        tracing::warn!(%object, held = %held, "snapshot did not hold the content it is named after: replaced");
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed("create its directory", &e))?;
    }
    tmp.persist(&target).map_err(|e| failed("rename it into place", &e.error))?;
    Ok(Snapshot { object, sha256, lines })
}

/// The refusal when `object` no longer holds the content its name says (`why`).
pub fn mismatch(object: &ObjectRef, why: &str) -> UsageError {
    UsageError(format!(
        "input snapshot {object} no longer holds the content it is named after ({why}): a run resumed from it would mix contents, so batchfan refuses to use it; pass --fresh to start a new run from your file (the snapshot is copied again), or restore the object"
    ))
}

/// Copies file `from` to file `to` (both at their start) and returns the
/// SHA-256 (hex) of what `to` then holds.
///
/// A thread copies in the kernel (`copy_file_range`, through [`io::copy`],
/// which falls back to reading and writing where the kernel cannot),
/// [`COPY_CHUNK`] at a time, while this one reads back and hashes each chunk
/// once it has landed in `to`. So the hash is of the snapshot's own bytes even
/// if the source changes meanwhile, and the copy and the hash overlap: about
/// half the time of [`copy_hashing`] on a large file, whose read, hash and
/// write follow one another.
pub fn copy_file_hashing(from: &File, to: &File) -> io::Result<String> {
    copy_file_hashing_scanning(from, to, None).map(|(sha256, _)| sha256)
}

/// [`copy_file_hashing`], also feeding what lands in `to`, in order, to
/// `splitter` on a third thread (it reads the copy as the hashing thread
/// does); returns the hash and the bytes copied.
pub fn copy_file_hashing_scanning(
    from: &File,
    to: &File,
    splitter: Option<&mut LineSplitter>,
) -> io::Result<(String, u64)> {
    let (copied, landed) = std::sync::mpsc::channel::<u64>();
    let (copied_for_scan, landed_for_scan) = std::sync::mpsc::channel::<u64>();
    let scanning = splitter.is_some();
    std::thread::scope(|scope| {
        let copier = scope.spawn(move || -> io::Result<()> {
            let (mut from, mut to, mut total) = (from, to, 0u64);
            loop {
                let n = io::copy(&mut Read::take(&mut from, COPY_CHUNK), &mut to)?;
                if n == 0 {
                    return Ok(());
                }
                total += n;
                if scanning {
                    let _ = copied_for_scan.send(total);
                }
                if copied.send(total).is_err() {
                    return Ok(()); // the hashing side failed and returned
                }
            }
        });
        let scanner = splitter.map(|s| scope.spawn(|| read_back(to, landed_for_scan, |b| s.feed(b))));
        let mut hasher = Sha256::new();
        let hashed = read_back(to, landed, |b| hasher.update(b));
        copier.join().map_err(|_| io::Error::other("the copying thread panicked"))??;
        if let Some(scanner) = scanner {
            scanner.join().map_err(|_| io::Error::other("the scanning thread panicked"))??;
        }
        Ok((hex::encode(hasher.finalize()), hashed?))
    })
}

/// Reads `file` back a chunk at a time as it lands, up to each offset
/// received, handing each chunk to `each`; returns the bytes read.
fn read_back(
    file: &File,
    landed: std::sync::mpsc::Receiver<u64>,
    mut each: impl FnMut(&[u8]),
) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    for upto in landed {
        while done < upto {
            let n = (upto - done).min(CHUNK as u64) as usize;
            file.read_exact_at(&mut buf[..n], done)?;
            each(&buf[..n]);
            done += n as u64;
        }
    }
    Ok(done)
}

/// Copies `from` to `to` in one pass, hashing what is written; returns the SHA-256 (hex).
pub fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    to.flush()?;
    Ok(hex::encode(hasher.finalize()))
}

/// The SHA-256 (hex) of a file's content.
pub fn hash_file(path: &Path) -> io::Result<String> {
    copy_hashing(&mut File::open(path)?, &mut io::sink())
}

/// Uploads `file` to `bucket` as `inputs/{sha256}/{name}` with its hash in the
/// object's metadata, unless an object there already records that hash.
pub async fn upload_aws(
    file: LocalFile,
    objects: &dyn Objects,
    bucket: &str,
    on_mismatch: OnMismatch,
) -> Result<Snapshot, UsageError> {
    let path = file.path.clone();
    let (file, sha256) = tokio::task::spawn_blocking(move || {
        let mut file = file;
        let sha = copy_hashing(&mut file.file, &mut io::sink());
        (file, sha)
    })
    .await
    .map_err(|e| UsageError(format!("cannot read input {}: {e}", path.display())))?;
    let sha256 = sha256.map_err(|e| UsageError(format!("cannot read input {}: {e}", path.display())))?;
    let object = ObjectRef::new(bucket, format!("inputs/{sha256}/{}", file.name));
    let present =
        objects.head_sha256(&object).await.map_err(|e| UsageError(format!("cannot reach {object}: {e}")))?;
    match present {
        Some((meta, Some(held))) if held == sha256 && meta.size == file.size => {
            return Ok(Snapshot { object, sha256, lines: None })
        }
        Some((meta, held)) if on_mismatch == OnMismatch::Refuse => {
            let why = match held {
                Some(h) => {
                    format!("its metadata records sha256 {}, size {}", &h[..h.len().min(16)], meta.size)
                }
                None => format!("it records no sha256 (size {})", meta.size),
            };
            return Err(mismatch(&object, &why));
        }
        _ => {}
    }
    objects
        .put_file_sha256(&object, &file.path, &sha256)
        .await
        .map_err(|e| UsageError(format!("cannot upload input {} to {object}: {e}", file.path.display())))?;
    // Hashed, then read again to upload: a file rewritten in between would
    // leave other bytes under this name. Writers change the mtime (assumed).
    if file.changed() {
        let _ = objects.delete(&object).await;
        return Err(UsageError(format!(
            "input {} changed while it was being uploaded: run the command again once the file is complete",
            file.path.display()
        )));
    }
    Ok(Snapshot { object, sha256, lines: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_hashing_writes_every_byte_and_hashes_them() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let sha = copy_hashing(&mut data.as_slice(), &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(sha, hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn copy_file_hashing_copies_every_byte_and_hashes_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        // Two whole copy chunks and part of a third; and an empty file.
        for len in [2 * COPY_CHUNK as usize + 12_345, 0] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
            std::fs::write(&src, &data).unwrap();
            let to = File::options().read(true).write(true).create(true).truncate(true).open(&dst).unwrap();
            let sha = copy_file_hashing(&File::open(&src).unwrap(), &to).unwrap();
            assert_eq!(std::fs::read(&dst).unwrap(), data);
            assert_eq!(sha, hex::encode(Sha256::digest(&data)));
        }
    }

    /// The ranges found on the way are those of the whole copy, across copy
    /// and read chunks, quoted newlines included; and the hash is unchanged.
    #[test]
    fn copying_can_find_the_line_ranges_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("id,name\n");
        let mut n = 0;
        while text.len() < 2 * COPY_CHUNK as usize + 3 * CHUNK + 77 {
            text.push_str(&match n % 997 {
                0 => format!("{n},\"two\nlines\"\n"),
                _ => format!("{n},row number {n}\n"),
            });
            n += 1;
        }
        let data = text.into_bytes();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::write(&src, &data).unwrap();
        let to = File::options().read(true).write(true).create(true).truncate(true).open(&dst).unwrap();
        let mut splitter = LineSplitter::new(30_000, true);
        let (sha, bytes) =
            copy_file_hashing_scanning(&File::open(&src).unwrap(), &to, Some(&mut splitter)).unwrap();
        assert_eq!((sha, bytes), (hex::encode(Sha256::digest(&data)), data.len() as u64));
        let mut whole = LineSplitter::new(30_000, true);
        whole.feed(&data);
        let want = whole.finish().unwrap();
        assert!(want.len() > 10, "{} ranges", want.len());
        assert_eq!(splitter.finish().unwrap(), want);
    }
}
