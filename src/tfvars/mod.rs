//! `batchfan tfvars`: the spec variables of `terraform/modules/pipeline`
//! (its `spec_variables.tf`), rendered from a pipeline spec as
//! `*.tfvars.json`, so the spec stays the single source of a deployment.
//!
//! Pure: spec in, JSON out. Everything the module cannot express (a cron with
//! seconds, a webhook secret outside SSM, a stage named like the pipeline's own
//! jobs) is an error naming the value and the fix.

mod schedule;

use serde_json::{json, Map, Value};

pub use self::schedule::schedule_expression;

use crate::{
    batch::{EvaluateOnExit, RetryAction},
    deploy,
    graph::build::barrier_job,
    run::layout,
    spec::{JobSpec, PipelineSpec, SecretSource},
};

/// The variables `render` writes: exactly those `spec_variables.tf` declares
/// (`tests/terraform_contract.rs` compares the two).
pub const VARIABLES: [&str; 15] = [
    "aggregation",
    "alert_tolerated_failure_percent",
    "alerts_topic_name",
    "barrier",
    "bucket_name",
    "cleanup",
    "job_definition_prefix",
    "job_queue_name",
    "pipeline_name",
    "s3_trigger",
    "schedule",
    "spec_toml",
    "stages",
    "table_name",
    "webhook",
];

/// Roles whose job definitions the module creates beside the stages'.
pub const OWN_JOB_ROLES: [&str; 3] = ["aggregation", "cleanup", "barrier"];

/// The module's variables for `spec`, whose TOML text is `spec_toml`.
/// `Err` lists every problem, one per entry.
pub fn render(spec: &PipelineSpec, spec_toml: &str) -> Result<Rendered, Vec<String>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    for stage in &spec.stages {
        if OWN_JOB_ROLES.contains(&stage.name.as_str()) {
            errors.push(format!(
                "stage name {:?} is also the name of the pipeline's own {} job definition ({}): rename the stage",
                stage.name,
                stage.name,
                deploy::job_definition_name(&job_definition_prefix(spec), &stage.name)
            ));
        }
    }
    let schedule = match &spec.triggers.cron {
        Some(cron) => match schedule_expression(&cron.schedule) {
            Ok(expression) => {
                json!({ "expression": expression, "timezone": cron.timezone, "input": cron.input })
            }
            Err(e) => {
                errors.push(e);
                Value::Null
            }
        },
        None => Value::Null,
    };
    let s3_trigger = match &spec.triggers.s3 {
        Some(s3) => {
            if s3.bucket == spec.storage.bucket {
                if let Some(e) = own_bucket_prefix_problem(spec, &s3.prefix) {
                    errors.push(e);
                }
            }
            json!({ "bucket": s3.bucket, "prefix": s3.prefix, "suffix": s3.suffix })
        }
        None => Value::Null,
    };
    let webhook = match &spec.triggers.webhook {
        Some(w) if w.enabled => {
            let default_parameter = default_webhook_parameter(&spec.name);
            let parameter = match &w.secret {
                Some(SecretSource::Ssm(name)) => Some(name.clone()),
                Some(source @ SecretSource::SecretsManager(id)) => {
                    let parameter = crate::deploy::webhook_secret_parameter(source);
                    notes.push(format!(
                        "webhook: the secret is the Secrets Manager secret {id:?}, read through SSM ({}); create it before `terraform apply` (the module creates no secret, and grants the trigger secretsmanager:GetSecretValue on it)",
                        parameter.as_deref().unwrap_or_default()
                    ));
                    parameter
                }
                Some(SecretSource::Env(var)) => {
                    notes.push(format!(
                        "webhook: the spec reads the secret from ${var} locally; on AWS it is the SSM SecureString {default_parameter} (created by the module; set secret_ssm to name another)"
                    ));
                    Some(default_parameter.clone())
                }
                Some(SecretSource::File(path)) => {
                    notes.push(format!(
                        "webhook: the spec reads the secret from {} locally; on AWS it is the SSM SecureString {default_parameter} (created by the module; set secret_ssm to name another)",
                        path.display()
                    ));
                    Some(default_parameter.clone())
                }
                None => Some(default_parameter.clone()),
            };
            match parameter {
                Some(p) => {
                    errors.extend(parameter_name_problem(&p));
                    json!({ "secret_parameter": p, "max_body_bytes": w.max_body_bytes })
                }
                None => Value::Null,
            }
        }
        _ => Value::Null,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut vars = Map::new();
    vars.insert("pipeline_name".into(), json!(spec.name));
    vars.insert("spec_toml".into(), json!(spec_toml));
    vars.insert(
        "stages".into(),
        Value::Array(
            spec.stages
                .iter()
                .map(|s| {
                    let mut job = job_value(&s.job);
                    if let Value::Object(m) = &mut job {
                        m.insert("name".into(), json!(s.name));
                    }
                    job
                })
                .collect(),
        ),
    );
    vars.insert("aggregation".into(), job_value(&spec.aggregation));
    vars.insert("cleanup".into(), job_value(&spec.cleanup));
    vars.insert("barrier".into(), job_value(&barrier_job(spec)));
    vars.insert("job_queue_name".into(), json!(spec.job_queue));
    vars.insert("job_definition_prefix".into(), json!(job_definition_prefix(spec)));
    vars.insert("table_name".into(), json!(spec.storage.table));
    vars.insert("bucket_name".into(), json!(spec.storage.bucket));
    vars.insert("alerts_topic_name".into(), json!(spec.alerts.topic));
    vars.insert("alert_tolerated_failure_percent".into(), json!(spec.alerts.tolerated_failure_percent));
    vars.insert("schedule".into(), schedule);
    vars.insert("s3_trigger".into(), s3_trigger);
    vars.insert("webhook".into(), webhook);
    Ok(Rendered { vars, notes })
}

