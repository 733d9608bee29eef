//! `batchfan tfvars`: the spec variables of `terraform/modules/pipeline`
//! (its `spec_variables.tf`), rendered from a pipeline spec as
//! `*.tfvars.json`, so the spec stays the single source of a deployment.
//!
//! Pure: spec in, JSON out. Everything the module cannot express (a cron with
//! seconds, a webhook secret outside SSM, a stage named like the pipeline's own
//! jobs) is an error naming the value and the fix.

use serde_json::{json, Map, Value};

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
                if cron.overlap == crate::spec::OverlapPolicy::Queue {
                    notes.push(
                        "cron overlap = \"queue\": on AWS the trigger cannot hold a slot until the last run ends, so a slot that comes while it is going is skipped (as overlap = \"skip\"); use \"allow\" to run slots side by side".into(),
                    );
                }
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
                Some(p) => json!({ "secret_parameter": p, "max_body_bytes": w.max_body_bytes }),
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

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

/// The EventBridge Scheduler expression of a spec cron (`sec min hour
/// day-of-month month day-of-week [year]`): `cron(min hour dom month dow year)`.
/// Scheduler has minutes, not seconds, and wants `?` in one of the two day
/// fields; day-of-week numbers agree (1 = Sunday).
pub fn schedule_expression(cron: &str) -> Result<String, String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return Err(format!(
            "schedule {cron:?} has {} fields: write `sec min hour day-of-month month day-of-week [year]`, e.g. \"0 0 2 * * *\"",
            fields.len()
        ));
    }
    if fields[0] != "0" {
        return Err(format!(
            "schedule {cron:?} fires at second {:?}: EventBridge Scheduler runs at whole minutes, set the seconds field to 0",
            fields[0]
        ));
    }
    let any = |f: &str| f == "*" || f == "?";
    let (mut dom, mut dow) = (fields[3].to_owned(), fields[5].to_owned());
    match (any(&dom), any(&dow)) {
        (true, true) => {
            dom = "*".into();
            dow = "?".into();
        }
        (true, false) => dom = "?".into(),
        (false, true) => dow = "?".into(),
        (false, false) => {
            return Err(format!(
                "schedule {cron:?} restricts both day-of-month ({dom}) and day-of-week ({dow}): AWS schedules allow one of them; set the other to *"
            ))
        }
    }
    let step_start = |field: &str, first: &str| match field.strip_prefix("*/") {
        Some(step) => format!("{first}/{step}"),
        None => field.to_owned(),
    };
    let minutes = step_start(fields[1], "0");
    let hours = step_start(fields[2], "0");
    let dom = step_start(&dom, "1");
    let month = names(&step_start(fields[4], "1"), &MONTH_NAMES, cron)?;
    let dow = names(&step_start(&dow, "1"), &DAY_NAMES, cron)?;
    let year = fields.get(6).map_or("*".to_owned(), |y| step_start(y, "1970"));
    Ok(format!("cron({minutes} {hours} {dom} {month} {dow} {year})"))
}

