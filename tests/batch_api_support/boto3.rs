//! boto3 (the Python SDK, from the test venv) drives the same API:
//! `boto3_scenarios.py` beside this file, against a fresh server.

use std::path::PathBuf;

use super::batch_api_support::Server;

/// The venv's python: beside `$BATCHFAN_MOTO_SERVER`, else `.venv/bin/python` at the workspace root.
fn python() -> PathBuf {
    let path = std::env::var_os("BATCHFAN_MOTO_SERVER")
        .map(|moto| PathBuf::from(moto).with_file_name("python"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/setup/20-moto.sh` (the test venv has boto3)",
        path.display()
    );
    path
}

#[test]
fn boto3_runs_the_scenarios() {
    let server = Server::start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/batch_api_support/boto3_scenarios.py");
    let output = std::process::Command::new(python())
        .arg(script)
        .arg(&server.endpoint)
        .arg(server.out())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "boto3 scenarios failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("boto3 scenarios passed"), "{stdout}");
}
