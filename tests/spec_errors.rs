//! Invalid specs: every problem is reported, at the right line and column,
//! naming the value and the fix.

use std::path::Path;

use batchfan::spec;
use rstest::rstest;

/// The errors of `text`, as printed (`f.toml:line:col: message`).
fn errors(text: &str) -> Vec<String> {
    match spec::load_str(text, "f.toml", Path::new(".")) {
        Ok(_) => panic!("spec unexpectedly valid:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// A valid spec with `extra` appended to the one stage's table.
fn with_stage(extra: &str) -> String {
    format!("name = \"p\"\n[planner]\nstrategy = \"objects\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n{extra}\n")
}

fn assert_one(text: &str, expected: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with(expected), "expected {expected:?}, got {:?}", errs[0]);
}

#[test]
fn timeout_below_minimum_points_at_the_value() {
    assert_one(
        &with_stage("timeout = 30"),
        "f.toml:7:11: timeout 30 is below the AWS minimum of 60 seconds: set timeout = 60 or more",
    );
}

#[rstest]
#[case::unknown_key_with_suggestion(
    "imag = \"x\"",
    "f.toml:7:1: unknown key imag in [stages]: did you mean image?"
)]
#[case::unknown_key_far_from_all(
    "zzzz = 1",
    "f.toml:7:1: unknown key zzzz in [stages]: allowed keys are command,"
)]
#[case::quoted_integer("timeout = \"90\"", "f.toml:7:11: timeout in [stages] must be an integer, found a string (\"90\"): remove the quotes: timeout = 90")]
#[case::command_string(
    "dependency = \"nton\"",
    "f.toml:7:14: dependency \"nton\" is not valid: did you mean \"n_to_n\"? use one of n_to_n, sequential"
)]
#[case::reserved_env(
    "env = { BATCHFAN_RUN = \"x\" }",
    "f.toml:7:9: environment variable BATCHFAN_RUN is reserved"
)]
#[case::aws_env(
    "env = { AWS_BATCH_JOB_ID = \"x\" }",
    "f.toml:7:9: environment variable AWS_BATCH_JOB_ID is reserved"
)]
#[case::bad_env_name("env = { 1X = \"x\" }", "f.toml:7:9: environment variable name \"1X\" is not valid")]
#[case::env_not_string(
    "env = { X = 1 }",
    "f.toml:7:13: X in [stages.env] must be a string, found an integer (1)"
)]
#[case::vcpus_step("vcpus = 0.3", "f.toml:7:9: vcpus 0.3 is not a multiple of 0.25")]
#[case::vcpus_range("vcpus = 512", "f.toml:7:9: vcpus 512 is out of range: use 0.25 to 256")]
#[case::memory_range("memory = 8", "f.toml:7:10: memory 8 MiB is out of range")]
#[case::items_per_child(
    "items_per_child = 0",
    "f.toml:7:19: items_per_child 0 is too small: set items_per_child = 1 or more"
)]
#[case::attempts(
    "retry = { attempts = 11 }",
    "f.toml:7:22: retry attempts 11 is out of range: AWS Batch allows 1 to 10"
)]
#[case::retry_action(
    "retry = { evaluate_on_exit = [{ on_exit_code = \"1\", action = \"again\" }] }",
    "f.toml:7:62: action \"again\" is not valid: use one of retry, exit"
)]
#[case::retry_rule_check(
    "retry = { evaluate_on_exit = [{ on_reason = \"a*b\", action = \"exit\" }] }",
    "f.toml:7:31: on_reason \"a*b\" is not valid: use 1-512 letters, digits, '.', ':' and white space, with an optional trailing '*'; '*' is allowed only as the last character"
)]
// Regression (issue 13): a pattern AWS rejects at SubmitJob (its character set) passed locally.
#[case::retry_rule_charset(
    "retry = { evaluate_on_exit = [{ on_status_reason = \"Task-failed*\", action = \"exit\" }] }",
    "f.toml:7:31: on_status_reason \"Task-failed*\" is not valid"
)]
#[case::retry_missing_action(
    "retry = { evaluate_on_exit = [{ on_exit_code = \"1\" }] }",
    "f.toml:7:31: [stages.retry.evaluate_on_exit] is missing the required key action"
)]
#[case::too_many_rules(
    "retry = { evaluate_on_exit = [{on_exit_code=\"1\",action=\"exit\"},{on_exit_code=\"2\",action=\"exit\"},{on_exit_code=\"3\",action=\"exit\"},{on_exit_code=\"4\",action=\"exit\"},{on_exit_code=\"5\",action=\"exit\"},{on_exit_code=\"6\",action=\"exit\"}] }",
    "f.toml:7:30: 6 evaluate_on_exit rules exceed the AWS limit of 5"
)]
#[case::empty_command_image("image = \"\"", "f.toml:7:9: image \"\" is not valid")]
fn stage_key_problems(#[case] extra: &str, #[case] expected: &str) {
    assert_one(&with_stage(extra), expected);
}

