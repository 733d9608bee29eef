//! SSM Parameter Store, the two calls batchfan makes: `GetParameter` (the
//! trigger's webhook secret) and `PutParameter` (tests and set-up).
//!
//! SSM speaks AWS JSON 1.1: a POST to the regional endpoint with the
//! operation in `X-Amz-Target`. The request is signed with SigV4 by the SDK's
//! own signer (`aws-sigv4`), with the credentials and region of the function's
//! SDK configuration, and sent over batchfan's one HTTPS connector (rustls on
//! ring, [`batchfan::aws::https_client`]'s). The generated `aws-sdk-ssm`
//! crate did the same for one call and was the largest crate of the build.
//!
//! The endpoint is resolved as the SDK resolves it: `AWS_ENDPOINT_URL_SSM`,
//! then the configuration's endpoint URL (`AWS_ENDPOINT_URL`, the profile's
//! `endpoint_url`), then `https://ssm.{region}.amazonaws.com` (`.com.cn` in
//! the China regions). Throttling, 5xx answers and transport errors are
//! retried as the SDK's standard mode does: 3 tries with jittered backoff.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{
    error::CredentialsError, ProvideCredentials, SharedCredentialsProvider,
};
use aws_sigv4::{
    http_request::{sign, SignableBody, SignableRequest, SigningSettings},
    sign::v4::SigningParams,
};
use aws_smithy_http_client::{
    tls::{rustls_provider::CryptoMode, Provider},
    Connector,
};
use aws_smithy_runtime_api::client::{
    http::{HttpConnector, HttpConnectorSettings},
    identity::Identity,
};
use aws_smithy_types::body::SdkBody;
use batchfan::backoff::Backoff;
use serde_json::Value;

/// The service's signing name and `X-Amz-Target` prefix.
const SERVICE: &str = "ssm";
const TARGET_PREFIX: &str = "AmazonSSM";
/// The SDK's standard retry mode: 3 tries.
const RETRIES: Backoff =
    Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(2), max_attempts: 3 };

/// Why an SSM call failed.
#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    /// SSM answered with an error (`code` as AWS names it, e.g. `ParameterNotFound`).
    #[error("SSM {operation}: {code} (HTTP {status}): {message}")]
    Service { operation: &'static str, status: u16, code: String, message: String },
    /// The request did not get an answer.
    #[error("SSM {operation}: no answer from {endpoint}: {source}")]
    Transport {
        operation: &'static str,
        endpoint: String,
        #[source]
        source: aws_smithy_runtime_api::client::result::ConnectorError,
    },
    /// No credentials to sign with.
    #[error("SSM {operation}: no AWS credentials to sign the request with: {source}")]
    Credentials {
        operation: &'static str,
        #[source]
        source: CredentialsError,
    },
    /// The configuration cannot make a request (no region, a bad endpoint URL).
    #[error("SSM: {0}")]
    Config(String),
}

impl SsmError {
    /// The AWS error code of a service error.
    pub fn code(&self) -> Option<&str> {
        match self {
            SsmError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the same call may succeed if tried again.
    pub fn retryable(&self) -> bool {
        match self {
            SsmError::Service { status, code, .. } => {
                *status >= 500 || code.contains("Throttling") || code == "TooManyUpdates"
            }
            SsmError::Transport { .. } => true,
            SsmError::Credentials { .. } | SsmError::Config(_) => false,
        }
    }
}

/// An SSM client on an SDK configuration.
#[derive(Clone)]
pub struct Ssm {
    endpoint: String,
    region: String,
    credentials: SharedCredentialsProvider,
    http: std::sync::Arc<Connector>,
}

impl std::fmt::Debug for Ssm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssm").field("endpoint", &self.endpoint).field("region", &self.region).finish()
    }
}

