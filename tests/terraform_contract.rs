//! The Terraform module (`terraform/modules/pipeline`) against the code's
//! deployment contract (`batchfan::deploy`, `batchfan::env`, `batchfan::tfvars`):
//! Lambda binaries and handlers, the env each Lambda and job definition gets,
//! job definition names, table keys and TTL, topic names, and the IAM actions
//! each component's code policy grants (exactly the contract's, scoped).
//!
//! The module is read with HashiCorp's HCL parser through
//! `scripts/tools/hcl2json/hcl2json.js` (installed by
//! `scripts/setup/40-terraform-tools.sh`). `drift_is_caught_*` feed the checks
//! deliberately drifted copies to prove they fail.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use batchfan::{
    deploy::{self, Runs},
    run::plan_topic,
    tfvars,
};
use serde_json::Value;

const SETUP: &str = "bash scripts/setup/40-terraform-tools.sh";
const MODULE: &str = "terraform/modules/pipeline";
const EXAMPLE: &str = "terraform/examples/orders";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `{file: parsed HCL}` of every .tf file under `dir` (relative to the repository).
fn hcl(dir: &str) -> Value {
    let script = std::env::var_os("BATCHFAN_HCL2JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("scripts/tools/hcl2json/hcl2json.js"));
    let modules = script.parent().unwrap_or(Path::new(".")).join("node_modules/@cdktf/hcl2json");
    assert!(
        modules.is_dir(),
        "the HCL parser is not installed ({} is missing): run `{SETUP}`",
        modules.display()
    );
    let out = Command::new("node").arg(&script).arg(dir).current_dir(root()).output().unwrap_or_else(|e| {
        panic!("cannot run node (needed for {}): {e}: install Node.js", script.display())
    });
    assert!(out.status.success(), "{dir} does not parse:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("hcl2json prints JSON")
}

/// Every block of `kind` (`resource`, `data`) of `type_` named `name`, over all files.
fn blocks<'a>(tf: &'a Value, kind: &str, type_: &str, name: &str) -> Vec<&'a Value> {
    files(tf).filter_map(|f| f.get(kind)?.get(type_)?.get(name)?.as_array()).flatten().collect()
}

fn files(tf: &Value) -> impl Iterator<Item = &Value> {
    tf.as_object().into_iter().flat_map(|m| m.values())
}

/// The one block of `kind`/`type_`/`name`, or a disagreement.
fn one<'a>(
    tf: &'a Value,
    kind: &str,
    type_: &str,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<&'a Value> {
    let found = blocks(tf, kind, type_, name);
    if found.len() != 1 {
        errors.push(format!("expected one {kind} {type_}.{name} in the module, found {}", found.len()));
        return None;
    }
    Some(found[0])
}

/// The local value `name`.
fn local<'a>(tf: &'a Value, name: &str) -> Option<&'a Value> {
    files(tf).filter_map(|f| f.get("locals")?.as_array()).flatten().find_map(|l| l.get(name))
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

