//! Translating AWS SDK errors into [`PortError`]s, naming the resource.
//!
//! Classification goes by the protocol's machine-readable error code and the
//! HTTP status, never by the human message, and uses the SDK's own retry
//! classifiers rather than a copy of their lists, so that what the SDK would
//! retry is what our callers retry:
//! - a code in [`THROTTLING_ERRORS`] or HTTP 429 → [`PortError::Throttled`];
//! - a code in [`TRANSIENT_ERRORS`] (`RequestTimeout`, `RequestTimeoutException`),
//!   a status the SDK's [`HttpStatusCodeClassifier`] retries (500, 502, 503,
//!   504: e.g. S3's `InternalError`, DynamoDB's `InternalServerError`), a
//!   timeout, a response that could not be read, and a transport failure the
//!   SDK's `TransientErrorClassifier` retries (a timeout or an I/O error of the
//!   connection) → [`PortError::Unavailable`];
//! - a missing table, bucket, key, topic or job → [`PortError::NotFound`];
//! - a rejected request, or a transport failure the SDK calls the caller's
//!   own (an unusable endpoint) → [`PortError::Invalid`];
//! - anything else → [`PortError::Backend`] (not retried).
//!
//! Both retryable kinds say only that the same request may succeed later.
//! Whether re-sending it is safe is the caller's call: SubmitJob has no
//! idempotency token, so its adapter re-sends only after throttling (the job
//! was not created) and leaves every other retryable error to the submitter's
//! reconcile-by-name path (see `aws::batch`).

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sdk_dynamodb::{config::http::HttpResponse, error::ProvideErrorMetadata, error::SdkError};
use aws_smithy_runtime::client::retries::classifiers::HttpStatusCodeClassifier;
use aws_smithy_runtime_api::{
    client::{
        interceptors::context::{Input, InterceptorContext},
        retries::classifiers::{ClassifyRetry, RetryAction},
    },
    http::StatusCode,
};
use aws_smithy_types::body::SdkBody;

use aws_smithy_runtime_api::client::result::ConnectorError;

use crate::error::PortError;

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

/// Whether the SDK's own HTTP status classifier retries `status`.
fn transient_status(status: u16) -> bool {
    let Ok(code) = StatusCode::try_from(status) else { return false };
    let mut ctx = InterceptorContext::new(Input::erase(()));
    ctx.set_response(HttpResponse::new(code, SdkBody::empty()));
    HttpStatusCodeClassifier::default().classify_retry(&ctx) == RetryAction::transient_error()
}

/// What kind of failure an AWS error code and HTTP status mean.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>, message: String) -> PortError {
    let is = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
    if is(THROTTLING_ERRORS) || status == Some(429) {
        PortError::throttled(message)
    } else if is(TRANSIENT_ERRORS) || status.is_some_and(transient_status) {
        PortError::unavailable(message)
    } else if is(NOT_FOUND) || (code.is_none() && status == Some(404)) {
        PortError::not_found(message)
    } else if is(INVALID) {
        PortError::invalid(message)
    } else {
        PortError::backend(message)
    }
}

/// A transport failure, as the SDK's `TransientErrorClassifier` sees it: a
/// timeout or an I/O error of the connection may pass, and so may an error the
/// connector marked retryable; a request the connector refused as the caller's
/// own mistake (a malformed endpoint) will not.
fn dispatch_error(what: &str, connector: Option<&ConnectorError>) -> PortError {
    let why = connector.map_or_else(|| "dispatch failed".to_owned(), |c| display(c));
    match connector {
        Some(c) if c.is_user() => PortError::invalid(format!(
            "{what}: the request could not be sent ({why}): check the endpoint (AWS_ENDPOINT_URL) and the region"
        )),
        Some(c) if c.is_other() && c.as_other().is_none() => {
            PortError::backend(format!("{what}: the request could not be sent ({why})"))
        }
        _ => PortError::unavailable(format!(
            "{what}: cannot reach the service ({why}): check the endpoint and network"
        )),
    }
}

