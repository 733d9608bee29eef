//! Errors as AWS Batch sends them: `ClientException` (HTTP 400) for a request
//! that breaks a rule, `ServerException` (HTTP 500) for a failure of the
//! server; the type in the `x-amzn-ErrorType` header and the body
//! `{"__type": ..., "message": ...}`, which every AWS SDK parses.

use axum::{
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use crate::error::PortError;

/// An error answered to a Batch API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is wrong (a bad field, an unknown resource): HTTP 400 `ClientException`.
    #[error("{0}")]
    Client(String),
    /// The server failed (the engine or its database): HTTP 500 `ServerException`.
    #[error("{0}")]
    Server(String),
}

/// Result of an API operation.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A `ClientException` with `message`.
    pub fn client(message: impl Into<String>) -> Self {
        ApiError::Client(message.into())
    }

    /// The AWS error type.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::Client(_) => "ClientException",
            ApiError::Server(_) => "ServerException",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client(_) => StatusCode::BAD_REQUEST,
            ApiError::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Invalid(m) => ApiError::Client(m.to_string()),
            PortError::NotFound(m) => ApiError::Client(format!("{m} does not exist: check the id")),
            other => ApiError::Server(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Server(format!("batch-api database: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.error_type();
        if let ApiError::Server(m) = &self {
            tracing::error!(error = %m, "batch-api server error");
        }
        let body = serde_json::json!({ "__type": kind, "message": self.to_string() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        response.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_aws_types_and_statuses() {
        let e = ApiError::client("jobName \"a b\" is not valid");
        assert_eq!((e.error_type(), e.status()), ("ClientException", StatusCode::BAD_REQUEST));
        let s = ApiError::from(PortError::backend("disk full"));
        assert_eq!((s.error_type(), s.status()), ("ServerException", StatusCode::INTERNAL_SERVER_ERROR));
        let r = ApiError::Client("x".into()).into_response();
        assert_eq!(r.headers()["x-amzn-ErrorType"], "ClientException");
        assert_eq!(ApiError::from(PortError::not_found("job j1")).error_type(), "ClientException");
    }
}