fn keys(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Quoted names in an HCL expression string such as `${toset(["a", "b"])}`.
fn quoted(expr: &str) -> BTreeSet<String> {
    expr.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The declared variable names of the .tf files whose path ends with `file`.
fn variables(tf: &Value, file: &str) -> BTreeSet<String> {
    tf.as_object()
        .into_iter()
        .flatten()
        .filter(|(path, _)| path.ends_with(file))
        .flat_map(|(_, f)| keys(f.get("variable")))
        .collect()
}

/// A statement of a policy document: its actions and resources (resources as
/// strings: a list, or one expression).
struct Statement {
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
}

fn statements(doc: &Value) -> Vec<Statement> {
    let plain = doc.get("statement").and_then(Value::as_array).into_iter().flatten();
    let dynamic = doc
        .get("dynamic")
        .and_then(|d| d.get("statement"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("content").and_then(Value::as_array))
        .flatten();
    plain
        .chain(dynamic)
        .map(|s| Statement {
            sid: str_of(s.get("sid")).to_owned(),
            actions: s
                .get("actions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|a| a.as_str().unwrap_or("").to_owned())
                .collect(),
            resources: match s.get("resources") {
                Some(Value::Array(rs)) => rs.iter().map(|r| r.as_str().unwrap_or("").to_owned()).collect(),
                Some(Value::String(expr)) => vec![expr.clone()],
                _ => Vec::new(),
            },
        })
        .collect()
}

/// Actions IAM cannot scope to a resource: "*" is their only resource.
const UNSCOPED_ACTIONS: [&str; 2] = ["batch:ListJobs", "batch:DescribeJobs"];

/// What a scoped resource of an action must reference (by action prefix).
fn scope_for(component: &str, action: &str) -> &'static [&'static str] {
    match (component, action.split(':').next().unwrap_or("")) {
        (_, "s3") => &["local.bucket_arn", "local.spec_object_arn", "local.input_bucket_arns"],
        (_, "dynamodb") => &["aws_dynamodb_table.this.arn", "var.job_table_arns"],
        ("trigger", "sns") => &["aws_sns_topic.plan.arn"],
        ("alert", "sns") => &["aws_sns_topic.alerts.arn", "aws_sns_topic.plan.arn"],
        (_, "ssm") => &["local.webhook_parameter_arn"],
        ("trigger", "secretsmanager") => &["local.webhook_secret_arn"],
        (_, "kms") => &["aws_kms_key.this.arn"],
        (_, "batch") if action == "batch:SubmitJob" => &["local.job_queue_arn", "local.job_definition_arns"],
        (_, "batch") if action == "batch:TagResource" => &[":job/*"],
        _ => &[],
    }
}

/// Checks one component's code policy document against `deploy::COMPONENTS`.
fn check_code_policy(tf: &Value, component: &deploy::Component, errors: &mut Vec<String>) {
    let doc_name = format!("{}_code", component.name);
    let Some(doc) = one(tf, "data", "aws_iam_policy_document", &doc_name, errors) else { return };
    let mut granted = BTreeSet::new();
    for st in statements(doc) {
        for action in &st.actions {
            granted.insert(action.clone());
            if action.contains('*') {
                errors.push(format!("{doc_name} statement {:?} grants wildcard action {action}", st.sid));
            }
        }
        let unscoped_ok =
            !st.actions.is_empty() && st.actions.iter().all(|a| UNSCOPED_ACTIONS.contains(&a.as_str()));
        for r in &st.resources {
            if r == "*" && !unscoped_ok {
                errors.push(format!(
                    "{doc_name} statement {:?} grants {:?} on every resource (\"*\"): scope it to the pipeline's resources",
                    st.sid, st.actions
                ));
            }
        }
        if st.resources.is_empty() {
            errors.push(format!("{doc_name} statement {:?} names no resources", st.sid));
        }
        for action in &st.actions {
            let scope = scope_for(component.name, action);
            if scope.is_empty() || unscoped_ok {
                continue;
            }
            for r in &st.resources {
                if !scope.iter().any(|s| r.contains(s)) {
                    errors.push(format!(
                        "{doc_name} statement {:?}: {action} on {r}, which is not this pipeline's (expected a reference to one of {scope:?})",
                        st.sid
                    ));
                }
            }
        }
    }
    let expected = set(component.iam_actions);
    for extra in granted.difference(&expected) {
        errors.push(format!(
            "{}: Terraform grants {extra}, which deploy::COMPONENTS does not list for it (remove it, or add it to src/deploy.rs if the code calls it)",
            component.name
        ));
    }
    for missing in expected.difference(&granted) {
        errors.push(format!(
            "{}: the code calls {missing} (deploy::COMPONENTS) but {doc_name} does not grant it",
            component.name
        ));
    }
}

/// Actions the runtime policies (not the code) may grant.
const LAMBDA_RUNTIME_ACTIONS: [&str; 5] = [
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
];
const JOB_EXECUTION_ACTIONS: [&str; 6] = [
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
];

/// Every disagreement between the module and the code, one line each.
fn check(tf: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let lambdas: Vec<&deploy::Component> =
        deploy::COMPONENTS.iter().filter(|c| c.runs == Runs::Lambda).collect();
    let lambda_names: BTreeSet<String> = lambdas.iter().map(|c| c.name.to_owned()).collect();

    // ---- Lambdas: binaries, handler, runtime, env ----
    let functions = quoted(str_of(local(tf, "functions")));
    if functions != lambda_names {
        errors.push(format!(
            "local.functions is {functions:?}; the code's Lambda binaries are {lambda_names:?}"
        ));
    }
    if let Some(f) = one(tf, "resource", "aws_lambda_function", "this", &mut errors) {
        let expect = [
            ("for_each", "${local.functions}"),
            // One binary (`bootstrap` in each zip) for the three: the handler names the dispatcher.
            ("handler", "${each.key}"),
            ("runtime", "provided.al2023"),
            ("function_name", "${var.pipeline_name}-${each.key}"),
        ];
        for (attr, want) in expect {
            let got = str_of(f.get(attr));
            if got != want {
                errors.push(format!("aws_lambda_function.this {attr} is {got:?}, expected {want:?}"));
            }
        }
        if !str_of(f.get("filename")).ends_with("/${each.key}/bootstrap.zip") {
            errors.push(format!(
                "aws_lambda_function.this filename {:?} is not {{dir}}/{{binary}}/bootstrap.zip (what scripts/package-lambdas.sh writes)",
                str_of(f.get("filename"))
            ));
        }
        // One submitter process at a time: the SubmitJob limiter is then the pipeline's (issue 10).
        let reserved = str_of(f.get("reserved_concurrent_executions"));
        let want = format!("each.key == \"submit\" ? var.{}", deploy::SUBMIT_CONCURRENCY_VARIABLE);
        if !reserved.contains(&want) {
            errors.push(format!(
                "aws_lambda_function.this reserved_concurrent_executions is {reserved:?}: the submit Lambda must take var.{} (one submitter at a time keeps SubmitJob under the account's rate)",
                deploy::SUBMIT_CONCURRENCY_VARIABLE
            ));
        }
        let env = f.get("environment").and_then(|e| e.get(0)).and_then(|e| e.get("variables"));
        if str_of(env) != "${local.lambda_env[each.key]}" {
            errors.push(format!(
                "aws_lambda_function.this environment is {env:?}, expected local.lambda_env[each.key]"
            ));
        }
    }
    let lambda_env = local(tf, "lambda_env");
    if keys(lambda_env) != lambda_names {
        errors.push(format!("local.lambda_env covers {:?}, expected {lambda_names:?}", keys(lambda_env)));
    }
    for c in &lambdas {
        let got = keys(lambda_env.and_then(|e| e.get(c.name)));
        let want = set(c.env);
        if got != want {
            errors.push(format!(
                "{} Lambda env: Terraform sets {:?} but the code reads {:?} (deploy::COMPONENTS)",
                c.name,
                got.difference(&want).collect::<Vec<_>>(),
                want.difference(&got).collect::<Vec<_>>()
            ));
        }
    }

    let default = files(tf)
        .filter_map(|f| f.get("variable")?.get(deploy::SUBMIT_CONCURRENCY_VARIABLE)?.get(0)?.get("default"))
        .next();
    if default.and_then(Value::as_u64) != Some(u64::from(deploy::SUBMIT_RESERVED_CONCURRENCY)) {
        errors.push(format!(
            "variable {} defaults to {default:?}, expected {} (deploy::SUBMIT_RESERVED_CONCURRENCY)",
            deploy::SUBMIT_CONCURRENCY_VARIABLE,
            deploy::SUBMIT_RESERVED_CONCURRENCY
        ));
    }

    // ---- job definitions: names, env, roles ----
    let own = keys(local(tf, "own_jobs"));
    if own != set(&tfvars::OWN_JOB_ROLES) {
        errors.push(format!("local.own_jobs is {own:?}, expected {:?}", tfvars::OWN_JOB_ROLES));
    }
    if let Some(d) = one(tf, "resource", "aws_batch_job_definition", "this", &mut errors) {
        let want = deploy::job_definition_name("${var.job_definition_prefix}", "${each.key}");
        if str_of(d.get("name")) != want || str_of(d.get("for_each")) != "${local.jobs}" {
            errors.push(format!(
                "aws_batch_job_definition.this is named {:?} over {:?}; deploy::job_definition_name gives {want:?} over local.jobs",
                str_of(d.get("name")),
                str_of(d.get("for_each"))
            ));
        }
        let props = str_of(d.get("container_properties"));
        for needle in
            ["local.job_definition_env", "aws_iam_role.job.arn", "aws_iam_role.job_execution.arn", "awslogs"]
        {
            if !props.contains(needle) {
                errors
                    .push(format!("aws_batch_job_definition.this container_properties do not use {needle}"));
            }
        }
        for name in deploy::JOB_OVERRIDE_ENV {
            if props.contains(name) {
                errors.push(format!(
                    "job definitions set {name}, which the submitter sets per job in container overrides (deploy::JOB_OVERRIDE_ENV)"
                ));
            }
        }
        if d.get("retry_strategy").and_then(|r| r.get(0)).and_then(|r| r.get("dynamic")).is_none() {
            errors.push(
                "aws_batch_job_definition.this has no evaluate_on_exit rules in its retry_strategy".into(),
            );
        }
    }
    let job_env = keys(local(tf, "job_definition_env"));
    if job_env != set(deploy::JOB_DEFINITION_ENV) {
        errors.push(format!(
            "local.job_definition_env sets {job_env:?}; deploy::JOB_DEFINITION_ENV is {:?}",
            deploy::JOB_DEFINITION_ENV
        ));
    }

    // ---- table keys and TTL ----
    if let Some(t) = one(tf, "resource", "aws_dynamodb_table", "this", &mut errors) {
        let pairs = [
            ("hash_key", str_of(t.get("hash_key")), deploy::TABLE_PARTITION_KEY),
            ("range_key", str_of(t.get("range_key")), deploy::TABLE_SORT_KEY),
            (
                "ttl attribute_name",
                str_of(t.get("ttl").and_then(|x| x.get(0)).and_then(|x| x.get("attribute_name"))),
                deploy::TTL_ATTRIBUTE,
            ),
        ];
        for (what, got, want) in pairs {
            if got != want {
                errors.push(format!("the table's {what} is {got:?}; the code uses {want:?}"));
            }
        }
        let ttl_on =
            t.get("ttl").and_then(|x| x.get(0)).and_then(|x| x.get("enabled")) == Some(&Value::Bool(true));
        if !ttl_on {
            errors.push("the table's TTL is not enabled".into());
        }
    }

    // ---- topics and queue ----
    let topic_names =
        [("plan", plan_topic("${var.pipeline_name}")), ("alerts", "${var.alerts_topic_name}".to_owned())];
    for (name, want) in topic_names {
        if let Some(t) = one(tf, "resource", "aws_sns_topic", name, &mut errors) {
            if str_of(t.get("name")) != want {
                errors.push(format!(
                    "aws_sns_topic.{name} is named {:?}; the code uses {want:?}",
                    str_of(t.get("name"))
                ));
            }
            if t.get("kms_master_key_id").is_none() {
                errors.push(format!("aws_sns_topic.{name} is not KMS encrypted"));
            }
        }
    }
    if let Some(q) = one(tf, "resource", "aws_batch_job_queue", "this", &mut errors) {
        if str_of(q.get("name")) != "${var.job_queue_name}" {
            errors
                .push(format!("the job queue is named {:?}, not var.job_queue_name", str_of(q.get("name"))));
        }
    }
    if let Some(rule) = one(tf, "resource", "aws_cloudwatch_event_rule", "batch_job_state", &mut errors) {
        let pattern = str_of(rule.get("event_pattern"));
        for needle in [
            "\"aws.batch\"",
            "\"Batch Job State Change\"",
            "\"FAILED\"",
            "\"SUCCEEDED\"",
            "local.job_queue_arn",
            // Successes only of the cleanup (what ends a run), not of every child.
            "${var.job_definition_prefix}cleanup:",
        ] {
            if !pattern.contains(needle) {
                errors.push(format!("the Batch job state rule's pattern lacks {needle}"));
            }
        }
    }

    // ---- IAM: code policies exactly the contract; runtime policies bounded ----
    for c in deploy::COMPONENTS {
        check_code_policy(tf, c, &mut errors);
    }
    let code_policies = local(tf, "lambda_code_policies");
    for c in &lambdas {
        let want = format!("${{data.aws_iam_policy_document.{}_code.json}}", c.name);
        if str_of(code_policies.and_then(|p| p.get(c.name))) != want {
            errors.push(format!("local.lambda_code_policies.{} is not {want}", c.name));
        }
    }
    let runtime_bounds =
        [("lambda_runtime", &LAMBDA_RUNTIME_ACTIONS[..]), ("job_execution", &JOB_EXECUTION_ACTIONS[..])];
    for (doc_name, allowed) in runtime_bounds {
        if let Some(doc) = one(tf, "data", "aws_iam_policy_document", doc_name, &mut errors) {
            for st in statements(doc) {
                for a in st.actions.iter().filter(|a| !allowed.contains(&a.as_str())) {
                    errors.push(format!(
                        "{doc_name} grants {a}: runtime policies may grant only {allowed:?}; actions the code calls belong in deploy::COMPONENTS"
                    ));
                }
            }
        }
    }
    // Which policy goes on which role: nothing else on the code's roles.
    let attached = [
        ("lambda_code", "${aws_iam_role.lambda[each.key].id}", "${local.lambda_code_policies[each.key]}"),
        (
            "lambda_runtime",
            "${aws_iam_role.lambda[each.key].id}",
            "${data.aws_iam_policy_document.lambda_runtime[each.key].json}",
        ),
        ("job_code", "${aws_iam_role.job.id}", "${data.aws_iam_policy_document.job_code.json}"),
        (
            "job_execution",
            "${aws_iam_role.job_execution.id}",
            "${data.aws_iam_policy_document.job_execution.json}",
        ),
        ("scheduler", "${aws_iam_role.scheduler[0].id}", "${data.aws_iam_policy_document.scheduler.json}"),
    ];
    let all_role_policies: BTreeSet<String> =
        files(tf).flat_map(|f| keys(f.get("resource").and_then(|r| r.get("aws_iam_role_policy")))).collect();
    let known: BTreeSet<String> = attached.iter().map(|(n, _, _)| (*n).to_owned()).collect();
    for extra in all_role_policies.difference(&known) {
        errors.push(format!("aws_iam_role_policy.{extra} is not part of the contract: grant code actions in a *_code document"));
    }
    for (name, role, policy) in attached {
        if let Some(p) = one(tf, "resource", "aws_iam_role_policy", name, &mut errors) {
            if str_of(p.get("role")) != role || str_of(p.get("policy")) != policy {
                errors.push(format!(
                    "aws_iam_role_policy.{name} attaches {:?} to {:?}, expected {policy} on {role}",
                    str_of(p.get("policy")),
                    str_of(p.get("role"))
                ));
            }
        }
    }
    errors
}

/// The module's spec variables (spec_variables.tf) against what `batchfan tfvars` renders.
fn check_variables(tf: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let spec_vars = variables(tf, "spec_variables.tf");
    let rendered = set(&tfvars::VARIABLES);
    if spec_vars != rendered {
        errors.push(format!(
            "spec_variables.tf declares {:?} that batchfan tfvars does not render, and batchfan tfvars renders {:?} that it does not declare",
            spec_vars.difference(&rendered).collect::<Vec<_>>(),
            rendered.difference(&spec_vars).collect::<Vec<_>>()
        ));
    }
    for file in files(tf) {
        for (name, decls) in file.get("variable").and_then(Value::as_object).into_iter().flatten() {
            let decl = decls.get(0).unwrap_or(&Value::Null);
            if str_of(decl.get("description")).is_empty() {
                errors.push(format!("variable {name} has no description"));
            }
            if !spec_vars.contains(name) && decl.get("default").is_none() {
                errors.push(format!(
                    "deployment variable {name} has no default: only spec variables may be required"
                ));
            }
        }
    }
    errors
}

#[test]
fn module_agrees_with_the_code() {
    let tf = hcl(MODULE);
    let errors = check(&tf);
    assert!(
        errors.is_empty(),
        "terraform/modules/pipeline disagrees with src/deploy.rs:\n{}",
        errors.join("\n")
    );
}

#[test]
fn tfvars_renders_exactly_the_modules_spec_variables() {
    let tf = hcl(MODULE);
    let errors = check_variables(&tf);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn example_passes_every_spec_variable_and_its_tfvars_are_a_fresh_render() {
    let tf = hcl(EXAMPLE);
    let block = files(&tf)
        .filter_map(|f| f.get("module")?.get("orders")?.as_array())
        .flatten()
        .next()
        .expect("the example has module \"orders\"");
    assert_eq!(str_of(block.get("source")), "../../modules/pipeline");
    let declared = variables(&tf, "spec_variables.tf");
    for v in tfvars::VARIABLES {
        assert!(block.get(v).is_some(), "the example does not pass {v} to the module");
        assert!(declared.contains(v), "the example does not declare {v}");
    }
    let spec_path = root().join("jobs/orders.toml");
    let text = std::fs::read_to_string(&spec_path).unwrap();
    let spec = batchfan::spec::load(&spec_path).unwrap_or_else(|e| panic!("{e}"));
    let fresh = tfvars::render(&spec, &text).unwrap().to_json();
    let committed = std::fs::read_to_string(root().join(EXAMPLE).join("orders.auto.tfvars.json")).unwrap();
    assert!(
        fresh == committed,
        "terraform/examples/orders/orders.auto.tfvars.json is stale: run `batchfan tfvars jobs/orders.toml --out terraform/examples/orders/orders.auto.tfvars.json`"
    );
}

// ---- the checks fail on drift ----

fn module_file<'a>(tf: &'a mut Value, file: &str) -> &'a mut Value {
    tf.get_mut(format!("{MODULE}/{file}")).unwrap_or_else(|| panic!("{file} is in the module"))
}

/// Applies `drift` to a copy of the module and returns the disagreements found.
fn drifted(tf: &Value, drift: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut copy = tf.clone();
    drift(&mut copy);
    let mut errors = check(&copy);
    errors.extend(check_variables(&copy));
    errors
}

fn assert_caught(errors: &[String], needles: &[&str]) {
    assert!(
        errors.iter().any(|e| needles.iter().all(|n| e.contains(n))),
        "no disagreement mentions {needles:?}; found:\n{}",
        errors.join("\n")
    );
}

#[test]
fn drift_is_caught_in_lambda_env_handlers_and_binaries() {
    let tf = hcl(MODULE);
    assert!(check(&tf).is_empty(), "the module agrees before the drift");
    let errors = drifted(&tf, |tf| {
        let env = &mut module_file(tf, "main.tf")["locals"][0]["lambda_env"]["trigger"];
        let m = env.as_object_mut().unwrap();
        let v = m.remove("BATCHFAN_PLAN_TOPIC_ARN").unwrap();
        m.insert("BATCHFAN_PLAN_TOPIC".into(), v);
    });
    assert_caught(&errors, &["trigger Lambda env", "BATCHFAN_PLAN_TOPIC\"", "BATCHFAN_PLAN_TOPIC_ARN"]);

    let errors = drifted(&tf, |tf| {
        module_file(tf, "lambdas.tf")["resource"]["aws_lambda_function"]["this"][0]["handler"] =
            "main".into();
    });
    assert_caught(&errors, &["handler", "\"main\"", "each.key"]);

    let errors = drifted(&tf, |tf| {
        module_file(tf, "main.tf")["locals"][0]["functions"] =
            "${toset([\"trigger\", \"submitter\", \"alert\"])}".into();
    });
    assert_caught(&errors, &["local.functions", "submitter"]);
}

/// The statement `sid` of the policy document `doc` in iam.tf.
fn statement_mut<'a>(tf: &'a mut Value, doc: &str, sid: &str) -> &'a mut Value {
    module_file(tf, "iam.tf")["data"]["aws_iam_policy_document"][doc][0]["statement"]
        .as_array_mut()
        .and_then(|sts| sts.iter_mut().find(|s| s["sid"] == sid))
        .unwrap_or_else(|| panic!("{doc} has statement {sid}"))
}

