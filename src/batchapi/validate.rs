//! AWS's rules on the fields of a request, checked with AWS's field names in
//! every message (`arrayProperties.size 1 is out of range: ...`), before the
//! library's own [`crate::batch::check_submit`] runs as the last word.

use super::{
    error::{ApiError, ApiResult},
    model::{EvaluateOnExitIn, KeyValuePair, RetryStrategyIn},
};
use crate::batch::{
    check::{on_exit_pattern, PatternKind},
    retry::{MAX_ATTEMPTS, MAX_EVALUATE_ON_EXIT},
    EvaluateOnExit, RetryAction, RetryStrategy, MAX_ARRAY_SIZE, MAX_DEPENDENCIES, MIN_ARRAY_SIZE,
    MIN_TIMEOUT_SECS,
};

/// Largest `schedulingPriorityOverride`.
const MAX_SCHEDULING_PRIORITY: i64 = 9999;
/// Most tags on one resource, and the longest key and value (`TagrisTagsMap`).
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

fn bad(msg: String) -> ApiError {
    ApiError::Client(msg)
}

/// The value of a required field, or an error naming it.
pub fn required<'a>(value: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad(format!("{field} is required: set it in the request"))),
    }
}

/// A name of a job, job definition, queue or compute environment: 1-128 letters, digits, `-`, `_`.
pub fn name(value: &str, field: &str) -> ApiResult<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{field} {value:?} is not valid: use 1-128 letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

/// `arrayProperties.size`: 2..=10,000.
pub fn array_size(size: i64) -> ApiResult<u32> {
    if (i64::from(MIN_ARRAY_SIZE)..=i64::from(MAX_ARRAY_SIZE)).contains(&size) {
        Ok(size as u32)
    } else {
        Err(bad(format!(
            "arrayProperties.size {size} is out of range: AWS Batch allows {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE}; \
             submit a single job without arrayProperties instead of size 1"
        )))
    }
}

/// The number of `dependsOn` entries: at most 20.
pub fn dependency_count(n: usize) -> ApiResult<()> {
    if n > MAX_DEPENDENCIES {
        return Err(bad(format!(
            "dependsOn has {n} entries, over the AWS limit of {MAX_DEPENDENCIES}: \
             depend on a barrier job that depends on some of them"
        )));
    }
    Ok(())
}

/// `timeout.attemptDurationSeconds`: at least 60.
pub fn timeout(seconds: i64, field: &str) -> ApiResult<u64> {
    if seconds < MIN_TIMEOUT_SECS as i64 {
        return Err(bad(format!(
            "{field} {seconds} is below the AWS minimum of {MIN_TIMEOUT_SECS} seconds: set {MIN_TIMEOUT_SECS} or more"
        )));
    }
    Ok(seconds as u64)
}

/// `schedulingPriorityOverride`: 0..=9999 (accepted, not emulated).
pub fn scheduling_priority(p: i64) -> ApiResult<()> {
    if !(0..=MAX_SCHEDULING_PRIORITY).contains(&p) {
        return Err(bad(format!(
            "schedulingPriorityOverride {p} is out of range: AWS Batch allows 0 to {MAX_SCHEDULING_PRIORITY}"
        )));
    }
    Ok(())
}

/// `tags` (`TagrisTagsMap`): at most 50; keys 1-128 characters, not starting
/// with the reserved `aws:`; values at most 256 characters.
pub fn tags(tags: &std::collections::BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(bad(format!(
            "tags has {} entries, over the AWS limit of {MAX_TAGS}: drop some",
            tags.len()
        )));
    }
    for (k, v) in tags {
        let n = k.chars().count();
        if n == 0 || n > MAX_TAG_KEY_CHARS || k.to_ascii_lowercase().starts_with("aws:") {
            return Err(bad(format!(
                "tags key {k:?} is not valid: use 1-{MAX_TAG_KEY_CHARS} characters, not starting with the reserved \"aws:\""
            )));
        }
        if v.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(bad(format!(
                "tags value of {k:?} is {} characters, over the AWS limit of {MAX_TAG_VALUE_CHARS}: shorten it",
                v.chars().count()
            )));
        }
    }
    Ok(())
}

/// Environment variables: names given, none starting with `AWS_BATCH` (reserved by AWS).
pub fn environment(vars: &[KeyValuePair], field: &str) -> ApiResult<Vec<(String, String)>> {
    vars.iter()
        .enumerate()
        .map(|(i, kv)| {
            let name = kv.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(bad(format!("{field}[{i}].name is required: give every variable a name")));
            }
            if name.starts_with("AWS_BATCH") {
                return Err(bad(format!(
                    "{field}[{i}].name {name:?} is not valid: names starting with AWS_BATCH are reserved for the variables AWS Batch sets"
                )));
            }
            Ok((name, kv.value.clone().unwrap_or_default()))
        })
        .collect()
}

