//! S3 event notifications: one run per created object.

use aws_lambda_events::s3::S3EventRecord;
use batchfan::{
    objects::ObjectRef,
    run::{TriggerEvent, TriggerSource},
    spec::PipelineSpec,
};
use percent_encoding::percent_decode_str;

use crate::DispatchError;

/// Event names that start a run (`ObjectCreated:Put`, `:Post`, `:Copy`, `:CompleteMultipartUpload`).
pub const CREATED_PREFIX: &str = "ObjectCreated:";

/// The trigger one record starts, or why it starts none.
pub fn trigger_of(spec: &PipelineSpec, record: &S3EventRecord) -> Result<TriggerEvent, DispatchError> {
    let name = record.event_name.as_deref().unwrap_or("");
    if !name.starts_with(CREATED_PREFIX) {
        return Err(DispatchError::BadEvent(format!(
            "S3 event {name:?} is not an object creation: configure the bucket notification for s3:ObjectCreated:* only"
        )));
    }
    let object = &record.s3.object;
    let bucket = record
        .s3
        .bucket
        .name
        .as_deref()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| DispatchError::BadEvent(format!("S3 record {name} has no bucket name")))?;
    let raw_key = object.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| {
        DispatchError::BadEvent(format!("S3 record {name} in bucket {bucket} has no object key"))
    })?;
    let key = decode_key(raw_key)?;
    let Some(t) = &spec.triggers.s3 else {
        return Err(DispatchError::BadEvent(format!(
            "pipeline {} has no [triggers.s3]: add one for bucket {bucket}, or remove the bucket notification",
            spec.name
        )));
    };
    if t.bucket != bucket || !key.starts_with(&t.prefix) || !key.ends_with(&t.suffix) {
        return Err(DispatchError::BadEvent(format!(
            "s3://{bucket}/{key} is outside pipeline {}'s trigger s3://{}/{}*{}: narrow the bucket notification's filter to match",
            spec.name, t.bucket, t.prefix, t.suffix
        )));
    }
    let version = object
        .version_id
        .as_deref()
        .filter(|v| !v.is_empty() && *v != "null")
        .or(object.sequencer.as_deref())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            DispatchError::BadEvent(format!(
                "S3 record for s3://{bucket}/{key} has neither versionId nor sequencer: it is not a real S3 notification"
            ))
        })?;
    Ok(TriggerEvent {
        pipeline: spec.name.clone(),
        source: TriggerSource::S3,
        idempotency_key: format!("s3:{bucket}/{key}@{version}"),
        input: Some(ObjectRef::new(bucket, key)),
        params: Default::default(),
    })
}

/// S3 notification keys are URL-encoded, with `+` for a space.
pub fn decode_key(raw: &str) -> Result<String, DispatchError> {
    let plus_as_space = raw.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| DispatchError::BadEvent(format!("S3 object key {raw:?} does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("in/orders+2026%2D11%2D23.csv").unwrap(), "in/orders 2026-11-23.csv");
        assert_eq!(decode_key("a%2Bb.csv").unwrap(), "a+b.csv");
        assert_eq!(decode_key("caf%C3%A9.csv").unwrap(), "café.csv");
        assert!(decode_key("bad%FF.csv").is_err());
    }
}
