//! Turning command-line arguments into a validated spec, parameters, an input
//! object and a trigger.

use std::{collections::BTreeMap, os::unix::fs::MetadataExt, path::Path};

use sha2::{Digest, Sha256};

use super::{parse_params, UsageError};
use crate::{
    objects::{dir::DirObjects, ObjectRef, Objects},
    run::{TriggerEvent, TriggerSource},
    spec::{self, PipelineSpec},
};

/// The bucket local input files are linked into.
pub const INPUTS_BUCKET: &str = "batchfan-inputs";

/// Loads a spec, turning its problems into a usage error.
pub fn load_spec(path: &Path) -> Result<PipelineSpec, UsageError> {
    spec::load(path).map_err(|e| UsageError(format!("{e}")))
}

/// Checks `--param`s against the spec and fills in declared defaults.
pub fn resolve_params(spec: &PipelineSpec, raw: &[String]) -> Result<BTreeMap<String, String>, UsageError> {
    spec.resolve_params(parse_params(raw)?).map_err(UsageError)
}

/// An input as given: an object uri, or a local file.
pub struct Input {
    pub object: ObjectRef,
    /// What identifies this content for idempotency (uri + size + mtime, or etag).
    pub identity: String,
}

/// Resolves `--input`: `s3://bucket/key` is an object in the local buckets; any
/// other value is a local file, hard-linked (or copied) into the `batchfan-inputs` bucket.
pub async fn resolve_input(raw: &str, objects: &DirObjects) -> Result<Input, UsageError> {
    if raw.starts_with("s3://") {
        let object: ObjectRef = raw.parse().map_err(UsageError)?;
        let missing = format!(
            "does not exist in the local buckets ({}): put the file there, or pass a local path",
            objects.path_of(&object).display()
        );
        return existing_object(object, objects, &missing).await;
    }
    let file = LocalFile::read(raw, "an s3:// prefix")?;
    let object = ObjectRef::new(INPUTS_BUCKET, format!("{}/{}", file.digest, file.name));
    let target = objects.path_of(&object);
    if !target.exists() {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| UsageError(format!("cannot import input: {e}")))?;
        }
        // A hard link is instant and keeps this content even if the file is replaced later.
        if std::fs::hard_link(&file.canonical, &target).is_err() {
            let tmp = target.with_extension("batchfan-partial");
            std::fs::copy(&file.canonical, &tmp)
                .and_then(|_| std::fs::rename(&tmp, &target))
                .map_err(|e| UsageError(format!("cannot import input {raw:?}: {e}")))?;
        }
    }
    Ok(Input { object, identity: file.identity })
}

/// Resolves `--input` for `--backend aws`: `s3://bucket/key` must exist in S3
/// (or be a prefix ending in `/`); a local file is uploaded (multipart when
/// large) to `s3://{bucket}/inputs/{digest}/{name}` of the run bucket, once.
pub async fn resolve_aws_input(raw: &str, objects: &dyn Objects, bucket: &str) -> Result<Input, UsageError> {
    if raw.starts_with("s3://") {
        let object: ObjectRef = raw.parse().map_err(UsageError)?;
        let missing = format!(
            "does not exist in S3: upload it first, or pass a local path (it is uploaded to s3://{bucket}/inputs/)"
        );
        return existing_object(object, objects, &missing).await;
    }
    let file = LocalFile::read(raw, "an s3:// uri")?;
    let object = ObjectRef::new(bucket, format!("inputs/{}/{}", file.digest, file.name));
    let present =
        objects.head(&object).await.map_err(|e| UsageError(format!("cannot reach {object}: {e}")))?;
    if present.is_none_or(|m| m.size != file.size) {
        objects
            .put_file(&object, &file.canonical)
            .await
            .map_err(|e| UsageError(format!("cannot upload input {raw:?} to {object}: {e}")))?;
    }
    Ok(Input { object, identity: file.identity })
}

/// An input object that must exist (or be a prefix ending in `/`), identified by its etag.
async fn existing_object(
    object: ObjectRef,
    objects: &dyn Objects,
    missing: &str,
) -> Result<Input, UsageError> {
    let identity = match objects.head(&object).await {
        Ok(Some(meta)) => format!("{object}#{}", meta.etag),
        Ok(None) if object.key.ends_with('/') => object.to_string(),
        Ok(None) => return Err(UsageError(format!("input {object} {missing}"))),
        Err(e) => return Err(UsageError(format!("cannot read input {object}: {e}"))),
    };
    Ok(Input { object, identity })
}

/// A local input file: where it is, and what identifies its content.
struct LocalFile {
    canonical: std::path::PathBuf,
    size: u64,
    /// `file://path#size:mtime`: the idempotency identity.
    identity: String,
    /// First 16 hex digits of the identity's SHA-256: the object's folder.
    digest: String,
    name: String,
}

impl LocalFile {
    /// Reads `raw` (a path or `file://` uri); `other` names what else `--input` takes.
    fn read(raw: &str, other: &str) -> Result<LocalFile, UsageError> {
        let path = Path::new(raw.strip_prefix("file://").unwrap_or(raw));
        let meta = std::fs::metadata(path)
            .map_err(|e| UsageError(format!("input {raw:?} cannot be read: {e}: check the path")))?;
        if !meta.is_file() {
            return Err(UsageError(format!("input {raw:?} is not a file: pass a file, or {other}")));
        }
        let canonical = path.canonicalize().map_err(|e| UsageError(format!("input {raw:?}: {e}")))?;
        let identity =
            format!("file://{}#{}:{}:{}", canonical.display(), meta.len(), meta.mtime(), meta.mtime_nsec());
        let digest = hex::encode(Sha256::digest(identity.as_bytes()))[..16].to_string();
        let name = canonical.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
        Ok(LocalFile { canonical, size: meta.len(), identity, digest, name })
    }
}

/// A manual trigger: the same command (spec, input content, params) gives the same key.
pub fn manual_trigger(
    spec: &PipelineSpec,
    input: Option<&Input>,
    params: BTreeMap<String, String>,
    request_id: Option<&str>,
) -> TriggerEvent {
    let key = match request_id {
        Some(id) => format!("request:{id}"),
        None => {
            let mut h = Sha256::new();
            h.update(input.map_or("", |i| i.identity.as_str()));
            for (k, v) in &params {
                h.update(format!("\0{k}={v}"));
            }
            format!("cli:{}", &hex::encode(h.finalize())[..32])
        }
    };
    TriggerEvent {
        pipeline: spec.name.clone(),
        source: TriggerSource::Manual,
        idempotency_key: key,
        input: input.map(|i| i.object.clone()),
        params,
    }
}
