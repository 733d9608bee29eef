//! The one error type every port (Batch, Table, Objects, Topic) returns.
//!
//! Adapters translate their backend's errors (SQLite, the filesystem, AWS SDK
//! errors) into a [`PortError`] at the edge, so the domain never sees them;
//! the backend's error stays its source.

use std::{fmt, sync::Arc};

/// An error from a port implementation: what kind of failure (which decides
/// whether to retry), what happened, and the backend's own error that caused
/// it, when there is one ([`std::error::Error::source`]: an
/// [`std::io::Error`], a SQLite error, the AWS SDK's `SdkError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortError {
    /// The request breaks a rule of the service (an AWS limit, a bad name); do not retry.
    Invalid(Message),
    /// The named thing (job, object, item, topic) does not exist.
    NotFound(Message),
    /// The service asked us to slow down (HTTP 429, SQLite busy); retry with backoff.
    Throttled(Message),
    /// The service could not be reached or failed in a way that may pass; retry with backoff.
    Unavailable(Message),
    /// Anything else the backend reported; not retried.
    Backend(Message),
}

/// What a [`PortError`] says, with the error that caused it.
///
/// The text names what failed and, at the edge where a backend error is
/// translated, that error's own words too, so `{}` of a [`PortError`] says
/// everything on one line (run records, alerts and logs store that line).
/// The cause stays an error value beside it for code that needs more than
/// words. Two messages are equal when their texts are: a cause is carried
/// along, never compared.
#[derive(Debug, Clone)]
pub struct Message {
    text: String,
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Message {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for Message {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.text == other.text
    }
}

impl Eq for Message {}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message { text, cause: None }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message { text: text.to_owned(), cause: None }
    }
}

impl PortError {
    /// [`PortError::Invalid`] with `text`.
    pub fn invalid(text: impl Into<Message>) -> PortError {
        PortError::Invalid(text.into())
    }
    /// [`PortError::NotFound`] with `text`.
    pub fn not_found(text: impl Into<Message>) -> PortError {
        PortError::NotFound(text.into())
    }
    /// [`PortError::Throttled`] with `text`.
    pub fn throttled(text: impl Into<Message>) -> PortError {
        PortError::Throttled(text.into())
    }
    /// [`PortError::Unavailable`] with `text`.
    pub fn unavailable(text: impl Into<Message>) -> PortError {
        PortError::Unavailable(text.into())
    }
    /// [`PortError::Backend`] with `text`.
    pub fn backend(text: impl Into<Message>) -> PortError {
        PortError::Backend(text.into())
    }

    /// The same error, caused by `cause` (its [`std::error::Error::source`]).
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> PortError {
        self.message_mut().cause = Some(Arc::new(cause));
        self
    }

    /// What happened, without the kind.
    pub fn message(&self) -> &str {
        &self.parts().1.text
    }

    /// Whether retrying the same request later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, PortError::Throttled(_) | PortError::Unavailable(_))
    }

    fn parts(&self) -> (&'static str, &Message) {
        match self {
            PortError::Invalid(m) => ("invalid request", m),
            PortError::NotFound(m) => ("not found", m),
            PortError::Throttled(m) => ("throttled", m),
            PortError::Unavailable(m) => ("unavailable", m),
            PortError::Backend(m) => ("backend error", m),
        }
    }

    fn message_mut(&mut self) -> &mut Message {
        match self {
            PortError::Invalid(m)
            | PortError::NotFound(m)
            | PortError::Throttled(m)
            | PortError::Unavailable(m)
            | PortError::Backend(m) => m,
        }
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, message) = self.parts();
        write!(f, "{kind}: {message}")
    }
}

impl std::error::Error for PortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.parts().1.cause.as_deref().map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for PortError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => PortError::not_found(e.to_string()).caused_by(e),
            _ => PortError::backend(format!("io: {e}")).caused_by(e),
        }
    }
}

/// Result alias for port calls.
pub type PortResult<T> = Result<T, PortError>;

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::PortError;

    #[test]
    fn an_io_error_is_the_kind_the_text_and_the_source() {
        let e = PortError::from(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"));
        assert_eq!(e.to_string(), "not found: no such file");
        let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).expect("the io::Error is kept");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        let e = PortError::from(std::io::Error::other("disk full"));
        assert_eq!((e.message(), e.retryable()), ("io: disk full", false));
        assert!(e.source().is_some());
    }

    #[test]
    fn an_error_made_from_words_has_no_source_and_keeps_its_kind_through_caused_by() {
        let e = PortError::throttled("slow down");
        assert!(e.source().is_none() && e.retryable());
        let caused = e.clone().caused_by(std::io::Error::other("busy"));
        assert!(matches!(&caused, PortError::Throttled(m) if &**m == "slow down"));
        assert_eq!(caused.source().map(|s| s.to_string()).as_deref(), Some("busy"));
    }
}
