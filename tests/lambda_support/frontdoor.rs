//! A Function URL served on 127.0.0.1: each HTTP request becomes the
//! Function URL event (payload version 2.0) the function gets, invoked
//! synchronously; its answer (`statusCode`, `headers`, `body`) becomes the
//! HTTP response. Bodies over Lambda's 6 MB invocation payload are refused
//! with 413 before the function, as Lambda refuses them.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::function::{request_id, Function};

/// Lambda's synchronous invocation payload limit.
const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// The URL a Function URL is served at here.
pub struct FrontDoor {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl FrontDoor {
    /// Serves `function`'s Function URL (`function_url`, as deployed).
    pub async fn start(function: Arc<Mutex<Function>>, function_url: &str) -> FrontDoor {
        let host = function_url.trim_start_matches("https://").trim_end_matches('/').to_owned();
        let app = Router::new().fallback(handle).with_state((function, Arc::new(host)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the front door serves");
        });
        FrontDoor { url: format!("http://{addr}"), task }
    }
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Door = (Arc<Mutex<Function>>, Arc<String>);

async fn handle(
    State((function, host)): State<Door>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > PAYLOAD_LIMIT {
        return (StatusCode::PAYLOAD_TOO_LARGE, "Request must be smaller than 6291456 bytes").into_response();
    }
    let mut names = serde_json::Map::new();
    for (k, v) in &headers {
        names.insert(k.as_str().to_owned(), json!(v.to_str().unwrap_or_default()));
    }
    names.insert("host".into(), json!(host.as_str()));
    let (text, base64) = match std::str::from_utf8(&body) {
        Ok(t) => (t.to_owned(), false),
        Err(_) => (aws_smithy_types::base64::encode(&body), true),
    };
    let now = chrono::Utc::now();
    let event = json!({
        "version": "2.0", "routeKey": "$default",
        "rawPath": uri.path(), "rawQueryString": uri.query().unwrap_or(""),
        "headers": names,
        "requestContext": {
            "accountId": "anonymous", "apiId": host.split('.').next(), "domainName": host.as_str(),
            "domainPrefix": host.split('.').next(),
            "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("")},
            "requestId": request_id(), "routeKey": "$default", "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(), "timeEpoch": now.timestamp_millis(),
        },
        "body": text, "isBase64Encoded": base64,
    });
    let mut f = function.lock().await;
    let invocation = f.invoke(&request_id(), &event).await;
    match invocation.outcome {
        super::function::Outcome::Response(answer) => http_of(&answer),
        super::function::Outcome::Error { .. } => {
            (StatusCode::BAD_GATEWAY, json!({"Message": "Internal Server Error"}).to_string()).into_response()
        }
    }
}

/// The HTTP response of a Function URL answer.
fn http_of(answer: &Value) -> Response {
    let status = answer["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
    let mut response = answer["body"].as_str().unwrap_or_default().to_owned().into_response();
    *response.status_mut() = status.unwrap_or(StatusCode::OK);
    for (k, v) in answer["headers"].as_object().into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            v.as_str().map(axum::http::HeaderValue::from_str),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