/// What [`render`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Variable name → value.
    pub vars: Map<String, Value>,
    /// Things the user should know (printed on stderr), e.g. where a secret lives on AWS.
    pub notes: Vec<String>,
}

impl Rendered {
    /// The `*.tfvars.json` text: pretty JSON, keys sorted, a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.vars).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Job definitions are `{prefix}{stage}` ([`deploy::job_definition_name`]);
/// the spec's prefix is `{pipeline}-`.
pub fn job_definition_prefix(spec: &PipelineSpec) -> String {
    spec.job_definition_prefix.clone()
}

/// The SSM parameter of the webhook secret when the spec names none.
pub fn default_webhook_parameter(pipeline: &str) -> String {
    format!("/batchfan/{pipeline}/webhook-secret")
}

/// Longest SSM parameter name the module accepts (`spec_variables.tf`).
const MAX_PARAMETER_NAME: usize = 1011;

/// What the module's `webhook` validation would refuse in an SSM parameter name.
fn parameter_name_problem(name: &str) -> Option<String> {
    let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "_./+=@:-".contains(*c)));
    if let Some(c) = bad {
        return Some(format!(
            "webhook secret parameter {name:?} has {c:?}: SSM parameter names use letters, digits and _ . / + = @ : -"
        ));
    }
    (name.trim_start_matches('/').is_empty() || name.len() > MAX_PARAMETER_NAME).then(|| {
        format!(
            "webhook secret parameter {name:?} is {} characters: SSM parameter names have 1 to {MAX_PARAMETER_NAME}",
            name.len()
        )
    })
}

fn own_bucket_prefix_problem(spec: &PipelineSpec, prefix: &str) -> Option<String> {
    let runs = layout::run_prefix(&spec.name, "");
    let reserved = ["runs/", "batchfan/"];
    let overlaps =
        prefix.is_empty() || reserved.iter().any(|r| r.starts_with(prefix) || prefix.starts_with(r));
    overlaps.then(|| {
        format!(
            "s3 trigger prefix {prefix:?} on the pipeline's own bucket {:?} overlaps where runs write ({runs}...) or the deployed spec (batchfan/): every output would start another run; use a prefix such as \"inputs/\"",
            spec.storage.bucket
        )
    })
}

fn job_value(job: &JobSpec) -> Value {
    json!({
        "image": job.image,
        "command": job.command,
        "vcpus": job.vcpus,
        "memory_mib": job.memory_mib,
        "environment": job.env,
        "retry": {
            "attempts": job.retry.attempts,
            "evaluate_on_exit": job.retry.evaluate_on_exit.iter().map(rule_value).collect::<Vec<_>>(),
        },
        "timeout_seconds": job.timeout_secs,
    })
}

fn rule_value(rule: &EvaluateOnExit) -> Value {
    json!({
        "on_exit_code": rule.on_exit_code,
        "on_reason": rule.on_reason,
        "on_status_reason": rule.on_status_reason,
        "action": match rule.action {
            RetryAction::Retry => "RETRY",
            RetryAction::Exit => "EXIT",
        },
    })
}

#[cfg(test)]
mod tests;
