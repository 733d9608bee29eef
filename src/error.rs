//! The one error type every port (Batch, Table, Objects, Topic) returns.
//!
//! Adapters translate their backend's errors (SQLite, the filesystem, AWS SDK
//! errors) into a [`PortError`] at the edge, so the domain never sees them.

/// An error from a port implementation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The request breaks a rule of the service (an AWS limit, a bad name); do not retry.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The named thing (job, object, item, topic) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The service asked us to slow down (HTTP 429, SQLite busy); retry with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The service could not be reached or failed in a way that may pass; retry with backoff.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reported; not retried.
    #[error("backend error: {0}")]
    Backend(String),
}

impl PortError {
    /// Whether retrying the same request later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, PortError::Throttled(_) | PortError::Unavailable(_))
    }
}

impl From<std::io::Error> for PortError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => PortError::NotFound(e.to_string()),
            _ => PortError::Backend(format!("io: {e}")),
        }
    }
}

/// Result alias for port calls.
pub type PortResult<T> = Result<T, PortError>;
