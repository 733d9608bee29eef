//! retryStrategy with evaluateOnExit: AWS Batch's rules for whether a failed
//! attempt is retried.

use serde::{Deserialize, Serialize};

use super::check::{on_exit_pattern, PatternKind};
use crate::error::{PortError, PortResult};

/// Most evaluateOnExit rules AWS accepts.
pub const MAX_EVALUATE_ON_EXIT: usize = 5;
/// Attempts allowed by AWS: 1..=10.
pub const MAX_ATTEMPTS: u32 = 10;
/// Matches the status reason of a job whose EC2 host went away (`Host EC2 (instance i-...) terminated.`).
pub const HOST_EC2: &str = "Host EC2*";
/// Matches the status reason of a job whose Fargate Spot task was reclaimed
/// (ECS stop code `SpotInterruption`: `Your Spot Task was interrupted.`).
pub const FARGATE_SPOT_INTERRUPTED: &str = "Your Spot Task was interrupted*";

/// What to do when a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RetryAction {
    #[default]
    Retry,
    Exit,
}

/// One evaluateOnExit rule. Every pattern given must match (glob with an
/// optional trailing `*`); the first rule that matches decides.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateOnExit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_code: Option<String>,
    #[serde(default = "default_action")]
    pub action: RetryAction,
}

fn default_action() -> RetryAction {
    RetryAction::Retry
}

/// AWS `retryStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    pub attempts: u32,
    #[serde(default)]
    pub evaluate_on_exit: Vec<EvaluateOnExit>,
}

impl Default for RetryStrategy {
    fn default() -> Self {
        RetryStrategy { attempts: 1, evaluate_on_exit: Vec::new() }
    }
}

/// How an attempt ended, as the retry rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptOutcome<'a> {
    pub exit_code: Option<i32>,
    pub reason: Option<&'a str>,
    pub status_reason: Option<&'a str>,
}

impl RetryStrategy {
    /// batchfan's default rules: retry a lost host — an EC2 instance (`Host EC2*`,
    /// also what the local engine says when it was killed under a job) or a
    /// reclaimed Fargate Spot task (`Your Spot Task was interrupted.`, the
    /// module's `FARGATE_SPOT` compute) — and exit code 75 (EX_TEMPFAIL); never
    /// retry a command that cannot start or any other exit code (an
    /// out-of-memory kill, 137, included).
    pub fn batchfan_default(attempts: u32) -> Self {
        let rule = |sr: Option<&str>, r: Option<&str>, code: Option<&str>, action| EvaluateOnExit {
            on_status_reason: sr.map(str::to_owned),
            on_reason: r.map(str::to_owned),
            on_exit_code: code.map(str::to_owned),
            action,
        };
        RetryStrategy {
            attempts,
            evaluate_on_exit: vec![
                rule(Some(HOST_EC2), None, None, RetryAction::Retry),
                rule(Some(FARGATE_SPOT_INTERRUPTED), None, None, RetryAction::Retry),
                rule(None, Some("CannotStartContainerError*"), None, RetryAction::Exit),
                rule(None, None, Some("75"), RetryAction::Retry),
                rule(None, None, Some("*"), RetryAction::Exit),
            ],
        }
    }

    /// Checks AWS's limits on the strategy.
    pub fn check(&self) -> PortResult<()> {
        if !(1..=MAX_ATTEMPTS).contains(&self.attempts) {
            return Err(PortError::invalid(format!(
                "retry attempts {} is out of range: AWS Batch allows 1 to {MAX_ATTEMPTS}",
                self.attempts
            )));
        }
        if self.evaluate_on_exit.len() > MAX_EVALUATE_ON_EXIT {
            return Err(PortError::invalid(format!(
                "{} evaluate_on_exit rules exceed the AWS limit of {MAX_EVALUATE_ON_EXIT}: merge rules with a trailing '*'",
                self.evaluate_on_exit.len()
            )));
        }
        for rule in &self.evaluate_on_exit {
            rule.check()?;
        }
        Ok(())
    }

    /// The action for an attempt that failed: the first matching rule, else
    /// retry (as AWS does when no rule matches).
    pub fn action_for(&self, outcome: AttemptOutcome<'_>) -> RetryAction {
        self.evaluate_on_exit
            .iter()
            .find(|rule| rule.matches(outcome))
            .map_or(RetryAction::Retry, |rule| rule.action)
    }

    /// Whether attempt number `attempt` (from 1) that failed with `outcome` is retried.
    pub fn should_retry(&self, attempt: u32, outcome: AttemptOutcome<'_>) -> bool {
        attempt < self.attempts && self.action_for(outcome) == RetryAction::Retry
    }
}

impl EvaluateOnExit {
    /// Checks AWS's rules on one rule's patterns.
    pub fn check(&self) -> PortResult<()> {
        if self.on_status_reason.is_none() && self.on_reason.is_none() && self.on_exit_code.is_none() {
            return Err(PortError::invalid(
                "an evaluate_on_exit rule needs at least one of on_status_reason, on_reason, on_exit_code",
            ));
        }
        let patterns = [
            ("on_status_reason", PatternKind::StatusReason, &self.on_status_reason),
            ("on_reason", PatternKind::Reason, &self.on_reason),
            ("on_exit_code", PatternKind::ExitCode, &self.on_exit_code),
        ];
        for (name, kind, pattern) in patterns {
            if let Some(p) = pattern {
                on_exit_pattern(name, kind, p)?;
            }
        }
        Ok(())
    }

