//! boto3 and the AWS CLI (both from the test venv) run the conformance
//! scenarios of `scenarios.py` beside this file, each against its own
//! server; aws-sdk-batch runs the same list in tests/batch_api.rs
//! ([`SCENARIOS`]), and a test keeps the two lists the same.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::batch_api_support::Server;

/// The conformance scenarios, by name: a Rust test each, and a function each in scenarios.py.
pub const SCENARIOS: &[&str] = &[
    "array_children_run_with_their_index_and_size",
    "n_to_n_failure_fails_only_the_matching_dependent",
    "sequential_children_run_in_index_order",
    "exit_75_is_retried_then_succeeds_with_two_attempts",
    "an_attempt_over_its_timeout_is_killed_and_fails",
    "terminate_stops_a_running_child_and_cancel_a_pending_job",
    "parameters_of_the_request_override_the_definition_defaults",
    "list_jobs_pages_over_250_jobs_without_loss_or_duplicates",
    "each_invalid_submission_is_a_client_exception_naming_the_field",
    "jobs_of_a_queue_use_only_its_compute_environments",
];

/// The venv's python: beside `$BATCHFAN_MOTO_SERVER`, else `.venv/bin/python` at the workspace root.
pub fn python() -> PathBuf {
    let path = std::env::var_os("BATCHFAN_MOTO_SERVER")
        .map(|moto| PathBuf::from(moto).with_file_name("python"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run `source scripts/setup/20-moto.sh` (the test venv has boto3 and the AWS CLI)",
        path.display()
    );
    path
}

/// The pinned AWS CLI: `$BATCHFAN_AWS_CLI`, else `aws` beside the venv's python (never the machine's).
fn aws_cli() -> PathBuf {
    let path = std::env::var_os("BATCHFAN_AWS_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| python().with_file_name("aws"));
    assert!(
        path.exists(),
        "{} is missing: run `source scripts/setup/20-moto.sh` (it installs the pinned awscli into .venv)",
        path.display()
    );
    path
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/batch_api_support/scenarios.py")
}

/// Runs every scenario through `client` (`boto3` or `cli`) against a fresh server.
fn run_scenarios(client: &str) {
    let server = Server::start_with(&["--time-scale", "0.01"]);
    let output = Command::new(python())
        .arg(script())
        .args([client, &server.endpoint])
        .arg(server.out())
        .env("BATCHFAN_AWS_CLI", aws_cli())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{client} scenarios failed:\n{stdout}\n{stderr}");
    for name in SCENARIOS {
        assert!(stdout.contains(&format!("{client}: {name} passed")), "{name} did not run:\n{stdout}");
    }
}

#[test]
fn boto3_runs_every_scenario() {
    run_scenarios("boto3");
}

#[test]
fn the_aws_cli_runs_every_scenario() {
    run_scenarios("cli");
}

#[test]
fn python_and_rust_run_the_same_scenarios() {
    let output = Command::new(python()).arg(script()).arg("--list").output().expect("run python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(listed.lines().collect::<Vec<_>>(), SCENARIOS, "scenarios.py's SCENARIOS");
    let rust = [
        include_str!("../batch_api.rs"),
        include_str!("errors.rs"),
        include_str!("capacity.rs"),
        include_str!("listing.rs"),
    ]
    .concat();
    for name in SCENARIOS {
        assert!(rust.contains(&format!("async fn {name}()")), "no Rust test named {name}");
    }
}