#[test]
fn drift_is_caught_in_iam_actions_and_scopes() {
    let tf = hcl(MODULE);
    // A broader action than the code calls.
    let errors = drifted(&tf, |tf| {
        let st = statement_mut(tf, "submit_code", "ReconcileByName");
        st["actions"].as_array_mut().unwrap().push("batch:TerminateJob".into());
    });
    assert_caught(&errors, &["submit", "batch:TerminateJob", "does not list"]);
    // A wildcard action.
    let errors = drifted(&tf, |tf| {
        statement_mut(tf, "job_code", "Tables")["actions"] = serde_json::json!(["dynamodb:*"]);
    });
    assert_caught(&errors, &["wildcard action dynamodb:*"]);
    assert_caught(&errors, &["job", "dynamodb:BatchWriteItem", "does not grant"]);
    // An action the code needs, missing.
    let errors = drifted(&tf, |tf| {
        statement_mut(tf, "alert_code", "PublishAlerts")["actions"] = serde_json::json!([]);
        statement_mut(tf, "alert_code", "PublishPlan")["actions"] = serde_json::json!([]);
    });
    assert_caught(&errors, &["alert", "sns:Publish", "does not grant"]);
    // A scoped action on every resource.
    let errors = drifted(&tf, |tf| {
        statement_mut(tf, "trigger_code", "PublishPlan")["resources"] = serde_json::json!(["*"]);
    });
    assert_caught(&errors, &["trigger_code", "PublishPlan", "every resource"]);
    // The right action on the wrong topic.
    let errors = drifted(&tf, |tf| {
        statement_mut(tf, "trigger_code", "PublishPlan")["resources"] =
            serde_json::json!(["${aws_sns_topic.alerts.arn}"]);
    });
    assert_caught(
        &errors,
        &["trigger_code", "sns:Publish", "aws_sns_topic.alerts.arn", "not this pipeline's"],
    );
    // A runtime policy sneaking in a code action.
    let errors = drifted(&tf, |tf| {
        statement_mut(tf, "lambda_runtime", "Logs")["actions"]
            .as_array_mut()
            .unwrap()
            .push("s3:PutObject".into());
    });
    assert_caught(&errors, &["lambda_runtime grants s3:PutObject"]);
}

