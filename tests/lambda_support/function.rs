//! A deployed function run as Lambda runs it: the `bootstrap` unpacked from
//! its zip, started on the first invocation (a cold start) in an
//! environment of its own — Lambda's variables, exactly the function's
//! configured environment read back from moto, and the endpoint variables
//! that point the SDK at moto and `batchfan batch-api` — talking to its own
//! [`RuntimeApi`]. Then, as on Lambda:
//!
//! - a response or a handler error ends the invocation; the process is kept
//!   for the next one (warm);
//! - an init error (`/init/error`) or a process that exits fails the
//!   invocation (`Runtime.InitError`, `Runtime.ExitError`) and the next
//!   invocation starts a new process;
//! - an invocation running past the function's `Timeout` is killed with its
//!   process (`Sandbox.Timedout`, "Task timed out after N.00 seconds"), and
//!   the next invocation is a cold start.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use tokio::{process::Child, time::Instant};

use super::{
    deploy::FunctionConfig,
    runtime_api::{RuntimeApi, RuntimeEvent},
};

/// How long a cold start may take before its first `next`: Lambda allows
/// 10 s; a debug build on a loaded 2-core CI machine gets more, so that only
/// a runtime that never asks for work fails here.
const INIT_LIMIT: Duration = Duration::from_secs(60);

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler's response (JSON).
    Response(Value),
    /// The invocation failed: `error_type` is the handler's (e.g. `BadEvent`)
    /// or Lambda's (`Runtime.InitError`, `Runtime.ExitError`, `Sandbox.Timedout`).
    Error { error_type: String, error_message: String },
}

/// One invocation as the caller sees it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// The invocation started the process.
    pub cold_start: bool,
    /// The process that ran it.
    pub pid: u32,
    pub outcome: Outcome,
}

impl Invocation {
    /// The response; panics naming the error otherwise.
    pub fn response(&self) -> &Value {
        match &self.outcome {
            Outcome::Response(v) => v,
            Outcome::Error { error_type, error_message } => {
                panic!("invocation {} failed: {error_type}: {error_message}", self.request_id)
            }
        }
    }

    /// The error type and message; panics with the response otherwise.
    pub fn error(&self) -> (&str, &str) {
        match &self.outcome {
            Outcome::Error { error_type, error_message } => (error_type, error_message),
            Outcome::Response(v) => panic!("invocation {} succeeded: {v}", self.request_id),
        }
    }
}

/// A running execution environment: the process and its Runtime API.
struct Environment {
    child: Child,
    pid: u32,
    api: RuntimeApi,
}

/// A function and its execution environment (at most one: invocations run one at a time).
pub struct Function {
    pub config: FunctionConfig,
    task_root: PathBuf,
    /// Added to the function's environment: the endpoint variables.
    endpoints: BTreeMap<String, String>,
    log: PathBuf,
    env: Option<Environment>,
    /// Processes started so far.
    pub cold_starts: usize,
}

impl Function {
    /// A function whose code is unpacked in `task_root`; its output goes to `log`.
    pub fn new(
        config: FunctionConfig,
        task_root: &Path,
        endpoints: BTreeMap<String, String>,
        log: &Path,
    ) -> Self {
        Function {
            config,
            task_root: task_root.to_owned(),
            endpoints,
            log: log.to_owned(),
            env: None,
            cold_starts: 0,
        }
    }