/// A retryStrategy as the library models it, with AWS's limits and character sets.
pub fn retry_strategy(r: &RetryStrategyIn, field: &str) -> ApiResult<RetryStrategy> {
    let attempts = r.attempts.unwrap_or(1);
    if !(1..=i64::from(MAX_ATTEMPTS)).contains(&attempts) {
        return Err(bad(format!(
            "{field}.attempts {attempts} is out of range: AWS Batch allows 1 to {MAX_ATTEMPTS}"
        )));
    }
    let rules = r.evaluate_on_exit.as_deref().unwrap_or_default();
    if rules.len() > MAX_EVALUATE_ON_EXIT {
        return Err(bad(format!(
            "{field}.evaluateOnExit has {} rules, over the AWS limit of {MAX_EVALUATE_ON_EXIT}: \
             merge rules with a trailing '*'",
            rules.len()
        )));
    }
    let evaluate_on_exit = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| evaluate_on_exit(rule, &format!("{field}.evaluateOnExit[{i}]")))
        .collect::<ApiResult<_>>()?;
    Ok(RetryStrategy { attempts: attempts as u32, evaluate_on_exit })
}

fn evaluate_on_exit(rule: &EvaluateOnExitIn, field: &str) -> ApiResult<EvaluateOnExit> {
    let action = match rule.action.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("RETRY") => RetryAction::Retry,
        Some("EXIT") => RetryAction::Exit,
        Some(other) => return Err(bad(format!("{field}.action {other:?} is not valid: use RETRY or EXIT"))),
        None => return Err(bad(format!("{field}.action is required: use RETRY or EXIT"))),
    };
    let patterns = [
        ("onStatusReason", PatternKind::StatusReason, &rule.on_status_reason),
        ("onReason", PatternKind::Reason, &rule.on_reason),
        ("onExitCode", PatternKind::ExitCode, &rule.on_exit_code),
    ];
    for (name, kind, value) in patterns {
        if let Some(p) = value {
            on_exit_pattern(&format!("{field}.{name}"), kind, p).map_err(|e| bad(e.message().to_owned()))?;
        }
    }
    if rule.on_status_reason.is_none() && rule.on_reason.is_none() && rule.on_exit_code.is_none() {
        return Err(bad(format!("{field} needs at least one of onStatusReason, onReason, onExitCode")));
    }
    Ok(EvaluateOnExit {
        on_status_reason: rule.on_status_reason.clone(),
        on_reason: rule.on_reason.clone(),
        on_exit_code: rule.on_exit_code.clone(),
        action,
    })
}

/// `Ref::NAME` in each command argument replaced by the parameter's value
/// (longest names first, so `Ref::ab` is not taken for `Ref::a` + `b`);
/// references to no parameter stay as they are, as on AWS.
pub fn substitute(
    command: &[String],
    parameters: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut names: Vec<&String> = parameters.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    command
        .iter()
        .map(|arg| {
            let mut out = String::with_capacity(arg.len());
            let mut rest = arg.as_str();
            while let Some(at) = rest.find("Ref::") {
                out.push_str(&rest[..at]);
                let after = &rest[at + 5..];
                match names.iter().find(|n| after.starts_with(n.as_str())) {
                    Some(n) => {
                        out.push_str(&parameters[*n]);
                        rest = &after[n.len()..];
                    }
                    None => {
                        out.push_str("Ref::");
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn messages_name_the_field_and_value() {
        assert!(array_size(1).unwrap_err().to_string().starts_with("arrayProperties.size 1 "));
        assert!(array_size(10_001).is_err());
        assert_eq!(array_size(10_000).unwrap(), 10_000);
        assert!(timeout(59, "timeout.attemptDurationSeconds").unwrap_err().to_string().contains("59"));
        let r = RetryStrategyIn { attempts: Some(11), evaluate_on_exit: None };
        assert!(retry_strategy(&r, "retryStrategy")
            .unwrap_err()
            .to_string()
            .starts_with("retryStrategy.attempts 11"));
        assert!(name("a b", "jobName").unwrap_err().to_string().contains("jobName \"a b\""));
    }

    #[test]
    fn evaluate_on_exit_follows_aws_character_sets() {
        let rule = |code: &str, reason: &str| EvaluateOnExitIn {
            on_status_reason: None,
            on_reason: Some(reason.into()),
            on_exit_code: Some(code.into()),
            action: Some("retry".into()),
        };
        let strategy = |r| RetryStrategyIn { attempts: Some(2), evaluate_on_exit: Some(vec![r]) };
        assert!(retry_strategy(&strategy(rule("75", "Host EC2*")), "r").is_ok());
        let e = retry_strategy(&strategy(rule("7x", "a")), "r").unwrap_err().to_string();
        assert!(e.starts_with("r.evaluateOnExit[0].onExitCode \"7x\""), "{e}");
        let e = retry_strategy(&strategy(rule("1", "a*b")), "r").unwrap_err().to_string();
        assert!(e.contains("onReason \"a*b\""), "{e}");
        let six = RetryStrategyIn { attempts: Some(2), evaluate_on_exit: Some(vec![rule("1", "a"); 6]) };
        assert!(retry_strategy(&six, "r").unwrap_err().to_string().contains("6 rules"));
    }

    #[test]
    fn refs_are_replaced_longest_name_first() {
        let params =
            BTreeMap::from([("in".to_string(), "A".to_string()), ("input".to_string(), "B".to_string())]);
        let cmd = ["Ref::input", "--x=Ref::in", "Ref::nope", "Ref::"].map(String::from);
        assert_eq!(substitute(&cmd, &params), ["B", "--x=A", "Ref::nope", "Ref::"]);
    }
}
