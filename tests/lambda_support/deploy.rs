//! The functions as deployed in moto, through the Lambda API (restJson1,
//! spoken here over plain HTTP: moto does not check signatures, and the
//! tests need no Lambda SDK for these few calls).
//!
//! [`read_function`] is what the harness runs: the function's configuration
//! read back with GetFunctionConfiguration and GetFunctionEventInvokeConfig.
//! [`create_function`] deploys a function as `terraform/modules/pipeline/lambdas.tf`
//! does (until the tests apply the module itself, see `world.rs`).

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde_json::{json, Value};
use sha2::Digest;

use super::{
    aws_fixtures::Fixtures,
    function::Function,
    moto::{Moto, ACCOUNT, REGION},
    package,
};

/// A deployed function's configuration, as Lambda's API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub region: String,
    pub runtime: String,
    pub handler: String,
    pub architectures: Vec<String>,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub version: String,
    /// `Environment.Variables`: exactly what the process gets from the deployment.
    pub environment: BTreeMap<String, String>,
    /// `CodeSha256`: base64 of the deployed zip's SHA-256.
    pub code_sha256: String,
    pub log_group: String,
    /// `DeadLetterConfig.TargetArn`: an SQS queue or SNS topic.
    pub dead_letter_target: Option<String>,
    /// The async invoker's retries (GetFunctionEventInvokeConfig; Lambda's default 2).
    pub max_retry_attempts: u32,
}

/// One Lambda API call; returns the status and the JSON answer.
pub fn lambda_api(moto: &Moto, method: &str, path: &str, body: &Value) -> (u16, Value) {
    rest_api(moto, "lambda", method, path, body)
}

/// One restJson1 call to moto's `service` (e.g. `lambda`, `scheduler`):
/// the service is named in the credential scope, as an SDK signs it.
pub fn rest_api(moto: &Moto, service: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    call(moto, service, method, path, body, &[("Content-Type", "application/json")])
}

/// One awsJson1.1 call to moto's `service` (e.g. `events`, `ssm`): `target`
/// is the operation's `X-Amz-Target`, e.g. `AWSEvents.ListRules`.
pub fn json_api(moto: &Moto, service: &str, target: &str, body: &Value) -> Value {
    let headers = [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", target)];
    let (status, answer) = call(moto, service, "POST", "/", body, &headers);
    assert_eq!(status, 200, "{target} {body}: {answer}");
    answer
}

fn call(
    moto: &Moto,
    service: &str,
    method: &str,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=00"
    );
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend(headers.iter().copied());
    let (status, answer) = moto
        .request_with(method, path, &body, &all)
        .unwrap_or_else(|e| panic!("{service} {method} {path}: {e}"));
    (status, serde_json::from_str(&answer).unwrap_or(Value::String(answer)))
}

/// What the module deploys for one function (`aws_lambda_function.this[...]`).
pub struct FunctionSpec<'a> {
    pub name: &'a str,
    /// The dispatcher the one binary runs (`trigger`, `submit`, `alert`).
    pub handler: &'a str,
    pub zip: &'a [u8],
    pub role_arn: &'a str,
    pub timeout_seconds: u32,
    pub memory_mb: u32,
    pub environment: BTreeMap<String, String>,
    pub dead_letter_target: &'a str,
}

/// The Lambda architecture of this machine (the module's `lambda_architecture`).
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "x86_64",
    }
}