#[test]
fn drift_is_caught_in_the_submit_lambdas_reserved_concurrency() {
    let tf = hcl(MODULE);
    let errors = drifted(&tf, |tf| {
        module_file(tf, "lambdas.tf")["resource"]["aws_lambda_function"]["this"][0]
            ["reserved_concurrent_executions"] =
            "${lookup(var.lambda_reserved_concurrency, each.key, -1)}".into();
    });
    assert_caught(&errors, &["reserved_concurrent_executions", "submit_reserved_concurrency"]);
    let errors = drifted(&tf, |tf| {
        module_file(tf, "variables.tf")["variable"]["submit_reserved_concurrency"][0]["default"] = 10.into();
    });
    assert_caught(&errors, &["submit_reserved_concurrency defaults to", "10", "expected 1"]);
}

#[test]
fn drift_is_caught_in_tables_topics_job_definitions_and_variables() {
    let tf = hcl(MODULE);
    let errors = drifted(&tf, |tf| {
        module_file(tf, "storage.tf")["resource"]["aws_dynamodb_table"]["this"][0]["ttl"][0]
            ["attribute_name"] = "ttl".into();
    });
    assert_caught(&errors, &["ttl attribute_name", "\"ttl\"", "expires_at"]);
    let errors = drifted(&tf, |tf| {
        module_file(tf, "storage.tf")["resource"]["aws_dynamodb_table"]["this"][0]["hash_key"] = "id".into();
    });
    assert_caught(&errors, &["hash_key", "\"id\"", "\"pk\""]);
    let errors = drifted(&tf, |tf| {
        module_file(tf, "topics.tf")["resource"]["aws_sns_topic"]["plan"][0]["name"] =
            "${var.pipeline_name}-runs".into();
    });
    assert_caught(&errors, &["aws_sns_topic.plan", "-runs", "-plan"]);
    let errors = drifted(&tf, |tf| {
        module_file(tf, "batch.tf")["resource"]["aws_batch_job_definition"]["this"][0]["name"] =
            "${var.job_definition_prefix}-${each.key}".into();
    });
    assert_caught(&errors, &["aws_batch_job_definition.this is named", "deploy::job_definition_name"]);
    let errors = drifted(&tf, |tf| {
        module_file(tf, "main.tf")["locals"][0]["job_definition_env"]["BATCHFAN_RUN"] = "x".into();
    });
    assert_caught(&errors, &["local.job_definition_env", "BATCHFAN_RUN"]);
    let errors = drifted(&tf, |tf| {
        let vars = module_file(tf, "spec_variables.tf")["variable"].as_object_mut().unwrap();
        let v = vars.remove("schedule").unwrap();
        vars.insert("cron".into(), v);
    });
    assert_caught(&errors, &["spec_variables.tf declares", "\"cron\"", "\"schedule\""]);
}
