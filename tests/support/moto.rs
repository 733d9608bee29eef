//! A moto server (PyPI `moto[server]`, an AWS-compatible server) for tests:
//! one per test process, on 127.0.0.1 and a free port, stopped on drop.
//!
//! Use it from any test crate of the workspace:
//!
//! ```ignore
//! #[path = "../../tests/support/moto.rs"] // from dispatchers/tests/*.rs
//! mod moto;
//! let server = moto::Moto::start();
//! let config = server.sdk_config(); // fake credentials, us-east-1, the server's endpoint
//! let clients = batchfan::aws::AwsClients::from_sdk_config(&config, server.settings()).unwrap();
//! ```
//!
//! The binary is `$BATCHFAN_MOTO_SERVER`, else `.venv/bin/moto_server` at the
//! workspace root; when neither exists the test FAILS with the command that
//! installs it (`bash scripts/setup/20-moto.sh`) — it is never skipped.
//! nextest runs every test in a process of its own, so every test gets its own
//! server and nothing leaks between tests; within a test, resource names are
//! unique anyway. The server runs under a small shell wrapper that stops it
//! when this process's end of a pipe closes, so a test killed by a timeout
//! does not leave a server behind.

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a server may take to answer after it is started (a loaded 2-core CI machine).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Region every test uses.
pub const REGION: &str = "us-east-1";
/// The account id moto answers with.
pub const ACCOUNT: &str = "123456789012";

/// A running moto server.
pub struct Moto {
    child: Child,
    /// Closing it stops the server (see the wrapper in [`Moto::start`]).
    stdin: Option<ChildStdin>,
    port: u16,
    log: PathBuf,
}

/// Where the moto_server binary is; panics with the fix when it is missing.
pub fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BATCHFAN_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "BATCHFAN_MOTO_SERVER={} does not exist: run `bash scripts/setup/20-moto.sh` (it installs moto and sets the variable when sourced)",
            path.display()
        );
        return path;
    }
    let path = workspace_root().join(".venv/bin/moto_server");
    assert!(
        path.is_file(),
        "moto is not installed ({} is missing): run `bash scripts/setup/20-moto.sh` at the workspace root",
        path.display()
    );
    path
}

/// The workspace root: the nearest ancestor of this crate with a `.venv` or a `[workspace]` Cargo.toml.
fn workspace_root() -> PathBuf {
    let start = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let is_root = |dir: &Path| {
        dir.join(".venv").is_dir()
            || std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
    };
    start.ancestors().find(|d| is_root(d)).map_or(start.clone(), Path::to_path_buf)
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1");
    listener.local_addr().expect("local address").port()
}

/// Runs the server in the background, stops it when stdin (fd 3) closes, and
/// exits when the server does.
const WRAPPER: &str = r#"exec 3<&0
"$0" "$@" </dev/null & m=$!
{ cat <&3 >/dev/null; kill "$m" 2>/dev/null; } &
wait "$m""#;

impl Moto {
    /// Starts a server on a free port, waits until it answers, and turns
    /// off its use of Docker for Batch and Lambda.
    pub fn start() -> Moto {
        let binary = moto_binary();
        let mut last_failure = String::new();
        for _ in 0..3 {
            match Moto::try_start(&binary) {
                Ok(moto) => return moto,
                Err(why) => last_failure = why,
            }
        }
        panic!("moto server did not start: {last_failure}");
    }

    fn try_start(binary: &Path) -> Result<Moto, String> {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("batchfan-moto-{port}-{}.log", std::process::id()));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WRAPPER)
            .arg(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let stdin = child.stdin.take();
        let mut moto = Moto { child, stdin, port, log };
        let deadline = Instant::now() + START_TIMEOUT;
        let config = r#"{"batch":{"use_docker":false},"lambda":{"use_docker":false}}"#;
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("moto_server exited ({status}): {}", moto.log_tail()));
            }
            match moto.request("POST", "/moto-api/config", config) {
                Ok((200..=299, _)) => return Ok(moto),
                Ok((status, body)) => return Err(format!("POST /moto-api/config answered {status}: {body}")),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    return Err(format!(
                        "no answer on 127.0.0.1:{port} within {START_TIMEOUT:?} ({e}): {}",
                        moto.log_tail()
                    ))
                }
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK configuration for this server: fake credentials, [`REGION`],
    /// the server's endpoint (built here, not from the process environment).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        batchfan::aws::static_sdk_config(&self.endpoint(), REGION, "testing", "testing")
    }

    /// Adapter settings for this server (S3 path-style addressing on).
    pub fn settings(&self) -> batchfan::aws::AwsSettings {
        batchfan::aws::AwsSettings { force_path_style: Some(true), ..Default::default() }
    }

    /// Clears every resource of every service (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let (status, body) = self.request("POST", "/moto-api/reset", "").expect("reset moto");
        assert_eq!(status, 200, "moto reset: {body}");
    }

    /// One HTTP/1.1 request to the server; returns the status and the body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        self.request_with(method, path, body, &[("Content-Type", "application/json")])
    }

    /// [`Moto::request`] with the given headers.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", self.port);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an http response: {response:.200}")))?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        Ok((status, body))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("log {}:\n{}", self.log.display(), lines[lines.len().saturating_sub(30)..].join("\n"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing the pipe makes the wrapper stop the server and exit.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