#[test]
fn command_as_a_plain_string_says_use_an_array() {
    let text =
        "name = \"p\"\n[planner]\nstrategy = \"objects\"\n[[stages]]\nname = \"s\"\ncommand = \"prog arg\"\n";
    assert_one(
        text,
        "f.toml:6:11: command must be an array of strings, not the string \"prog arg\": use an array, e.g. [\"prog\", \"arg\"]",
    );
}

#[test]
fn missing_keys_point_at_the_table_that_lacks_them() {
    let errs = errors("description = \"x\"\n[planner]\n\n[[stages]]\nimage = \"i\"\n");
    assert_eq!(
        errs,
        [
            "f.toml:1:1: the top level is missing the required key name: add name = \"orders\"",
            "f.toml:2:1: [planner] is missing the required key strategy: add strategy = \"lines\" (or \"objects\", \"range\", \"custom\")",
            "f.toml:4:1: [stages] is missing the required key name: add name = \"main\"",
            "f.toml:4:1: [stages] is missing the required key command: add command = [\"prog\", \"arg\"]",
        ]
    );
}

#[test]
fn every_problem_is_reported_in_text_order() {
    let text = r#"name = "Bad_Name"
queue = "-q"
max_array_size = 1
colour = "red"
[planner]
strategy = "lines"
lines_per_item = 0
count = 5
[[stages]]
name = "a"
command = ["x"]
[[stages]]
name = "a"
command = ["y"]
items_per_child = 2
[alerts]
tolerated_failure_percent = 150
[storage]
bucket = "Bad"
table = "t"
scratch_days = 0
"#;
    let errs = errors(text);
    let expected = [
        "f.toml:1:8: pipeline name \"Bad_Name\" is not valid",
        "f.toml:2:9: queue \"-q\" is not valid",
        "f.toml:3:18: max_array_size 1 is out of range",
        "f.toml:4:1: unknown key colour in the top level",
        "f.toml:7:18: lines_per_item 0 is too small",
        "f.toml:8:1: count applies only to strategy = \"range\", not \"lines\"",
        "f.toml:13:8: stage name \"a\" is used by stage 1 too",
        "f.toml:15:19: items_per_child 2 of stage \"a\" differs from 1 of stage \"a\": N_TO_N needs equal arrays",
        "f.toml:17:29: tolerated_failure_percent 150 is out of range",
        "f.toml:19:10: bucket name \"Bad\" is not valid",
        "f.toml:20:9: table \"t\" is not valid",
        "f.toml:21:16: scratch_days 0 is out of range: use 1 to 365",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(expected) {
        assert!(got.starts_with(want), "expected {want:?}, got {got:?}");
    }
    let all = spec::load_str(text, "f.toml", Path::new(".")).unwrap_err().to_string();
    assert_eq!(all.lines().count(), expected.len(), "Display prints one error per line");
}

#[rstest]
#[case::bad_cron(
    "[triggers.cron]\nschedule = \"0 2 * *\"",
    "f.toml:9:12: schedule \"0 2 * *\" is not a valid cron expression"
)]
#[case::missing_schedule(
    "[triggers.cron]\ntimezone = \"UTC\"",
    "f.toml:8:1: [triggers.cron] is missing the required key schedule"
)]
#[case::bad_timezone(
    "[triggers.cron]\nschedule = \"0 0 2 * * Sun\"\ntimezone = \"Mars/Base\"",
    "f.toml:10:12: timezone \"Mars/Base\" is not a known IANA time zone"
)]
#[case::bad_overlap(
    "[triggers.cron]\nschedule = \"0 0 2 * * Sun\"\noverlap = \"never\"",
    "f.toml:10:11: overlap \"never\" is not valid: use one of skip, queue, allow"
)]
#[case::bad_input(
    "[triggers.cron]\nschedule = \"0 0 2 * * Sun\"\ninput = \"bucket/key\"",
    "f.toml:10:9: input: object uri \"bucket/key\" must look like s3://bucket/key"
)]
#[case::bad_s3_bucket("[triggers.s3]\nbucket = \"X\"", "f.toml:9:10: bucket name \"X\" is not valid")]
#[case::secret_in_spec(
    "[triggers.webhook]\nsecret = \"hunter2\"",
    "f.toml:9:1: secret holds the secret itself: never put the secret in the spec"
)]
#[case::two_secrets(
    "[triggers.webhook]\nsecret_env = \"E\"\nsecret_ssm = \"/x\"",
    "f.toml:10:14: the webhook sets secret_env and secret_ssm: keep exactly one secret source"
)]
#[case::no_secret(
    "[triggers.webhook]\nenabled = true",
    "f.toml:8:1: [triggers.webhook] has no secret source"
)]
#[case::settle_out_of_range(
    "[triggers.s3]\nbucket = \"in-bucket\"\nsettle_seconds = -1",
    "f.toml:10:18: settle_seconds -1 is out of range: use 0 to 3600"
)]
#[case::manual_type(
    "[triggers]\nmanual = \"yes\"",
    "f.toml:9:10: manual in [triggers] must be a boolean, found a string"
)]
#[case::unknown_trigger(
    "[triggers]\nsqs = true",
    "f.toml:9:1: unknown key sqs in [triggers]: allowed keys are manual, cron, s3, webhook"
)]
fn trigger_problems(#[case] extra: &str, #[case] expected: &str) {
    let text = format!("name = \"p\"\n[planner]\nstrategy = \"objects\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n\n{extra}\n");
    assert_one(&text, expected);
}

