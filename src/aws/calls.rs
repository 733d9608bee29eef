//! Counting the AWS API calls a process makes, by kind.
//!
//! Every client [`super::AwsClients`] builds carries one [`CallCounter`]
//! interceptor, so each operation the SDK executes is counted once under
//! `Service.Operation` (`Batch.SubmitJob`, `DynamoDB.BatchWriteItem`, ...),
//! and each HTTP attempt it sends (retries included: what AWS bills) once
//! more in [`CallCount::attempts`]. `batchfan run --backend aws` prints the
//! tally; the Lambdas log it per invocation; `batchfan cost` predicts it.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
};

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            context::{BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef},
            Intercept,
        },
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::ConfigBag;
use serde::{Deserialize, Serialize};

/// Calls and HTTP attempts of one kind of API call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    /// Operations executed (one per SDK `send()`).
    pub calls: u64,
    /// HTTP requests sent for them (more than `calls` when the SDK retried).
    pub attempts: u64,
}

/// API calls by kind (`Service.Operation`), in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiTally(pub BTreeMap<String, CallCount>);

impl ApiTally {
    /// Operations of one kind, e.g. `tally.calls("Batch.SubmitJob")`.
    pub fn calls(&self, kind: &str) -> u64 {
        self.0.get(kind).map_or(0, |c| c.calls)
    }

    /// Operations of every kind.
    pub fn total_calls(&self) -> u64 {
        self.0.values().map(|c| c.calls).sum()
    }

    /// What `self` counted beyond `before` (kinds with nothing new are left out).
    pub fn since(&self, before: &ApiTally) -> ApiTally {
        let mut out = BTreeMap::new();
        for (kind, now) in &self.0 {
            let was = before.0.get(kind).copied().unwrap_or_default();
            let delta = CallCount {
                calls: now.calls.saturating_sub(was.calls),
                attempts: now.attempts.saturating_sub(was.attempts),
            };
            if delta != CallCount::default() {
                out.insert(kind.clone(), delta);
            }
        }
        ApiTally(out)
    }
}

impl fmt::Display for ApiTally {
    /// `Batch.SubmitJob=3 DynamoDB.PutItem=4 (+1 retry)`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, (kind, c)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{kind}={}", c.calls)?;
            let retries = c.attempts.saturating_sub(c.calls);
            if retries > 0 {
                write!(f, " (+{retries} retr{})", if retries == 1 { "y" } else { "ies" })?;
            }
        }
        Ok(())
    }
}

/// The SDK interceptor that counts; clones share one tally.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    tally: Arc<Mutex<BTreeMap<String, CallCount>>>,
}

impl CallCounter {
    /// What has been counted so far.
    pub fn snapshot(&self) -> ApiTally {
        ApiTally(self.lock().clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CallCount>> {
        // A panic while holding the lock cannot leave a count half-written.
        self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bump(&self, cfg: &ConfigBag, f: impl FnOnce(&mut CallCount)) {
        let kind = match cfg.load::<Metadata>() {
            Some(m) => format!("{}.{}", m.service(), m.name()),
            None => "unknown".to_owned(),
        };
        f(self.lock().entry(kind).or_default());
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "batchfan::CallCounter"
    }

    // Once per operation, and (unlike `read_before_execution`) after the
    // operation's `Metadata` is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.bump(cfg, |c| c.calls += 1);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.bump(cfg, |c| c.attempts += 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(entries: &[(&str, u64, u64)]) -> ApiTally {
        ApiTally(
            entries
                .iter()
                .map(|(k, calls, attempts)| (k.to_string(), CallCount { calls: *calls, attempts: *attempts }))
                .collect(),
        )
    }

    #[test]
    fn since_keeps_only_what_changed() {
        let before = tally(&[("Batch.SubmitJob", 2, 2), ("SNS.Publish", 1, 1)]);
        let after = tally(&[("Batch.SubmitJob", 5, 6), ("SNS.Publish", 1, 1), ("S3.GetObject", 1, 1)]);
        assert_eq!(after.since(&before), tally(&[("Batch.SubmitJob", 3, 4), ("S3.GetObject", 1, 1)]));
    }

    #[test]
    fn display_names_kinds_and_retries() {
        let t = tally(&[("Batch.SubmitJob", 3, 5), ("DynamoDB.PutItem", 1, 1)]);
        assert_eq!(t.to_string(), "Batch.SubmitJob=3 (+2 retries) DynamoDB.PutItem=1");
        assert_eq!(ApiTally::default().to_string(), "none");
        assert_eq!(t.calls("Batch.SubmitJob"), 3);
        assert_eq!(t.calls("SNS.Publish"), 0);
        assert_eq!(t.total_calls(), 4);
    }
}
