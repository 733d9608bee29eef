//! The job keys shared by `[[stages]]`, `[defaults]`, `[aggregation]` and
//! `[cleanup]`: command, image, resources, env, timeout, retry.

use std::collections::BTreeMap;

use super::{
    reader::{At, Reader, Tab},
    validate, JobSpec,
};
use crate::batch::{retry::MAX_EVALUATE_ON_EXIT, EvaluateOnExit, RetryAction, RetryStrategy};

/// Image used when neither the job nor `[defaults]` names one.
pub const DEFAULT_IMAGE: &str = "batchfan-jobs:latest";
/// vCPUs when not set.
pub const DEFAULT_VCPUS: f64 = 1.0;
/// Memory (MiB) when not set.
pub const DEFAULT_MEMORY_MIB: u64 = 2048;
/// Retry attempts when not set.
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// The keys every job table may have (`[defaults]` has all but `command`).
pub(crate) const JOB_KEYS: [&str; 7] = ["command", "image", "vcpus", "memory", "env", "timeout", "retry"];

/// Job keys as written in one table; what is absent falls back to `[defaults]`.
#[derive(Debug, Default, Clone)]
pub(crate) struct JobKeys {
    pub command: Option<At<Vec<String>>>,
    pub image: Option<String>,
    pub vcpus: Option<f64>,
    pub memory: Option<u64>,
    pub timeout: Option<u64>,
    pub env: BTreeMap<String, String>,
    pub attempts: Option<u32>,
    pub rules: Option<Vec<EvaluateOnExit>>,
}

impl JobKeys {
    /// The job these keys describe, over `defaults`; `command` is used when the table has none.
    pub fn resolve(&self, defaults: &JobKeys, command: &[&str]) -> JobSpec {
        let attempts = self.attempts.or(defaults.attempts).unwrap_or(DEFAULT_ATTEMPTS);
        let evaluate_on_exit = match self.rules.as_ref().or(defaults.rules.as_ref()) {
            Some(rules) => rules.clone(),
            None => RetryStrategy::batchfan_default(attempts).evaluate_on_exit,
        };
        let mut env = defaults.env.clone();
        env.extend(self.env.clone());
        JobSpec {
            command: match &self.command {
                Some(c) => c.v.clone(),
                None => command.iter().map(|s| (*s).to_owned()).collect(),
            },
            image: self.image.clone().or(defaults.image.clone()).unwrap_or_else(|| DEFAULT_IMAGE.into()),
            vcpus: self.vcpus.or(defaults.vcpus).unwrap_or(DEFAULT_VCPUS),
            memory_mib: self.memory.or(defaults.memory).unwrap_or(DEFAULT_MEMORY_MIB),
            env,
            retry: RetryStrategy { attempts, evaluate_on_exit },
            timeout_secs: self.timeout.or(defaults.timeout),
        }
    }
}

/// Reads the job keys of `t` (checking each value; unknown keys are the caller's).
pub(crate) fn read_job(r: &mut Reader<'_>, t: &Tab<'_>) -> JobKeys {
    let mut keys = JobKeys::default();
    if let Some(c) = r.str_list(t, "command") {
        if c.v.is_empty() || c.v[0].is_empty() {
            r.error(&c.span, "command must name a program: e.g. command = [\"prog\", \"arg\"]");
        } else {
            keys.command = Some(c);
        }
    }
    if let Some(img) = r.string(t, "image") {
        if img.v.is_empty() || img.v.contains(char::is_whitespace) {
            r.error(
                &img.span,
                format!("image {:?} is not valid: e.g. image = \"ghcr.io/org/jobs:1.0\"", img.v),
            );
        } else {
            keys.image = Some(img.v);
        }
    }
    if let Some(v) = r.number(t, "vcpus") {
        match validate::vcpus(v.v) {
            Ok(()) => keys.vcpus = Some(v.v),
            Err(m) => r.error(&v.span, m),
        }
    }
    if let Some(m) = r.int(t, "memory") {
        match validate::memory(m.v) {
            Ok(mib) => keys.memory = Some(mib),
            Err(msg) => r.error(&m.span, msg),
        }
    }
    if let Some(s) = r.int(t, "timeout") {
        match validate::timeout(s.v) {
            Ok(secs) => keys.timeout = Some(secs),
            Err(msg) => r.error(&s.span, msg),
        }
    }
    for (k, v) in r.str_map(t, "env").unwrap_or_default() {
        match validate::env_name(&k.v) {
            Ok(()) => {
                keys.env.insert(k.v, v.v);
            }
            Err(msg) => r.error(&k.span, msg),
        }
    }
    read_retry(r, t, &mut keys);
    keys
}

fn read_retry(r: &mut Reader<'_>, t: &Tab<'_>, keys: &mut JobKeys) {
    let Some(rt) = r.table(t, "retry") else { return };
    r.check_keys(&rt, &["attempts", "evaluate_on_exit"]);
    if let Some(a) = r.int(&rt, "attempts") {
        let attempts = u32::try_from(a.v).unwrap_or(0);
        let check = RetryStrategy { attempts, evaluate_on_exit: Vec::new() }.check();
        match check {
            Ok(()) => keys.attempts = Some(attempts),
            Err(_) => r.error(
                &a.span,
                format!(
                    "retry attempts {} is out of range: AWS Batch allows 1 to 10, e.g. attempts = 3",
                    a.v
                ),
            ),
        }
    }
    let Some(rules) = r.tables(&rt, "evaluate_on_exit") else { return };
    if rules.v.len() > MAX_EVALUATE_ON_EXIT {
        r.error(
            &rules.span,
            format!(
                "{} evaluate_on_exit rules exceed the AWS limit of {MAX_EVALUATE_ON_EXIT}: merge rules with a trailing '*'",
                rules.v.len()
            ),
        );
    }
    let mut out = Vec::new();
    let mut ok = true;
    for rule_tab in &rules.v {
        match read_rule(r, rule_tab) {
            Some(rule) => out.push(rule),
            None => ok = false,
        }
    }
    if ok {
        keys.rules = Some(out);
    }
}

fn read_rule(r: &mut Reader<'_>, t: &Tab<'_>) -> Option<EvaluateOnExit> {
    r.check_keys(t, &["on_exit_code", "on_reason", "on_status_reason", "action"]);
    let on_exit_code = match t.get("on_exit_code") {
        Some((item, span)) if item.as_integer().is_some() => {
            Some(At { v: item.as_integer().map(|i| i.to_string()).unwrap_or_default(), span })
        }
        _ => r.string(t, "on_exit_code"),
    };
    let on_reason = r.string(t, "on_reason");
    let on_status_reason = r.string(t, "on_status_reason");
    let action = r.choice(t, "action", &["retry", "exit"], true);
    if t.get("action").is_none() {
        r.missing(t, "action", "\"retry\" (or \"exit\")");
    }
    let rule = EvaluateOnExit {
        on_status_reason: on_status_reason.map(|s| s.v),
        on_reason: on_reason.map(|s| s.v),
        on_exit_code: on_exit_code.map(|s| s.v),
        action: if action?.v == 0 { RetryAction::Retry } else { RetryAction::Exit },
    };
    if let Err(msg) = rule.check() {
        r.error(&t.span, format!("{}: fix this evaluate_on_exit rule", msg.message()));
        return None;
    }
    Some(rule)
}