/// CreateFunction and PutFunctionEventInvokeConfig, as `lambdas.tf` sets them.
pub fn create_function(moto: &Moto, f: &FunctionSpec<'_>) {
    let zip = aws_smithy_types::base64::encode(f.zip);
    let body = json!({
        "FunctionName": f.name,
        "Description": format!("batchfan: {} dispatcher", f.name),
        "Runtime": "provided.al2023",
        "Handler": f.handler,
        "Role": f.role_arn,
        "Architectures": [architecture()],
        "Code": {"ZipFile": zip},
        "MemorySize": f.memory_mb,
        "Timeout": f.timeout_seconds,
        "Environment": {"Variables": f.environment},
        "DeadLetterConfig": {"TargetArn": f.dead_letter_target},
        "TracingConfig": {"Mode": "PassThrough"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", f.name)},
    });
    let (status, answer) = lambda_api(moto, "POST", "/2015-03-31/functions", &body);
    assert_eq!(status, 201, "create function {}: {answer}", f.name);
    let retries = json!({"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600});
    let path = format!("/2019-09-25/functions/{}/event-invoke-config", f.name);
    let (status, answer) = lambda_api(moto, "PUT", &path, &retries);
    assert_eq!(status, 200, "put the event invoke config of {}: {answer}", f.name);
}

/// Sets the deployed function's `Timeout` (UpdateFunctionConfiguration).
pub fn set_timeout(moto: &Moto, name: &str, seconds: u32) {
    let path = format!("/2015-03-31/functions/{name}/configuration");
    let (status, answer) = lambda_api(moto, "PUT", &path, &json!({"Timeout": seconds}));
    assert_eq!(status, 200, "update the configuration of {name}: {answer}");
}

/// The function's configuration as deployed.
pub async fn read_function(moto: &Moto, fx: &Fixtures, name: &str) -> FunctionConfig {
    let (status, c) =
        lambda_api(moto, "GET", &format!("/2015-03-31/functions/{name}/configuration"), &Value::Null);
    assert_eq!(status, 200, "get the configuration of {name}: {c}");
    let text = |k: &str| c[k].as_str().unwrap_or_else(|| panic!("{name}: no {k} in {c}")).to_owned();
    let arn = text("FunctionArn");
    let region = arn.split(':').nth(3).expect("arn:aws:lambda:REGION:...").to_owned();
    let environment = c["Environment"]["Variables"]
        .as_object()
        .map(|vars| {
            vars.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect()
        })
        .unwrap_or_default();
    let (status, retries) =
        lambda_api(moto, "GET", &format!("/2019-09-25/functions/{name}/event-invoke-config"), &Value::Null);
    let max_retry_attempts = match status {
        200 => retries["MaximumRetryAttempts"].as_u64().expect("MaximumRetryAttempts") as u32,
        404 => 2,
        _ => panic!("get the event invoke config of {name}: {status} {retries}"),
    };
    let dead_letter_target = match c["DeadLetterConfig"]["TargetArn"].as_str() {
        Some(arn) => Some(arn.to_owned()),
        None => module_dead_letter_queue(fx, name).await,
    };
    FunctionConfig {
        name: text("FunctionName"),
        arn,
        region,
        runtime: text("Runtime"),
        handler: text("Handler"),
        architectures: c["Architectures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        memory_mb: c["MemorySize"].as_u64().expect("MemorySize") as u32,
        timeout: Duration::from_secs(c["Timeout"].as_u64().expect("Timeout")),
        version: text("Version"),
        environment,
        code_sha256: text("CodeSha256"),
        log_group: c["LoggingConfig"]["LogGroup"]
            .as_str()
            .map_or_else(|| format!("/aws/lambda/{name}"), str::to_owned),
        dead_letter_target,
        max_retry_attempts,
    }
}

/// Function `name` as deployed, ready to invoke: its configuration read back
/// from moto, its code `zip` (checked to be the one moto holds: same SHA-256)
/// unpacked into `task_root`, and `vars` (the endpoint variables that point
/// the SDK at moto and batch-api) added to its environment; output to `log`.
pub async fn deployed_function(
    moto: &Moto,
    fx: &Fixtures,
    name: &str,
    zip: &Path,
    task_root: &Path,
    vars: BTreeMap<String, String>,
    log: &Path,
) -> Function {
    let config = read_function(moto, fx, name).await;
    let bytes = std::fs::read(zip).unwrap_or_else(|e| panic!("{}: {e}", zip.display()));
    let sha = aws_smithy_types::base64::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(config.code_sha256, sha, "{name}: the deployed code is not {}", zip.display());
    package::unpack(zip, task_root);
    Function::new(config, task_root, vars, log)
}

/// moto's GetFunctionConfiguration leaves out `DeadLetterConfig` (moto 5.2
/// keeps it but does not report it): the module's dead-letter queue of the
/// function, `{function name}-dlq` (lambdas.tf, `aws_sqs_queue.dlq`), looked
/// up in moto's SQS. None when there is no such queue.
async fn module_dead_letter_queue(fx: &Fixtures, function: &str) -> Option<String> {
    let url = fx.sqs.get_queue_url().queue_name(format!("{function}-dlq")).send().await.ok()?.queue_url?;
    let attrs = fx
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the dead-letter queue's attributes");
    attrs.attributes?.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned()
}

/// The ARN of SQS queue `name` in moto's account.
pub fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}