/// Upper-cases and shortens day or month names (`Sunday` → `SUN`) as AWS spells them.
fn names(field: &str, known: &[&str], cron: &str) -> Result<String, String> {
    let mut out = String::with_capacity(field.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| -> Result<(), String> {
        if word.is_empty() {
            return Ok(());
        }
        let upper = word.to_ascii_uppercase();
        let short = known.iter().find(|k| upper.starts_with(**k)).ok_or_else(|| {
            format!("schedule {cron:?}: {word:?} is not a day or month name: use e.g. MON or JAN")
        })?;
        out.push_str(short);
        word.clear();
        Ok(())
    };
    for c in field.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out)?;
            out.push(c);
        }
    }
    flush(&mut word, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{graph, plan::Sizing, spec};

    fn load(text: &str) -> PipelineSpec {
        spec::load_str(text, "t.toml", Path::new("/specs")).unwrap_or_else(|e| panic!("{e}"))
    }

    const BASE: &str = r#"
name = "orders"
[planner]
strategy = "range"
count = 10
[[stages]]
name = "confirm"
command = ["orders-confirm"]
memory = 4096
vcpus = 2
timeout = 600
env = { ORDERS_TABLE = "Orders" }
[stages.retry]
attempts = 4
evaluate_on_exit = [{ on_exit_code = 75, action = "retry" }, { on_reason = "CannotStart*", action = "exit" }]
[[stages]]
name = "ship"
command = ["ship", "--fast"]
"#;

    #[test]
    fn stages_and_own_jobs_carry_resources_retries_and_timeouts() {
        let spec = load(BASE);
        let r = render(&spec, BASE).unwrap();
        let v = &r.vars;
        assert_eq!(v["pipeline_name"], "orders");
        assert_eq!(v["spec_toml"], BASE);
        let stages = v["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0]["name"], "confirm");
        assert_eq!(stages[0]["command"], json!(["orders-confirm"]));
        assert_eq!(stages[0]["vcpus"], 2.0);
        assert_eq!(stages[0]["memory_mib"], 4096);
        assert_eq!(stages[0]["timeout_seconds"], 600);
        assert_eq!(stages[0]["environment"], json!({ "ORDERS_TABLE": "Orders" }));
        assert_eq!(stages[0]["retry"]["attempts"], 4);
        let rules = stages[0]["retry"]["evaluate_on_exit"].as_array().unwrap();
        assert_eq!(rules[0]["on_exit_code"], "75");
        assert_eq!(rules[0]["action"], "RETRY");
        assert_eq!(rules[1]["on_reason"], "CannotStart*");
        assert_eq!(rules[1]["action"], "EXIT");
        assert_eq!(stages[1]["name"], "ship");
        assert_eq!(stages[1]["timeout_seconds"], Value::Null);
        // The defaults' retry rules reach Terraform too.
        let default_rules = &spec.stages[1].job.retry.evaluate_on_exit;
        assert_eq!(stages[1]["retry"]["evaluate_on_exit"].as_array().unwrap().len(), default_rules.len());
        assert_eq!(v["aggregation"]["command"], json!(["batchfan", "job", "concat"]));
        assert_eq!(v["cleanup"]["command"], json!(["batchfan", "job", "cleanup"]));
        assert_eq!(v["barrier"]["command"], json!(graph::build::BARRIER_COMMAND));
        assert_eq!(v["job_queue_name"], "batchfan-orders");
        assert_eq!(v["job_definition_prefix"], "orders-");
        assert_eq!(v["alerts_topic_name"], "orders-alerts");
        assert_eq!(v["schedule"], Value::Null);
        assert_eq!(v["s3_trigger"], Value::Null);
        assert_eq!(v["webhook"], Value::Null);
        assert!(r.to_json().ends_with("}\n"));
    }

    #[test]
    fn renders_exactly_the_declared_variable_names() {
        let r = render(&load(BASE), BASE).unwrap();
        let mut rendered: Vec<&str> = r.vars.keys().map(String::as_str).collect();
        rendered.sort_unstable();
        let mut declared: Vec<&str> = VARIABLES.to_vec();
        declared.sort_unstable();
        assert_eq!(rendered, declared);
    }

    #[test]
    fn job_definition_names_match_what_the_submitter_submits() {
        // Every node the submitter submits names a job definition the module creates.
        let text = format!("max_array_size = 2\n{BASE}").replace("count = 10", "count = 100");
        let spec = load(&text);
        let prefix = job_definition_prefix(&spec);
        let mut created: Vec<String> =
            spec.stages.iter().map(|s| deploy::job_definition_name(&prefix, &s.name)).collect();
        created.extend(OWN_JOB_ROLES.iter().map(|r| deploy::job_definition_name(&prefix, r)));
        // 100 children in arrays of 2: 50 shards per stage, so barriers too.
        let g = graph::build(&spec, "20260101t000000-abcdef", &Sizing::new(100, 1, 2)).unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for node in &g.nodes {
            kinds.insert(node.role.kind());
            let def = node.job_definition(&spec);
            assert!(
                created.contains(&def),
                "{} submits job definition {def}, which the module does not create",
                node.name
            );
        }
        assert!(kinds.contains("barrier"), "the graph has barrier jobs: {kinds:?}");
    }

    #[test]
    fn triggers_render_schedule_s3_and_webhook() {
        let text = format!(
            "{BASE}\n[triggers.cron]\nschedule = \"0 30 2 * * Mon-Fri\"\ntimezone = \"Europe/Paris\"\n[triggers.s3]\nbucket = \"in-bucket\"\nprefix = \"drop/\"\nsuffix = \".csv\"\n[triggers.webhook]\nsecret_ssm = \"/hooks/orders\"\n"
        );
        let r = render(&load(&text), &text).unwrap();
        assert_eq!(
            r.vars["schedule"],
            json!({ "expression": "cron(30 2 ? * MON-FRI *)", "timezone": "Europe/Paris", "input": null })
        );
        assert_eq!(
            r.vars["s3_trigger"],
            json!({ "bucket": "in-bucket", "prefix": "drop/", "suffix": ".csv" })
        );
        assert_eq!(r.vars["webhook"]["secret_parameter"], "/hooks/orders");
        assert_eq!(r.vars["webhook"]["max_body_bytes"], spec::DEFAULT_MAX_BODY_BYTES);
        assert!(r.notes.is_empty());
    }

    #[test]
    fn webhook_secret_from_env_lives_in_the_default_parameter_on_aws() {
        let text = format!("{BASE}\n[triggers.webhook]\nsecret_env = \"HOOK_SECRET\"\n");
        let r = render(&load(&text), &text).unwrap();
        assert_eq!(r.vars["webhook"]["secret_parameter"], "/batchfan/orders/webhook-secret");
        assert!(r.notes[0].contains("HOOK_SECRET"), "{:?}", r.notes);
    }

    #[test]
    fn a_queueing_cron_is_said_to_skip_on_aws() {
        let text = format!("{BASE}\n[triggers.cron]\nschedule = \"0 0 6 * * *\"\noverlap = \"queue\"\n");
        let r = render(&load(&text), &text).unwrap();
        assert!(
            r.notes.iter().any(|n| n.contains("overlap = \"queue\"") && n.contains("skipped")),
            "{:?}",
            r.notes
        );
        let text = text.replace("queue", "allow");
        assert!(render(&load(&text), &text).unwrap().notes.is_empty());
    }

    #[test]
    fn webhook_secret_in_secrets_manager_is_read_through_ssm() {
        let text = format!("{BASE}\n[triggers.webhook]\nsecret_secretsmanager = \"orders/hook\"\n");
        let r = render(&load(&text), &text).unwrap();
        assert_eq!(r.vars["webhook"]["secret_parameter"], "/aws/reference/secretsmanager/orders/hook");
        assert!(r.notes[0].contains("\"orders/hook\"") && r.notes[0].contains("create it"), "{:?}", r.notes);
    }

    #[test]
    fn what_the_module_cannot_express_is_an_error_naming_the_fix() {
        let text = BASE.replace("name = \"ship\"", "name = \"cleanup\"");
        let e = render(&load(&text), &text).unwrap_err();
        assert!(
            e[0].contains("\"cleanup\"") && e[0].contains("orders-cleanup") && e[0].contains("rename"),
            "{e:?}"
        );

        let text = format!("{BASE}\n[storage]\nbucket = \"orders-data\"\n[triggers.s3]\nbucket = \"orders-data\"\nprefix = \"runs/\"\n");
        let e = render(&load(&text), &text).unwrap_err();
        assert!(e[0].contains("\"runs/\"") && e[0].contains("inputs/"), "{e:?}");
        let text = text.replace("prefix = \"runs/\"", "prefix = \"\"");
        assert!(render(&load(&text), &text).is_err(), "an empty prefix on the own bucket loops");
        let text = text.replace("prefix = \"\"", "prefix = \"inputs/\"");
        assert!(render(&load(&text), &text).is_ok());
    }

    #[test]
    fn cron_becomes_an_eventbridge_scheduler_expression() {
        assert_eq!(schedule_expression("0 0 2 * * *").unwrap(), "cron(0 2 * * ? *)");
        assert_eq!(schedule_expression("0 0 2 * * Sun").unwrap(), "cron(0 2 ? * SUN *)");
        assert_eq!(schedule_expression("0 15 8 1 * *").unwrap(), "cron(15 8 1 * ? *)");
        assert_eq!(schedule_expression("0 */15 * * * *").unwrap(), "cron(0/15 * * * ? *)");
        assert_eq!(
            schedule_expression("0 0 9 ? jan,jul Tuesday 2030").unwrap(),
            "cron(0 9 ? JAN,JUL TUE 2030)"
        );
        assert_eq!(schedule_expression("0 0 9 * * 2-6").unwrap(), "cron(0 9 ? * 2-6 *)");
        let e = schedule_expression("30 0 2 * * *").unwrap_err();
        assert!(e.contains("\"30\"") && e.contains("seconds field to 0"), "{e}");
        let e = schedule_expression("0 0 2 1 * Mon").unwrap_err();
        assert!(e.contains("day-of-month (1)") && e.contains("day-of-week (Mon)"), "{e}");
        assert!(schedule_expression("0 2 * *").unwrap_err().contains("4 fields"));
        assert!(schedule_expression("0 0 2 * * Funday").unwrap_err().contains("\"Funday\""));
    }
}