    /// The process's output so far (its CloudWatch log).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The environment Lambda gives the process, without the Runtime API's address.
    pub fn process_env(&self) -> BTreeMap<String, String> {
        let c = &self.config;
        let root = self.task_root.display().to_string();
        let stream = format!(
            "{}/[{}]{:032x}",
            chrono::Utc::now().format("%Y/%m/%d"),
            c.version,
            rand::random::<u128>()
        );
        let mut env: BTreeMap<String, String> = [
            ("_HANDLER", c.handler.clone()),
            ("AWS_REGION", c.region.clone()),
            ("AWS_DEFAULT_REGION", c.region.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", c.name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", c.version.clone()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", c.log_group.clone()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            // The execution role's credentials (moto accepts any).
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing".into()),
            ("LAMBDA_TASK_ROOT", root.clone()),
            ("LAMBDA_RUNTIME_DIR", root.clone()),
            ("LANG", "en_US.UTF-8".into()),
            ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
            ("LD_LIBRARY_PATH", format!("/lib64:/usr/lib64:{root}:{root}/lib:/opt/lib")),
            ("TZ", ":UTC".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(c.environment.clone());
        env.extend(self.endpoints.clone());
        env
    }

    async fn start(&mut self) -> Environment {
        let api = RuntimeApi::start(&self.config.arn, self.config.timeout).await;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the function's log");
        // A custom runtime (provided.al2023) always starts `bootstrap`; the
        // handler reaches it as `_HANDLER`.
        let bootstrap = self.task_root.join("bootstrap");
        let child = tokio::process::Command::new(&bootstrap)
            .env_clear()
            .envs(self.process_env())
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .current_dir(&self.task_root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bootstrap.display()));
        self.cold_starts += 1;
        let pid = child.id().expect("a running process");
        Environment { child, pid, api }
    }

    /// Kills the execution environment (its process and Runtime API).
    async fn discard(&mut self) {
        if let Some(mut env) = self.env.take() {
            let _ = env.child.kill().await;
        }
    }

    /// Invokes the function synchronously (RequestResponse) with `payload`,
    /// under `request_id` (Lambda's async retries reuse theirs).
    pub async fn invoke(&mut self, request_id: &str, payload: &Value) -> Invocation {
        let cold_start = self.env.is_none();
        if cold_start {
            self.env = Some(self.start().await);
        }
        let timeout = self.config.timeout;
        let env = self.env.as_mut().expect("an environment");
        let pid = env.pid;
        env.api.invoke(request_id, serde_json::to_vec(payload).expect("a JSON payload"));
        let mut deadline = Instant::now() + INIT_LIMIT;
        // (how it ended, whether the environment is kept for the next invocation)
        let (outcome, keep) = loop {
            tokio::select! {
                event = env.api.events.recv() => match event.expect("the runtime API is running") {
                    RuntimeEvent::Started { .. } => deadline = Instant::now() + timeout,
                    RuntimeEvent::Response { request_id: id, body } if id == request_id => {
                        let value = serde_json::from_slice(&body)
                            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
                        break (Outcome::Response(value), true);
                    }
                    RuntimeEvent::Error { request_id: id, header_type, body } if id == request_id => {
                        break (handler_error(header_type, &body), true);
                    }
                    RuntimeEvent::InitError { header_type, body } => break (init_error(header_type, &body), false),
                    other => panic!("invocation {request_id}: unexpected {other:?}"),
                },
                status = env.child.wait() => {
                    let status = status.expect("wait for the runtime");
                    // An init error posted just before the exit is the better report.
                    let reported = std::iter::from_fn(|| env.api.events.try_recv().ok()).find_map(|e| match e {
                        RuntimeEvent::InitError { header_type, body } => Some(init_error(header_type, &body)),
                        _ => None,
                    });
                    let exit = Outcome::Error {
                        error_type: "Runtime.ExitError".into(),
                        error_message: format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
                    };
                    break (reported.unwrap_or(exit), false);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let message = format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        timeout.as_secs_f64()
                    );
                    break (Outcome::Error { error_type: "Sandbox.Timedout".into(), error_message: message }, false);
                }
            }
        };
        if !keep {
            self.discard().await;
        }
        Invocation { request_id: request_id.to_owned(), cold_start, pid, outcome }
    }

    /// Stops the execution environment, if any.
    pub async fn shutdown(&mut self) {
        self.discard().await;
    }
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The function error Lambda reports for a handler's `/error`.
fn handler_error(header_type: Option<String>, body: &Value) -> Outcome {
    Outcome::Error {
        error_type: text(body, "errorType").or(header_type).unwrap_or_else(|| "Unhandled".into()),
        error_message: text(body, "errorMessage").unwrap_or_else(|| body.to_string()),
    }
}

/// `Runtime.InitError`, with what the runtime reported (its error type and message).
fn init_error(header_type: Option<String>, body: &Value) -> Outcome {
    let reported = text(body, "errorType").or(header_type).unwrap_or_default();
    let message = text(body, "errorMessage").unwrap_or_else(|| body.to_string());
    Outcome::Error { error_type: "Runtime.InitError".into(), error_message: format!("{reported}: {message}") }
}

/// A Lambda request id (a version 4 UUID).
pub fn request_id() -> String {
    let h = format!("{:032x}", rand::random::<u128>());
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
}