impl Ssm {
    /// A client with `config`'s region, credentials and endpoint.
    pub fn new(config: &aws_config::SdkConfig) -> Result<Ssm, SsmError> {
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .ok_or_else(|| SsmError::Config("no AWS region: set AWS_REGION".into()))?;
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| SsmError::Config("no AWS credentials provider in the SDK configuration".into()))?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_SSM")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| config.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| default_endpoint(&region));
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(SsmError::Config(format!(
                "endpoint {endpoint:?} is not a URL: write https://host (AWS_ENDPOINT_URL_SSM or AWS_ENDPOINT_URL)"
            )));
        }
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(10))
            .build();
        let http = Connector::builder()
            .connector_settings(settings)
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build();
        Ok(Ssm { endpoint, region, credentials, http: std::sync::Arc::new(http) })
    }

    /// The decrypted value of parameter `name`; `None` when there is no such parameter.
    pub async fn get_parameter(&self, name: &str) -> Result<Option<String>, SsmError> {
        let body = serde_json::json!({"Name": name, "WithDecryption": true});
        match self.call("GetParameter", &body).await {
            Ok(answer) => Ok(answer["Parameter"]["Value"].as_str().map(str::to_owned)),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes parameter `name` as a SecureString (with the account's default
    /// key), replacing the value it has.
    pub async fn put_secure_string(&self, name: &str, value: &str) -> Result<(), SsmError> {
        let body =
            serde_json::json!({"Name": name, "Value": value, "Type": "SecureString", "Overwrite": true});
        self.call("PutParameter", &body).await.map(drop)
    }

    /// One operation (`X-Amz-Target: AmazonSSM.{operation}`), retried per [`RETRIES`].
    pub async fn call(&self, operation: &'static str, body: &Value) -> Result<Value, SsmError> {
        let body = body.to_string();
        let mut attempt = 0;
        loop {
            match self.send(operation, &body).await {
                Err(e) if e.retryable() && attempt + 1 < RETRIES.max_attempts => {
                    tracing::warn!(operation, attempt, error = %e, "SSM call failed; retrying");
                    tokio::time::sleep(RETRIES.jittered(attempt)).await;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    async fn send(&self, operation: &'static str, body: &str) -> Result<Value, SsmError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|source| SsmError::Credentials { operation, source })?;
        let identity = Identity::from(credentials);
        let target = format!("{TARGET_PREFIX}.{operation}");
        let uri = format!("{}/", self.endpoint);
        let config_error = |what: &str, e: &dyn std::fmt::Display| SsmError::Config(format!("{what}: {e}"));
        let params = SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| config_error("cannot sign", &e))?
            .into();
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let signable =
            SignableRequest::new("POST", &uri, headers.iter().copied(), SignableBody::Bytes(body.as_bytes()))
                .map_err(|e| config_error("cannot sign", &e))?;
        let (instructions, _) =
            sign(signable, &params).map_err(|e| config_error("cannot sign", &e))?.into_parts();

        let mut request = aws_smithy_runtime_api::http::Request::new(SdkBody::from(body.to_owned()));
        request.set_method("POST").map_err(|e| config_error("method", &e))?;
        request.set_uri(uri.as_str()).map_err(|e| config_error(&format!("endpoint {uri:?}"), &e))?;
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request.headers_mut().insert(name.to_owned(), value.to_owned());
        }
        let response = self.http.call(request).await.map_err(|source| SsmError::Transport {
            operation,
            endpoint: self.endpoint.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let error_type = response.headers().get("x-amzn-errortype").map(str::to_owned);
        let bytes = aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| SsmError::Service {
                operation,
                status,
                code: "IncompleteAnswer".into(),
                message: e.to_string(),
            })?
            .into_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let raw = error_type.or_else(|| answer["__type"].as_str().map(str::to_owned)).unwrap_or_default();
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| answer[k].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        Err(SsmError::Service { operation, status, code: error_code(&raw), message })
    }
}

/// The error code in an AWS JSON error type: `ParameterNotFound` from
/// `com.amazonaws.ssm#ParameterNotFound` or `ParameterNotFound:http://…`.
fn error_code(raw: &str) -> String {
    let code = raw.rsplit('#').next().unwrap_or(raw);
    let code = code.split(':').next().unwrap_or(code).trim();
    if code.is_empty() {
        "Unknown".to_owned()
    } else {
        code.to_owned()
    }
}

/// SSM's regional endpoint.
fn default_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("https://{SERVICE}.{region}.{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_in_both_shapes() {
        assert_eq!(error_code("com.amazonaws.ssm#ParameterNotFound"), "ParameterNotFound");
        assert_eq!(error_code("ParameterNotFound:http://internal.amazon.com/coral/"), "ParameterNotFound");
        assert_eq!(error_code("ThrottlingException"), "ThrottlingException");
        assert_eq!(error_code(""), "Unknown");
    }

    #[test]
    fn the_default_endpoint_is_regional() {
        assert_eq!(default_endpoint("eu-west-1"), "https://ssm.eu-west-1.amazonaws.com");
        assert_eq!(default_endpoint("cn-north-1"), "https://ssm.cn-north-1.amazonaws.com.cn");
    }
}