/// Translates an SDK error of the call described by `what` (e.g.
/// `dynamodb PutItem on table runs`) into a [`PortError`].
pub(crate) fn port_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let port = match &err {
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
        SdkError::TimeoutError(_) => PortError::unavailable(format!("{what}: timed out")),
        SdkError::DispatchFailure(d) => dispatch_error(what, d.as_connector_error()),
        SdkError::ResponseError(_) => {
            PortError::unavailable(format!("{what}: the response could not be read: {}", display(&err)))
        }
        SdkError::ConstructionFailure(_) => {
            PortError::invalid(format!("{what}: the request could not be built: {}", display(&err)))
        }
        _ => PortError::backend(format!("{what}: {}", display(&err))),
    };
    port.caused_by(err)
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
    use aws_sdk_dynamodb::{error::ErrorMetadata, operation::put_item::PutItemError};

    use super::*;

    fn c(code: Option<&str>, status: Option<u16>) -> PortError {
        classify(code, status, "m".into())
    }

    #[test]
    fn classifies_by_code_then_status() {
        assert_eq!(c(Some("ProvisionedThroughputExceededException"), Some(400)), PortError::throttled("m"));
        assert_eq!(c(Some("TooManyRequestsException"), Some(429)), PortError::throttled("m"));
        assert_eq!(c(None, Some(429)), PortError::throttled("m"));
        assert_eq!(c(Some("ResourceNotFoundException"), Some(400)), PortError::not_found("m"));
        assert_eq!(c(None, Some(404)), PortError::not_found("m"));
        assert_eq!(c(Some("ValidationException"), Some(400)), PortError::invalid("m"));
        assert_eq!(c(Some("AccessDeniedException"), Some(400)), PortError::backend("m"));
        assert!(c(Some("SlowDown"), Some(503)).retryable());
    }

    /// Issue 10: `RequestTimeout` and the SDK's other transient errors were not
    /// retried (only the throttling list was copied).
    #[test]
    fn the_sdks_transient_codes_and_statuses_are_unavailable() {
        let unavailable = PortError::unavailable("m");
        // The SDK's TRANSIENT_ERRORS, whatever status they come with (S3 sends RequestTimeout as 400).
        assert_eq!(c(Some("RequestTimeout"), Some(400)), unavailable);
        assert_eq!(c(Some("RequestTimeoutException"), Some(408)), unavailable);
        assert_eq!(c(Some("RequestTimeoutException"), None), unavailable);
        // The SDK's transient statuses: 500, 502, 503, 504, with or without a code.
        assert_eq!(c(Some("InternalError"), Some(500)), unavailable);
        assert_eq!(c(Some("InternalServerError"), Some(500)), unavailable);
        for status in [500, 502, 503, 504] {
            assert_eq!(c(None, Some(status)), unavailable, "status {status}");
            assert_eq!(c(Some("ServiceUnavailable"), Some(status)), unavailable, "status {status}");
        }
        // Statuses the SDK does not retry stay permanent.
        assert_eq!(c(Some("NotImplemented"), Some(501)), PortError::backend("m"));
        assert_eq!(c(None, Some(505)), PortError::backend("m"));
        assert_eq!(c(None, Some(400)), PortError::backend("m"));
        // A code in both a transient list and a status that says otherwise: the code wins.
        assert_eq!(c(Some("RequestTimeout"), Some(404)), unavailable);
    }

    #[test]
    fn the_lists_are_the_sdks_own() {
        assert!(THROTTLING_ERRORS.contains(&"ThrottlingException"));
        assert!(TRANSIENT_ERRORS.contains(&"RequestTimeout"));
        assert!(transient_status(503) && !transient_status(501) && !transient_status(0));
    }

    fn service_error(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message("try again").build();
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(PutItemError::generic(meta), raw)
    }

    #[test]
    fn sdk_errors_of_every_kind_map_to_a_port_error_naming_the_call() {
        let what = "dynamodb PutItem on table runs";
        let e = port_error(what, service_error("RequestTimeout", 400));
        assert_eq!(e, PortError::unavailable(format!("{what}: RequestTimeout: try again")));
        let e = port_error(what, service_error("InternalError", 500));
        assert!(matches!(&e, PortError::Unavailable(m) if m.contains("InternalError")), "{e}");
        let e = port_error(what, service_error("ThrottlingException", 400));
        assert!(matches!(&e, PortError::Throttled(_)), "{e}");

        let timeout: SdkError<PutItemError, HttpResponse> = SdkError::timeout_error("operation timed out");
        let e = port_error(what, timeout);
        assert_eq!(e, PortError::unavailable(format!("{what}: timed out")));

        let io = SdkError::<PutItemError, HttpResponse>::dispatch_failure(ConnectorError::io(
            "connection reset by peer".into(),
        ));
        let e = port_error(what, io);
        assert!(e.retryable() && e.to_string().contains("connection reset by peer"), "{e}");
        let slow = SdkError::<PutItemError, HttpResponse>::dispatch_failure(ConnectorError::timeout(
            "read timed out".into(),
        ));
        assert!(matches!(port_error(what, slow), PortError::Unavailable(_)));

        let user = SdkError::<PutItemError, HttpResponse>::dispatch_failure(ConnectorError::user(
            "invalid uri".into(),
        ));
        let e = port_error(what, user);
        assert!(matches!(&e, PortError::Invalid(m) if m.contains("check the endpoint")), "{e}");
        assert!(!e.retryable());
    }

    #[test]
    fn the_sdk_error_stays_the_port_errors_source() {
        use std::error::Error;
        let e = port_error("dynamodb PutItem", service_error("ThrottlingException", 400));
        let source = e.source().expect("the SdkError is kept");
        let sdk = source.downcast_ref::<SdkError<PutItemError, HttpResponse>>().expect("it is the SdkError");
        assert_eq!(sdk.raw_response().map(|r| r.status().as_u16()), Some(400));
        assert_eq!(e, PortError::throttled(e.message()), "a cause is carried, not compared");
    }
}
