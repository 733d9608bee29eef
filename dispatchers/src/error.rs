//! What a dispatcher reports when it cannot handle an event.

use batchfan::run::RunError;

/// Why a handler failed. [`DispatchError::retryable`] says whether the same
/// event may succeed later; Lambda retries either way (async invocations),
/// so a bad event ends in the function's failure destination, never in a run.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The event is malformed or not one this function handles.
    #[error("bad event: {0}")]
    BadEvent(String),
    /// The deployment is misconfigured: an env var, the spec, a secret.
    #[error("misconfigured: {0}")]
    Config(String),
    /// A run step (planner, submitter, monitor) failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Some records of a multi-record event failed (the others were handled).
    #[error("{} of {total} records failed: {}", .failed.len(), .failed.join("; "))]
    Records { total: usize, failed: Vec<String>, retryable: bool },
}

impl DispatchError {
    /// Whether delivering the same event again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            DispatchError::BadEvent(_) | DispatchError::Config(_) => false,
            DispatchError::Run(e) => e.retryable(),
            DispatchError::Records { retryable, .. } => *retryable,
        }
    }

    /// The Lambda error type: `BadEvent`, `Misconfigured`, `Retryable` or `Permanent`.
    pub fn error_type(&self) -> &'static str {
        match self {
            DispatchError::BadEvent(_) => "BadEvent",
            DispatchError::Config(_) => "Misconfigured",
            e if e.retryable() => "Retryable",
            _ => "Permanent",
        }
    }
}

impl From<batchfan::error::PortError> for DispatchError {
    fn from(e: batchfan::error::PortError) -> Self {
        DispatchError::Run(RunError::from(e))
    }
}

impl From<DispatchError> for lambda_runtime::Diagnostic {
    fn from(e: DispatchError) -> Self {
        lambda_runtime::Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

/// Folds per-record outcomes into one result: `Ok` when every record succeeded.
pub(crate) fn fold_records(total: usize, errors: Vec<DispatchError>) -> Result<(), DispatchError> {
    if errors.is_empty() {
        return Ok(());
    }
    let retryable = errors.iter().any(DispatchError::retryable);
    Err(DispatchError::Records { total, failed: errors.iter().map(ToString::to_string).collect(), retryable })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_follow_retryability() {
        assert_eq!(DispatchError::BadEvent("x".into()).error_type(), "BadEvent");
        let lease = RunError::LeaseHeld { run_id: "r".into(), owner: "o".into(), until_ms: 0 };
        assert_eq!(DispatchError::Run(lease).error_type(), "Retryable");
        assert_eq!(DispatchError::Run(RunError::Invalid("x".into())).error_type(), "Permanent");
        let folded = fold_records(3, vec![DispatchError::BadEvent("a".into())]).unwrap_err();
        assert_eq!(folded.to_string(), "1 of 3 records failed: bad event: a");
        assert!(!folded.retryable());
        let d: lambda_runtime::Diagnostic = folded.into();
        assert_eq!(d.error_type, "Permanent");
    }
}
