//! retryStrategy with evaluateOnExit: AWS Batch's rules for whether a failed
//! attempt is retried.

use serde::{Deserialize, Serialize};

/// Most evaluateOnExit rules AWS accepts.
pub const MAX_EVALUATE_ON_EXIT: usize = 5;
/// Attempts allowed by AWS: 1..=10.
pub const MAX_ATTEMPTS: u32 = 10;

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
    /// batchfan's default rules: retry a lost host (`Host EC2*`) and exit code 75
    /// (EX_TEMPFAIL), never retry a command that cannot start or any other exit code.
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
                rule(Some("Host EC2*"), None, None, RetryAction::Retry),
                rule(None, Some("CannotStartContainerError*"), None, RetryAction::Exit),
                rule(None, None, Some("75"), RetryAction::Retry),
                rule(None, None, Some("*"), RetryAction::Exit),
            ],
        }
    }

    /// Checks AWS's limits on the strategy.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_ATTEMPTS).contains(&self.attempts) {
            return Err(format!(
                "retry attempts {} is out of range: AWS Batch allows 1 to {MAX_ATTEMPTS}",
                self.attempts
            ));
        }
        if self.evaluate_on_exit.len() > MAX_EVALUATE_ON_EXIT {
            return Err(format!(
                "{} evaluate_on_exit rules exceed the AWS limit of {MAX_EVALUATE_ON_EXIT}: merge rules with a trailing '*'",
                self.evaluate_on_exit.len()
            ));
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
    pub fn check(&self) -> Result<(), String> {
        if self.on_status_reason.is_none() && self.on_reason.is_none() && self.on_exit_code.is_none() {
            return Err(
                "an evaluate_on_exit rule needs at least one of on_status_reason, on_reason, on_exit_code"
                    .into(),
            );
        }
        for p in [&self.on_status_reason, &self.on_reason, &self.on_exit_code].into_iter().flatten() {
            if p.len() > 512 {
                return Err(format!("pattern {p:?} is longer than 512 characters"));
            }
            if p.trim_end_matches('*').contains('*') {
                return Err(format!("pattern {p:?} has a '*' before its end: AWS allows a wildcard only as the last character"));
            }
        }
        if let Some(code) = &self.on_exit_code {
            let digits = code.trim_end_matches('*');
            if !digits.chars().all(|c| c.is_ascii_digit()) || code.is_empty() {
                return Err(format!("on_exit_code {code:?} must be digits with an optional trailing '*', e.g. \"75\" or \"1*\""));
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
            .contains("1 to 10"));
        assert!(RetryStrategy { attempts: 11, evaluate_on_exit: vec![] }.check().is_err());
        let many = RetryStrategy {
            attempts: 2,
            evaluate_on_exit: vec![
                EvaluateOnExit { on_exit_code: Some("1".into()), ..Default::default() };
                6
            ],
        };
        assert!(many.check().unwrap_err().contains("exceed"));
        let bad = EvaluateOnExit { on_reason: Some("a*b".into()), ..Default::default() };
        assert!(bad.check().unwrap_err().contains("wildcard"));
        let bad_code = EvaluateOnExit { on_exit_code: Some("x".into()), ..Default::default() };
        assert!(bad_code.check().is_err());
        assert!(EvaluateOnExit::default().check().is_err());
    }
}
