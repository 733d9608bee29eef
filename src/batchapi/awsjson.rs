//! A small client of the AWS JSON 1.1 protocol (EventBridge, CloudWatch
//! Logs): `POST /` with `X-Amz-Target: Service.Operation`, retried with
//! backoff and full jitter when the failure is transient (no answer, HTTP
//! 5xx, throttling). For AWS-compatible endpoints such as moto or
//! LocalStack: requests are NOT signed (a placeholder `Authorization` only
//! names the region and service), so real AWS refuses them.

use std::time::Duration;

use serde_json::Value;

use crate::backoff::Backoff;

/// Tries per call: about 6 s of waiting in all at most.
const RETRIES: Backoff =
    Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(2), max_attempts: 6 };
/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A call that failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The endpoint could not be reached, or did not answer in time (after retries).
    #[error("{target} to {url}: no answer after {tries} tries: {source}")]
    Unreachable {
        target: String,
        url: String,
        tries: u32,
        #[source]
        source: reqwest::Error,
    },
    /// The service refused the call (`__type` is its error code).
    #[error("{target} to {url}: HTTP {status} {code}: {message}")]
    Refused { target: String, url: String, status: u16, code: String, message: String },
}

impl CallError {
    /// The error code the service answered (`ResourceAlreadyExistsException`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Refused { code, .. } => Some(code),
            CallError::Unreachable { .. } => None,
        }
    }
}

/// One AWS JSON 1.1 endpoint.
#[derive(Debug, Clone)]
pub struct AwsJson {
    http: reqwest::Client,
    url: String,
    authorization: String,
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "ServiceUnavailableException"
    )
}

impl AwsJson {
    /// A client of `url` for `service` (`events`, `logs`) in `region`.
    pub fn new(url: &str, service: &str, region: &str) -> AwsJson {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=batchfan/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        AwsJson { http, url: url.trim_end_matches('/').to_owned() + "/", authorization }
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `target` (`AWSEvents.PutEvents`) with `body`; retries transient failures.
    pub async fn call(&self, target: &str, body: &Value) -> Result<Value, CallError> {
        let mut retry = 0;
        loop {
            let outcome = self.call_once(target, body).await;
            let transient = match &outcome {
                Ok(_) => false,
                Err(CallError::Unreachable { .. }) => true,
                Err(CallError::Refused { status, code, .. }) => *status >= 500 || is_throttling(code),
            };
            retry += 1;
            if !transient || retry >= RETRIES.max_attempts {
                return outcome.map_err(|e| match e {
                    CallError::Unreachable { target, url, source, .. } => {
                        CallError::Unreachable { target, url, tries: retry, source }
                    }
                    refused => refused,
                });
            }
            tracing::debug!(target, retry, "transient failure, retrying");
            tokio::time::sleep(RETRIES.jittered(retry - 1)).await;
        }
    }

    async fn call_once(&self, target: &str, body: &Value) -> Result<Value, CallError> {
        let unreachable = |source| CallError::Unreachable {
            target: target.into(),
            url: self.url.clone(),
            tries: 1,
            source,
        };
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", target)
            .header("Authorization", &self.authorization)
            .body(body.to_string())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(unreachable)?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = value["__type"].as_str().unwrap_or("UnknownError");
        let code = code.rsplit('#').next().unwrap_or(code).to_owned();
        let message = value["message"].as_str().or(value["Message"].as_str()).unwrap_or(&text).to_owned();
        Err(CallError::Refused { target: target.into(), url: self.url.clone(), status, code, message })
    }
}