    /// Whether every pattern this rule sets matches the outcome.
    pub fn matches(&self, outcome: AttemptOutcome<'_>) -> bool {
        let code = outcome.exit_code.map(|c| c.to_string());
        matches_opt(self.on_status_reason.as_deref(), outcome.status_reason)
            && matches_opt(self.on_reason.as_deref(), outcome.reason)
            && matches_opt(self.on_exit_code.as_deref(), code.as_deref())
    }
}

fn matches_opt(pattern: Option<&str>, value: Option<&str>) -> bool {
    match (pattern, value) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(p), Some(v)) => glob(p, v),
    }
}

/// AWS's glob: exact match, or prefix match when the pattern ends with `*`.
pub fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: i32) -> AttemptOutcome<'static> {
        AttemptOutcome {
            exit_code: Some(c),
            reason: None,
            status_reason: Some("Essential container in task exited"),
        }
    }

    #[test]
    fn defaults_retry_tempfail_and_host_loss_only() {
        let s = RetryStrategy::batchfan_default(3);
        assert!(s.should_retry(1, code(75)));
        assert!(!s.should_retry(1, code(1)));
        assert!(!s.should_retry(3, code(75)), "attempts exhausted");
        let lost = AttemptOutcome {
            exit_code: None,
            reason: None,
            status_reason: Some("Host EC2 (local engine restart) terminated."),
        };
        assert!(s.should_retry(1, lost));
        // A reclaimed Fargate Spot task is retried even when its container left an exit code.
        let spot = AttemptOutcome {
            exit_code: Some(143),
            reason: None,
            status_reason: Some("Your Spot Task was interrupted."),
        };
        assert!(s.should_retry(1, spot));
        let oom = AttemptOutcome {
            exit_code: Some(137),
            reason: Some("OutOfMemoryError: Container killed due to memory usage"),
            status_reason: Some("Essential container in task exited"),
        };
        assert!(!s.should_retry(1, oom), "more memory, not another attempt, fixes an OOM kill");
        assert!(s.check().is_ok(), "the defaults pass AWS's own checks");
        let missing = AttemptOutcome {
            exit_code: None,
            reason: Some("CannotStartContainerError: no such file"),
            status_reason: None,
        };
        assert!(!s.should_retry(1, missing));
    }

    #[test]
    fn no_rule_matched_means_retry() {
        let s = RetryStrategy {
            attempts: 2,
            evaluate_on_exit: vec![EvaluateOnExit {
                on_exit_code: Some("3".into()),
                action: RetryAction::Exit,
                ..Default::default()
            }],
        };
        assert!(s.should_retry(1, code(4)));
        assert!(!s.should_retry(1, code(3)));
    }

    #[test]
    fn all_patterns_of_a_rule_must_match() {
        let rule = EvaluateOnExit {
            on_exit_code: Some("1*".into()),
            on_status_reason: Some("Ess*".into()),
            action: RetryAction::Exit,
            ..Default::default()
        };
        assert!(rule.matches(code(12)));
        assert!(!rule.matches(code(2)));
        assert!(!rule.matches(AttemptOutcome {
            exit_code: Some(1),
            reason: None,
            status_reason: Some("other")
        }));
    }

    #[test]
    fn checks_name_the_problem() {
        assert!(RetryStrategy { attempts: 0, evaluate_on_exit: vec![] }
            .check()
            .unwrap_err()
            .message()
            .contains("1 to 10"));
        assert!(RetryStrategy { attempts: 11, evaluate_on_exit: vec![] }.check().is_err());
        let many = RetryStrategy {
            attempts: 2,
            evaluate_on_exit: vec![
                EvaluateOnExit { on_exit_code: Some("1".into()), ..Default::default() };
                6
            ],
        };
        assert!(many.check().unwrap_err().message().contains("exceed"));
        let bad = EvaluateOnExit { on_reason: Some("a*b".into()), ..Default::default() };
        assert!(bad.check().unwrap_err().message().contains("only as the last character"));
        // Regression (issue 13): AWS rejects these characters at SubmitJob; they used to pass.
        let bad = EvaluateOnExit { on_status_reason: Some("Task-failed*".into()), ..Default::default() };
        assert!(bad
            .check()
            .unwrap_err()
            .message()
            .starts_with("on_status_reason \"Task-failed*\" is not valid"));
        let bad = EvaluateOnExit { on_reason: Some("Host EC2 (i-1)*".into()), ..Default::default() };
        assert!(bad.check().is_err());
        let bad_code = EvaluateOnExit { on_exit_code: Some("x".into()), ..Default::default() };
        assert!(bad_code.check().is_err());
        assert!(EvaluateOnExit::default().check().is_err());
    }
}
