//! Turning what a user asks for — command-line arguments, or the same fields
//! of a request to `serve` — into a validated spec, parameters, an input
//! object and a trigger.

use std::{collections::BTreeMap, path::Path};

use sha2::{Digest, Sha256};

pub mod snapshot;

use self::snapshot::LocalFile;
pub use self::snapshot::OnMismatch;
use crate::{
    objects::{dir::DirObjects, ObjectRef, Objects},
    run::{RunRecord, RunStore, TriggerEvent, TriggerSource},
    spec::{self, PipelineSpec},
};

/// An error in what the user asked (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses `k=v` parameters.
pub fn parse_params(raw: &[String]) -> Result<Vec<(String, String)>, UsageError> {
    raw.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| UsageError(format!("parameter {p:?} is not k=v: write --param name=value")))
        })
        .collect()
}

/// The bucket local input files are copied into (see [`snapshot`]).
pub const INPUTS_BUCKET: &str = "batchfan-inputs";

/// Loads a spec, turning its problems into a usage error.
pub fn load_spec(path: &Path) -> Result<PipelineSpec, UsageError> {
    spec::load(path).map_err(|e| UsageError(format!("{e}")))
}

/// Checks `--param`s against the spec and fills in declared defaults.
pub fn resolve_params(spec: &PipelineSpec, raw: &[String]) -> Result<BTreeMap<String, String>, UsageError> {
    spec.resolve_params(parse_params(raw)?).map_err(UsageError)
}

/// An input as given: an object uri, or a local file's snapshot.
pub struct Input {
    pub object: ObjectRef,
    /// What identifies this content for idempotency: `sha256:{hex}` of a
    /// local file's content, or `{uri}#{etag}` of an object.
    pub identity: String,
}

/// Resolves `--input`: `s3://bucket/key` is an object in the local buckets; any
/// other value is a local file, copied into the `batchfan-inputs` bucket as an
/// immutable snapshot named after its content (an existing snapshot that no
/// longer holds that content is refused: see [`resolve_input_with`]).
pub async fn resolve_input(raw: &str, objects: &DirObjects) -> Result<Input, UsageError> {
    resolve_input_with(raw, objects, OnMismatch::Refuse).await
}

/// [`resolve_input`], choosing what happens to a snapshot that no longer
/// holds the content it is named after (`batchfan run --fresh` replaces it).
pub async fn resolve_input_with(
    raw: &str,
    objects: &DirObjects,
    on_mismatch: OnMismatch,
) -> Result<Input, UsageError> {
    resolve_input_scanning(raw, objects, on_mismatch, None).await
}

/// [`resolve_input_with`]; a local file's snapshot is also scanned for the
/// `lines` planner's ranges (`scan`) while it is hashed, and the planner is
/// handed them ([`crate::plan::lines::remember_scan`]) instead of reading the
/// snapshot again.
pub async fn resolve_input_scanning(
    raw: &str,
    objects: &DirObjects,
    on_mismatch: OnMismatch,
    scan: Option<snapshot::LineScan>,
) -> Result<Input, UsageError> {
    if raw.starts_with("s3://") {
        let object: ObjectRef = raw.parse().map_err(UsageError)?;
        let missing = format!(
            "does not exist in the local buckets ({}): put the file there, or pass a local path",
            objects.path_of(&object).display()
        );
        return existing_object(object, objects, &missing).await;
    }
    let file = LocalFile::open(raw, "an s3:// prefix")?;
    let snap = snapshot::import_local(file, objects, INPUTS_BUCKET, on_mismatch, scan).await?;
    if let (Some(scan), Some(found)) = (scan, snap.lines) {
        crate::plan::lines::remember_scan(
            &snap.object,
            found.bytes,
            scan.lines_per_item,
            scan.header,
            found.ranges,
        );
    }
    Ok(Input { object: snap.object, identity: format!("sha256:{}", snap.sha256) })
}

/// Resolves `--input` for `--backend aws`: `s3://bucket/key` must exist in S3
/// (or be a prefix ending in `/`); a local file is uploaded (multipart when
/// large) to `s3://{bucket}/inputs/{sha256}/{name}` of the run bucket, once.
pub async fn resolve_aws_input(
    raw: &str,
    objects: &dyn Objects,
    bucket: &str,
    on_mismatch: OnMismatch,
) -> Result<Input, UsageError> {
    if raw.starts_with("s3://") {
        let object: ObjectRef = raw.parse().map_err(UsageError)?;
        let missing = format!(
            "does not exist in S3: upload it first, or pass a local path (it is uploaded to s3://{bucket}/inputs/)"
        );
        return existing_object(object, objects, &missing).await;
    }
    let file = LocalFile::open(raw, "an s3:// uri")?;
    let snap = snapshot::upload_aws(file, objects, bucket, on_mismatch).await?;
    Ok(Input { object: snap.object, identity: format!("sha256:{}", snap.sha256) })
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

/// Refuses to resume (or report) run `trigger.run_id()` when it was started
/// from another input than this command's: with `--request-id` the run is
/// the id's whatever the file holds, so a file changed since would otherwise
/// be ignored silently.
pub async fn check_resume(store: &RunStore<'_>, trigger: &TriggerEvent) -> Result<(), UsageError> {
    let run_id = trigger.run_id();
    match store.get(&run_id).await {
        Ok(Some(rec)) => check_same_input(&rec, trigger),
        Ok(None) => Ok(()),
        Err(e) => Err(UsageError(format!("cannot read run {run_id}: {e}"))),
    }
}

/// [`check_resume`] on a record already read (`run --backend aws` gets it from the planner).
pub fn check_same_input(rec: &RunRecord, trigger: &TriggerEvent) -> Result<(), UsageError> {
    if rec.trigger.input == trigger.input {
        return Ok(());
    }
    let show = |o: &Option<ObjectRef>| o.as_ref().map_or_else(|| "no input".to_owned(), ToString::to_string);
    Err(UsageError(format!(
        "run {} ({}, {}) was started from input {}, but this command's input is now {}: restore the file to resume run {}, or pass --fresh (or another --request-id) to start a new run",
        rec.run_id,
        rec.trigger.idempotency_key,
        rec.state,
        show(&rec.trigger.input),
        show(&trigger.input),
        rec.run_id,
    )))
}

/// A manual trigger: the same command (spec, input content, params) gives the
/// same key; `request_id` (checked by [`crate::trigger::check_request_id`]) names it instead.
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
