//! The functions' code as it is deployed: the zip `scripts/package-lambdas.sh`
//! makes (`--profile dev`: this machine's debug build, stripped and zipped
//! the way `cargo lambda` zips the release build, and checked the same way),
//! unpacked as Lambda unpacks it into the task root (`/var/task`).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

/// The workspace root (this crate's manifest directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target directory the tests were built in (the dispatchers' binaries
/// are beside `batchfan` in its `debug` directory).
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_batchfan"));
    let profile = exe.parent().expect("the profile directory");
    assert_eq!(
        profile.file_name().and_then(|n| n.to_str()),
        Some("debug"),
        "the Lambda harness packages the dev profile's binaries: run the tests without --release"
    );
    profile.parent().expect("the target directory").to_owned()
}

/// Packages `function` with `scripts/package-lambdas.sh --profile dev` into
/// `out`; returns the zip (`out/FUNCTION/bootstrap.zip`).
pub fn package(function: &str, out: &Path) -> PathBuf {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "--arm64",
        _ => "--x86-64",
    };
    let script = root().join("scripts/package-lambdas.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args([arch, "--profile", "dev", "--no-build", "--function", function, "--out"])
        .arg(out)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} --profile dev --function {function} failed ({}); build the workspace first (cargo build --workspace):\n{}{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let zip = out.join(function).join("bootstrap.zip");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.lines().any(|l| Path::new(l.trim()) == zip),
        "package-lambdas.sh printed {printed:?}, not {}",
        zip.display()
    );
    zip
}

/// Unzips `zip` into `task_root` as Lambda does (modes kept) and checks that
/// `bootstrap` is at its root and executable.
pub fn unpack(zip: &Path, task_root: &Path) {
    std::fs::create_dir_all(task_root).expect("the task root");
    let output = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(zip)
        .arg("-d")
        .arg(task_root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run unzip ({e}): install it (apt-get install unzip)"));
    assert!(output.status.success(), "unzip {}: {}", zip.display(), String::from_utf8_lossy(&output.stderr));
    let bootstrap = task_root.join("bootstrap");
    let mode = std::fs::metadata(&bootstrap)
        .unwrap_or_else(|e| panic!("{} has no bootstrap at its root: {e}", zip.display()))
        .permissions()
        .mode();
    assert!(mode & 0o100 != 0, "{}: bootstrap is not executable (mode {mode:o})", zip.display());
}
