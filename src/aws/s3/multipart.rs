//! Multipart upload of a large local file: parts read from the file at their
//! offsets, [`PARTS_IN_FLIGHT`] uploading at a time, the upload completed with
//! every part's ETag — or aborted when anything fails, so no invisible parts
//! are left behind to be billed.

use std::path::{Path, PathBuf};

use aws_sdk_s3::{
    primitives::{ByteStream, Length},
    types::{CompletedMultipartUpload, CompletedPart},
    Client,
};
use tokio::task::JoinSet;

use super::etag;
use crate::{
    aws::error::port_error,
    error::{PortError, PortResult},
    objects::ObjectRef,
};

/// Files above this size are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 8 * MIB;
/// Size of each part (the last one may be smaller); larger when a file would need over [`MAX_PARTS`].
pub const PART_SIZE: u64 = 8 * MIB;
/// Most parts S3 accepts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// Largest object S3 stores (5 TiB).
pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * MIB;
/// Parts uploading at once.
pub const PARTS_IN_FLIGHT: usize = 4;
const MIB: u64 = 1024 * 1024;

/// The part size for a file of `size` bytes: [`PART_SIZE`], or whole MiBs so
/// that the file fits in [`MAX_PARTS`] parts.
pub fn part_size(size: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(PART_SIZE)
}

/// The (offset, length) of each part of a file of `size` bytes.
pub fn parts(size: u64) -> Vec<(u64, u64)> {
    let step = part_size(size);
    (0..size.div_ceil(step)).map(|i| (i * step, step.min(size - i * step))).collect()
}

/// Uploads `path` (`size` bytes) to `obj` in parts; returns the object's ETag.
/// `sha256`, when given, becomes the object's `sha256` user metadata.
pub(super) async fn upload(
    client: &Client,
    obj: &ObjectRef,
    path: &Path,
    size: u64,
    sha256: Option<&str>,
) -> PortResult<String> {
    if size > MAX_OBJECT_BYTES {
        return Err(PortError::invalid(format!(
            "{} is {size} bytes, over s3's largest object of {MAX_OBJECT_BYTES} bytes: split it into several objects",
            path.display()
        )));
    }
    let what = format!("s3 multipart upload of {} to {obj}", path.display());
    let mut create = client.create_multipart_upload().bucket(&obj.bucket).key(&obj.key);
    if let Some(sha) = sha256 {
        create = create.metadata(super::SHA256_METADATA, sha);
    }
    let created = create.send().await.map_err(|e| port_error(&what, e))?;
    let Some(upload_id) = created.upload_id else {
        return Err(PortError::backend(format!("{what}: CreateMultipartUpload returned no upload id")));
    };
    match upload_parts(client, obj, path, size, &upload_id, &what).await {
        Ok(etag) => Ok(etag),
        Err(e) => {
            // Best effort: the upload failed either way, and S3 lifecycle rules
            // (AbortIncompleteMultipartUpload) catch an abort that fails too.
            let aborted = client
                .abort_multipart_upload()
                .bucket(&obj.bucket)
                .key(&obj.key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(abort) = aborted {
                tracing::warn!(upload_id, error = %port_error(&what, abort), "could not abort the multipart upload");
            }
            Err(e)
        }
    }
}

async fn upload_parts(
    client: &Client,
    obj: &ObjectRef,
    path: &Path,
    size: u64,
    upload_id: &str,
    what: &str,
) -> PortResult<String> {
    let mut tasks = JoinSet::new();
    let mut done = Vec::new();
    for (i, (offset, length)) in parts(size).into_iter().enumerate() {
        if tasks.len() >= PARTS_IN_FLIGHT {
            done.push(joined(tasks.join_next().await)?);
        }
        let part = Part {
            client: client.clone(),
            obj: obj.clone(),
            path: path.to_path_buf(),
            upload_id: upload_id.to_owned(),
            number: i as i32 + 1,
            offset,
            length,
            what: what.to_owned(),
        };
        tasks.spawn(part.send());
    }
    while let Some(next) = tasks.join_next().await {
        done.push(joined(Some(next))?);
    }
    done.sort_by_key(|p| p.part_number);
    let out = client
        .complete_multipart_upload()
        .bucket(&obj.bucket)
        .key(&obj.key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .map_err(|e| port_error(what, e))?;
    Ok(etag(out.e_tag.as_deref()))
}

fn joined(
    next: Option<Result<PortResult<CompletedPart>, tokio::task::JoinError>>,
) -> PortResult<CompletedPart> {
    match next {
        Some(Ok(part)) => part,
        Some(Err(e)) => Err(PortError::backend(format!("a part upload task failed: {e}"))),
        None => Err(PortError::backend("no part upload was running")),
    }
}

struct Part {
    client: Client,
    obj: ObjectRef,
    path: PathBuf,
    upload_id: String,
    number: i32,
    offset: u64,
    length: u64,
    what: String,
}

impl Part {
    async fn send(self) -> PortResult<CompletedPart> {
        let body = ByteStream::read_from()
            .path(&self.path)
            .offset(self.offset)
            .length(Length::Exact(self.length))
            .build()
            .await
            .map_err(|e| {
                PortError::backend(format!("{}: cannot read part {}: {e}", self.what, self.number))
            })?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.obj.bucket)
            .key(&self.obj.key)
            .upload_id(&self.upload_id)
            .part_number(self.number)
            .content_length(self.length as i64)
            .body(body)
            .send()
            .await
            .map_err(|e| port_error(&format!("{} (part {})", self.what, self.number), e))?;
        Ok(CompletedPart::builder()
            .part_number(self.number)
            .set_e_tag(out.e_tag)
            .set_checksum_crc32(out.checksum_crc32)
            .set_checksum_crc32_c(out.checksum_crc32_c)
            .set_checksum_crc64_nvme(out.checksum_crc64_nvme)
            .set_checksum_sha1(out.checksum_sha1)
            .set_checksum_sha256(out.checksum_sha256)
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_exactly() {
        let size = 12 * MIB + 123;
        let p = parts(size);
        assert_eq!(p, vec![(0, 8 * MIB), (8 * MIB, 4 * MIB + 123)]);
        assert_eq!(parts(16 * MIB).len(), 2);
        assert_eq!(parts(16 * MIB + 1).last(), Some(&(16 * MIB, 1)));
    }

    #[test]
    fn huge_files_get_larger_parts_within_the_part_limit() {
        let size = 200 * 1024 * MIB; // 200 GiB
        let step = part_size(size);
        assert_eq!(step % MIB, 0);
        assert!(step > PART_SIZE);
        let p = parts(size);
        assert!(p.len() as u64 <= MAX_PARTS, "{} parts", p.len());
        assert_eq!(p.iter().map(|(_, l)| l).sum::<u64>(), size);
        assert_eq!(part_size(MAX_OBJECT_BYTES).div_ceil(MIB) * MIB, part_size(MAX_OBJECT_BYTES));
        assert!(parts(MAX_OBJECT_BYTES).len() as u64 <= MAX_PARTS);
    }
}
