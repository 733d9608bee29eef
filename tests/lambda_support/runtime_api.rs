//! The Lambda Runtime API (version 2018-06-01) of one execution environment,
//! served on 127.0.0.1 and a free port, as Lambda serves it to a custom
//! runtime (`provided.al2023`) at `$AWS_LAMBDA_RUNTIME_API`:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /2018-06-01/runtime/invocation/next` | waits for an invocation; 200, the event as the body, `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` (now + the function's timeout), `Lambda-Runtime-Invoked-Function-Arn`, `Lambda-Runtime-Trace-Id` |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | 202 `{"status":"OK"}`; 400 for an id not handed out or already answered; 413 over 6 MB |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | 202; the body (`errorType`, `errorMessage`) and the `Lambda-Runtime-Function-Error-Type` header recorded |
//! | `POST /2018-06-01/runtime/init/error` | 202; the initialisation failed |
//!
//! Each environment has its own server (a new one per cold start), so a
//! killed process's half-open `next` can never take a later invocation.
//! What the runtime does is reported on a channel ([`RuntimeEvent`]) to the
//! harness driving the environment (`function.rs`).

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Lambda's limit on a synchronous invocation's response payload.
const MAX_RESPONSE: usize = 6 * 1024 * 1024;

/// An invocation waiting for the runtime to take it.
#[derive(Debug)]
pub struct Pending {
    pub request_id: String,
    pub payload: Vec<u8>,
}

/// What the runtime told the Runtime API.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEvent {
    /// `next` handed out invocation `request_id`.
    Started { request_id: String },
    /// The handler's response.
    Response { request_id: String, body: Vec<u8> },
    /// The handler's error: the `Lambda-Runtime-Function-Error-Type` header and the body.
    Error { request_id: String, header_type: Option<String>, body: Value },
    /// The runtime could not initialise.
    InitError { header_type: Option<String>, body: Value },
}

struct Shared {
    function_arn: String,
    timeout: Duration,
    pending: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    /// Handed out and not answered yet.
    open: Mutex<BTreeSet<String>>,
    events: mpsc::UnboundedSender<RuntimeEvent>,
}

/// A running Runtime API; stopped on drop.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    invocations: mpsc::UnboundedSender<Pending>,
    pub events: mpsc::UnboundedReceiver<RuntimeEvent>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves the API for function `function_arn` whose invocations may run for `timeout`.
    pub async fn start(function_arn: &str, timeout: Duration) -> RuntimeApi {
        let (invocations, pending) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: function_arn.to_owned(),
            timeout,
            pending: tokio::sync::Mutex::new(pending),
            open: Mutex::new(BTreeSet::new()),
            events: events_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the runtime API's address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi { addr, invocations, events, server }
    }

    /// Queues an invocation for the runtime's next `next`.
    pub fn invoke(&self, request_id: &str, payload: Vec<u8>) {
        let pending = Pending { request_id: request_id.to_owned(), payload };
        self.invocations.send(pending).expect("the runtime API is running");
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_millis()
}

/// An X-Ray trace header, `Root=1-{epoch seconds hex}-{24 hex}`, as Lambda passes one.
fn trace_id() -> String {
    let secs = millis(SystemTime::now()) / 1000;
    format!(
        "Root=1-{secs:08x}-{:024x};Parent={:016x};Sampled=0",
        rand::random::<u128>() >> 32,
        rand::random::<u64>()
    )
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    let Some(p) = s.pending.lock().await.recv().await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the execution environment is shutting down")
            .into_response();
    };
    s.open.lock().expect("open invocations").insert(p.request_id.clone());
    let deadline = millis(SystemTime::now() + s.timeout);
    let _ = s.events.send(RuntimeEvent::Started { request_id: p.request_id.clone() });
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("an ASCII header value"));
    };
    set("lambda-runtime-aws-request-id", p.request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", s.function_arn.clone());
    set("lambda-runtime-trace-id", trace_id());
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, p.payload).into_response()
}

/// Whether `id` was handed out and not answered yet (it is answered now).
fn take(s: &Shared, id: &str) -> bool {
    s.open.lock().expect("open invocations").remove(id)
}

/// 400 as Lambda answers a request id it did not hand out (or one already answered).
fn invalid(id: &str) -> Response {
    let body = json!({"errorMessage": format!("invalid request ID {id:?}"), "errorType": "InvalidRequestID"});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({"status": "OK"}))).into_response()
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The error body as JSON (a runtime may send anything: kept as a string then).
fn error_body(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    if body.len() > MAX_RESPONSE {
        let message = format!(
            "response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)",
            body.len()
        );
        take(&s, &id);
        let _ = s.events.send(RuntimeEvent::Error {
            request_id: id,
            header_type: Some("Function.ResponseSizeTooLarge".into()),
            body: json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message}),
        });
        let answer = json!({"errorMessage": message, "errorType": "RequestEntityTooLarge"});
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(answer)).into_response();
    }
    if !take(&s, &id) {
        return invalid(&id);
    }
    let _ = s.events.send(RuntimeEvent::Response { request_id: id, body: body.to_vec() });
    accepted()
}

async fn error(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !take(&s, &id) {
        return invalid(&id);
    }
    let event =
        RuntimeEvent::Error { request_id: id, header_type: error_type(&headers), body: error_body(&body) };
    let _ = s.events.send(event);
    accepted()
}

async fn init_error(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let _ =
        s.events.send(RuntimeEvent::InitError { header_type: error_type(&headers), body: error_body(&body) });
    accepted()
}