#[rstest]
#[case::no_planner(
    "name = \"p\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n",
    "f.toml:1:1: the spec has no [planner]"
)]
#[case::no_stages("name = \"p\"\n[planner]\nstrategy = \"objects\"\n", "f.toml:1:1: the spec has no stages")]
#[case::stages_single_table("name = \"p\"\n[planner]\nstrategy = \"objects\"\n[stages]\nname = \"s\"\n", "f.toml:4:1: stages in the top level must be an array of tables, found a table: write [[stages]], not [stages]")]
#[case::strategy_typo(
    "name = \"p\"\n[planner]\nstrategy = \"line\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n",
    "f.toml:3:12: strategy \"line\" is not valid: did you mean \"lines\"?"
)]
#[case::custom_without_command(
    "name = \"p\"\n[planner]\nstrategy = \"custom\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n",
    "f.toml:2:1: [planner] is missing the required key command"
)]
#[case::syntax("name = \"p\"\n[planner\n", "f.toml:2:9: invalid toml:")]
#[case::param_not_string("name = \"p\"\nparams = { n = 5 }\n[planner]\nstrategy = \"objects\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n", "f.toml:2:16: n in [params] must be a string, found an integer (5)")]
fn top_level_problems(#[case] text: &str, #[case] expected: &str) {
    assert_one(text, expected);
}

#[test]
fn oversized_container_overrides_are_refused_at_load() {
    let big = "v".repeat(9_000);
    let errs = errors(&with_stage(&format!("env = {{ BIG = \"{big}\" }}")));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("f.toml:4:1: stage \"s\": container overrides"), "{}", errs[0]);
    assert!(errs[0].contains("over the AWS limit of 8192"), "{}", errs[0]);
}

#[test]
fn a_disabled_webhook_needs_no_secret_but_an_enabled_one_does() {
    let base =
        "name = \"p\"\n[planner]\nstrategy = \"objects\"\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n";
    let off =
        spec::load_str(&format!("{base}[triggers.webhook]\nenabled = false\n"), "f.toml", Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
    let hook = off.triggers.webhook.expect("a disabled webhook is still described");
    assert!(!hook.enabled && hook.secret.is_none());
    let on = errors(&format!("{base}[triggers.webhook]\nmax_body_bytes = 10\n"));
    assert_eq!(on.len(), 1, "{on:#?}");
    assert!(on[0].starts_with("f.toml:7:1: [triggers.webhook] has no secret source"), "{}", on[0]);
}

/// `columns` checks a header row: without `header = true` there is none to check.
#[test]
fn columns_without_a_header_say_set_header() {
    let text = "name = \"p\"\n[planner]\nstrategy = \"lines\"\ncolumns = [\"a\"]\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n";
    assert_one(text, "f.toml:4:11: columns checks the header row: set header = true, or remove columns");
    let text = "name = \"p\"\n[planner]\nstrategy = \"lines\"\nheader = true\ncolumns = [\" a\"]\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n";
    let errs = errors(text);
    assert!(errs.len() == 1 && errs[0].contains("columns must be non-empty names"), "{errs:?}");
}
