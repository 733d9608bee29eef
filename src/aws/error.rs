//! Translating AWS SDK errors into [`PortError`]s, naming the resource.
//!
//! Classification goes by the protocol's machine-readable error code and the
//! HTTP status (what the SDK's own retry classifier uses), never by the
//! human message: throttling → [`PortError::Throttled`], a missing table,
//! bucket, key, topic or job → [`PortError::NotFound`], a rejected request →
//! [`PortError::Invalid`], 5xx and transport failures →
//! [`PortError::Unavailable`], anything else → [`PortError::Backend`].

use aws_sdk_dynamodb::{config::http::HttpResponse, error::ProvideErrorMetadata, error::SdkError};

use crate::error::PortError;

/// Error codes AWS services use to ask callers to slow down.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes of a missing resource.
const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "NotFound",
    "NotFoundException",
    "NoSuchUpload",
];

/// Error codes of a request the service rejected as malformed or breaking a rule.
const INVALID: &[&str] = &[
    "ValidationException",
    "ValidationError",
    "InvalidParameter",
    "InvalidParameterException",
    "InvalidParameterValue",
    "InvalidParameterValueException",
    "ClientException",
    "InvalidRequest",
    "InvalidArgument",
    "InvalidBucketName",
    "KeyTooLongError",
    "EntityTooLarge",
    "EntityTooSmall",
    "InvalidPart",
    "InvalidPartOrder",
    "ItemCollectionSizeLimitExceededException",
];

/// What kind of failure an AWS error code and HTTP status mean.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>, message: String) -> PortError {
    let is = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
    if is(THROTTLING) || status == Some(429) {
        PortError::Throttled(message)
    } else if is(NOT_FOUND) || (code.is_none() && status == Some(404)) {
        PortError::NotFound(message)
    } else if is(INVALID) {
        PortError::Invalid(message)
    } else if status.is_some_and(|s| s >= 500) {
        PortError::Unavailable(message)
    } else {
        PortError::Backend(message)
    }
}

/// Translates an SDK error of the call described by `what` (e.g.
/// `dynamodb PutItem on table runs`) into a [`PortError`].
pub(crate) fn port_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let e = ctx.err();
            let code = e.code();
            let detail = match (code, e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                (None, Some(m)) => m.to_owned(),
                (None, None) => format!("http status {status}"),
            };
            classify(code, Some(status), format!("{what}: {detail}"))
        }
        SdkError::TimeoutError(_) => PortError::Unavailable(format!("{what}: timed out")),
        SdkError::DispatchFailure(d) => {
            let why = d.as_connector_error().map_or_else(|| "dispatch failed".to_owned(), |c| c.to_string());
            PortError::Unavailable(format!(
                "{what}: cannot reach the service ({why}): check the endpoint and network"
            ))
        }
        SdkError::ResponseError(_) => {
            PortError::Unavailable(format!("{what}: the response could not be read: {}", display(&err)))
        }
        SdkError::ConstructionFailure(_) => {
            PortError::Invalid(format!("{what}: the request could not be built: {}", display(&err)))
        }
        _ => PortError::Backend(format!("{what}: {}", display(&err))),
    }
}

/// The error with its whole chain of causes.
fn display(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_code_then_status() {
        let c = |code: Option<&str>, status| classify(code, status, "m".into());
        assert_eq!(
            c(Some("ProvisionedThroughputExceededException"), Some(400)),
            PortError::Throttled("m".into())
        );
        assert_eq!(c(Some("TooManyRequestsException"), Some(429)), PortError::Throttled("m".into()));
        assert_eq!(c(None, Some(429)), PortError::Throttled("m".into()));
        assert_eq!(c(Some("ResourceNotFoundException"), Some(400)), PortError::NotFound("m".into()));
        assert_eq!(c(None, Some(404)), PortError::NotFound("m".into()));
        assert_eq!(c(Some("ValidationException"), Some(400)), PortError::Invalid("m".into()));
        assert_eq!(c(Some("InternalServerError"), Some(500)), PortError::Unavailable("m".into()));
        assert_eq!(c(Some("AccessDeniedException"), Some(400)), PortError::Backend("m".into()));
        assert!(c(Some("SlowDown"), Some(503)).retryable());
    }
}
