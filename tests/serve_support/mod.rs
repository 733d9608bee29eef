//! Helpers for `batchfan serve` tests: the real binary on a free port of
//! 127.0.0.1 (`--listen 127.0.0.1:0`, address and login URL read from its
//! stdout and `serve.json`), real HTTP (the JSON API with the bearer token,
//! pages with the session cookie of the login URL), waits with one generous
//! deadline (never fixed sleeps to decide an outcome).
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod batch;

/// Overall deadline of any wait in a test.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The `batchfan` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_batchfan"))
}

/// Writes a spec file.
pub fn write_spec(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("spec written");
    path
}

/// A stage command: `batchfan job exec -- sh -c SCRIPT`, as a TOML array.
pub fn sh_stage(script: &str) -> String {
    format!("[\"batchfan\", \"job\", \"exec\", \"--\", \"sh\", \"-c\", {}]", toml_str(script))
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running `batchfan serve`.
pub struct Serve {
    child: Option<Child>,
    pub url: String,
    pub token: String,
    /// The `log in: URL` line of stdout (none with `--no-auth`).
    pub login_url: Option<String>,
    pub state: PathBuf,
    pub log: PathBuf,
    client: reqwest::Client,
}

impl Serve {
    /// Starts `batchfan serve SPECS --state STATE --listen 127.0.0.1:0 EXTRA` and waits until it listens.
    pub fn start(state: &Path, specs: &[&Path], extra: &[&str], env: &[(&str, &str)]) -> Serve {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = state.with_extension(format!("serve-{n}.log"));
        let mut cmd = Command::new(bin());
        cmd.arg("serve").args(specs).arg("--state").arg(state);
        cmd.args(["--listen", "127.0.0.1:0", "--vcpus", "2", "--memory", "2048", "--poll-ms", "100"]);
        cmd.args(extra).envs(env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = cmd.spawn().expect("batchfan serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut next_line = || match rx.recv_timeout(DEADLINE) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "batchfan serve did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let line = next_line();
        let login_url = (!extra.contains(&"--no-auth")).then(|| {
            let l = next_line();
            l.strip_prefix("log in: ").unwrap_or_else(|| panic!("unexpected second line {l:?}")).to_owned()
        });
        let url = line
            .strip_prefix("listening on ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let info: Value = serde_json::from_slice(
            &std::fs::read(state.join("serve.json")).expect("serve.json exists once listening"),
        )
        .expect("serve.json is JSON");
        assert_eq!(info["url"].as_str(), Some(url.as_str()), "serve.json and stdout agree");
        assert_eq!(info["login_url"].as_str(), login_url.as_deref(), "serve.json and stdout agree");
        let token = info["token"].as_str().expect("token").to_owned();
        let client = reqwest::Client::builder().no_proxy().build().expect("client");
        Serve { child: Some(child), url, token, login_url, state: state.to_path_buf(), log, client }
    }

    /// Visits the login URL; returns the `Cookie` header value it set (`name=value`).
    pub async fn login(&self) -> String {
        let url = self.login_url.as_deref().expect("serve prints a login URL");
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = client.get(url).send().await.expect("GET login URL");
        assert_eq!(r.status().as_u16(), 303, "the login URL redirects");
        assert_eq!(r.headers()["location"], "/", "to the home page, without the token");
        let set = r.headers()["set-cookie"].to_str().expect("ASCII cookie").to_owned();
        set.split(';').next().expect("name=value").trim().to_owned()
    }

    /// GET a page with the session cookie: (status, body).
    pub async fn page(&self, cookie: &str, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("GET");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits for the process to exit.
    pub fn stop_with(&mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} {}", child.id());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("batchfan serve did not stop after signal {signal}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("JSON")
    }

    /// Runs of `pipeline`, newest first.
    pub async fn runs(&self, pipeline: &str) -> Vec<Value> {
        self.get(&format!("/api/runs?pipeline={pipeline}&limit=1000"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until run `id` is SUCCEEDED or FAILED; returns its view.
    pub async fn wait_run(&self, id: &str) -> Value {
        wait_for(&format!("run {id} to finish"), || async {
            let v = self.get(&format!("/api/runs/{id}")).await;
            matches!(v["state"].as_str(), Some("SUCCEEDED" | "FAILED")).then_some(v)
        })
        .await
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 100 ms until it gives `Some`, for at most [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `batchfan ARGS` and returns its output.
pub fn batchfan(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(bin()).args(args).envs(env.iter().copied()).output().expect("batchfan runs")
}
