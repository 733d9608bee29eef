//! Helpers for end-to-end tests: run the real `batchfan` binary on the embedded backend.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The directory holding the workspace's binaries (`batchfan` and the job binaries).
pub fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_orders-gen")).parent().expect("bin dir").to_path_buf();
    assert!(
        dir.join("batchfan").exists(),
        "{} has no batchfan binary: build the workspace first (cargo build --workspace)",
        dir.display()
    );
    dir
}

/// The repository's `jobs/` directory (example specs).
pub fn jobs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Runs `batchfan ARGS` and returns its output.
pub fn batchfan(args: &[&str]) -> Output {
    batchfan_with(&[], args)
}

/// `batchfan ARGS` with `env` added to its environment.
pub fn batchfan_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let env = env.iter().map(|(k, v)| (*k, *v));
    Command::new(bin_dir().join("batchfan")).envs(env).args(args).output().expect("batchfan runs")
}

/// Generates `rows` orders rows into `path`.
pub fn gen_orders(path: &Path, rows: u64, malformed_every: u64) {
    let status = Command::new(bin_dir().join("orders-gen"))
        .args(["--rows", &rows.to_string(), "--malformed-every", &malformed_every.to_string(), "--out"])
        .arg(path)
        .status()
        .expect("orders-gen runs");
    assert!(status.success());
}

/// Parses the JSON summary `batchfan run --output json` prints.
pub fn summary(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    })
}

/// Writes a spec file next to the example specs' commands, in `dir`.
pub fn write_spec(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("spec written");
    path
}

/// The bodies of every message published on `topic` in the state dir's bus.
pub fn alerts(state: &std::path::Path, topic: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let bus =
            batchfan::topic::bus::Bus::open(&state.join("bus.sqlite"), Default::default()).await.unwrap();
        bus.messages(topic).await.unwrap().into_iter().map(|m| m.message.body).collect()
    })
}

/// `batchfan run jobs/orders.toml --input INPUT --state STATE --output json EXTRA...`.
pub fn run_orders(input: &Path, state: &Path, extra: &[&str]) -> Output {
    let spec = jobs_dir().join("orders.toml");
    let mut args = vec!["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap()];
    args.extend(["--state", state.to_str().unwrap(), "--output", "json"]);
    args.extend(extra);
    batchfan(&args)
}

/// Makes a test script executable.
pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
