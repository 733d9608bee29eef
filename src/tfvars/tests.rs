//! `batchfan tfvars` rendering: variables, jobs, triggers and what the module cannot express.

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
    assert_eq!(r.vars["s3_trigger"], json!({ "bucket": "in-bucket", "prefix": "drop/", "suffix": ".csv" }));
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
fn a_queueing_cron_deploys_without_a_note_now_that_aws_holds_its_slots() {
    // Regression: `tfvars` said queue was skipped on AWS; the trigger now holds the slot.
    let text = format!("{BASE}\n[triggers.cron]\nschedule = \"0 0 6 * * *\"\noverlap = \"queue\"\n");
    let r = render(&load(&text), &text).unwrap();
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(r.vars["schedule"]["expression"], "cron(0 6 * * ? *)");
}

#[test]
fn webhook_parameter_names_are_checked_as_the_module_checks_them() {
    // The module once checked them with a repeat count over 1000, which
    // Terraform's regex engine rejects: every webhook failed at plan.
    let long = format!("/{}", "a".repeat(MAX_PARAMETER_NAME - 1));
    let text = format!("{BASE}\n[triggers.webhook]\nsecret_ssm = \"{long}\"\n");
    assert_eq!(render(&load(&text), &text).unwrap().vars["webhook"]["secret_parameter"], long.as_str());
    let text = format!("{BASE}\n[triggers.webhook]\nsecret_ssm = \"{long}b\"\n");
    let e = render(&load(&text), &text).unwrap_err();
    assert!(e[0].contains("1012 characters") && e[0].contains("1 to 1011"), "{e:?}");
    let text = format!("{BASE}\n[triggers.webhook]\nsecret_ssm = \"/hooks/orders hook\"\n");
    let e = render(&load(&text), &text).unwrap_err();
    assert!(e[0].contains("' '") && e[0].contains("letters, digits"), "{e:?}");
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
