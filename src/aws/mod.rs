//! The AWS backend's adapters: every port on its AWS service.
//!
//! | port | adapter | service |
//! | --- | --- | --- |
//! | [`crate::table::Table`] | [`AwsTable`] | DynamoDB (`table` = the DynamoDB table; string keys `pk`, `sk`) |
//! | [`crate::objects::Objects`] | [`S3Objects`] | S3 |
//! | [`crate::topic::Topic`] | [`SnsTopic`] | SNS (`topic` = an ARN, or a name mapped in [`AwsSettings::topic_arns`]) |
//! | [`crate::batch::Batch`] | [`AwsBatch`] | AWS Batch |
//! | [`crate::run::LogTail`] | [`CloudWatchPointer`] | names the CloudWatch Logs stream (it does not read it) |
//! | (`batchfan logs` and `serve --backend aws`) | [`job_logs::CloudWatchLogs`] | reads a job attempt's stream from CloudWatch Logs |
//!
//! Clients are built once per process ([`connect`] or
//! [`AwsClients::from_sdk_config`]) and shared by every adapter; SDK types
//! never leave this module. Configuration is the SDK's own: the standard
//! credential chain, `AWS_REGION`/profile, and the `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>` overrides (e.g. an AWS-compatible server such
//! as moto). The SDK's standard retry mode retries throttling and transient
//! errors (3 attempts); the adapters add what the SDK does not do: DynamoDB's
//! UnprocessedItems and retryable failures of BatchWriteItem, and SubmitJob
//! throttling under a shared rate limit (never a blind resend of SubmitJob:
//! see `batch`). Errors become [`crate::error::PortError`]s naming the
//! resource, classified with the SDK's own retry lists (`error`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), batchfan::error::PortError> {
//! use batchfan::aws::{connect, AwsSettings};
//! let settings = AwsSettings::default()
//!     .with_topic("orders-plan", "arn:aws:sns:eu-west-1:123456789012:orders-plan");
//! let clients = connect(settings).await?;
//! let ports = batchfan::backend::ports_on_aws(&clients); // Ports { kind: BackendKind::Aws, .. }
//! # let _ = ports; Ok(()) }
//! ```

mod batch;
pub mod calls;
mod dynamo;
pub(crate) mod error;
pub mod job_logs;
pub mod limiter;
mod s3;
mod sns;

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};

pub use self::{
    batch::{AwsBatch, DESCRIBE_BATCH},
    calls::{ApiTally, CallCount, CallCounter},
    dynamo::{AwsTable, BATCH_WRITES_IN_FLIGHT},
    limiter::{RateLimiter, DEFAULT_SUBMIT_BURST, DEFAULT_SUBMIT_RATE},
    s3::{S3Objects, MULTIPART_THRESHOLD, PART_SIZE},
    sns::{SnsTopic, MAX_SUBJECT_CHARS},
};
use crate::{
    error::{PortError, PortResult},
    logs::LogTail,
};

/// AWS Batch's default log group for job output.
pub const DEFAULT_LOG_GROUP: &str = "/aws/batch/job";

/// What the AWS adapters need beyond the SDK's own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// Region; `None`: the SDK's (`AWS_REGION`, the profile, ...).
    pub region: Option<String>,
    /// Topic name → SNS topic ARN, for topics the code names (e.g. `orders-plan`).
    pub topic_arns: BTreeMap<String, String>,
    /// S3 path-style addressing (`http://host/bucket/key`); `None`: on when an
    /// endpoint override is set (AWS-compatible servers on localhost need it).
    pub force_path_style: Option<bool>,
    /// SubmitJob calls per second this process makes at most (AWS allows 50 per account).
    pub submit_rate: f64,
    /// The CloudWatch Logs group of job logs.
    pub log_group: String,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            topic_arns: BTreeMap::new(),
            force_path_style: None,
            submit_rate: DEFAULT_SUBMIT_RATE,
            log_group: DEFAULT_LOG_GROUP.to_owned(),
        }
    }
}

impl AwsSettings {
    /// Maps topic `name` to `arn` (builder style).
    pub fn with_topic(mut self, name: impl Into<String>, arn: impl Into<String>) -> Self {
        self.topic_arns.insert(name.into(), arn.into());
        self
    }
}

/// The AWS clients, built once per process and shared by every adapter (and
/// the SubmitJob rate limiter, shared by every [`AwsBatch`] made from them).
#[derive(Clone)]
pub struct AwsClients {
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    sns: aws_sdk_sns::Client,
    batch: aws_sdk_batch::Client,
    limiter: Arc<RateLimiter>,
    calls: CallCounter,
    settings: AwsSettings,
}

/// Loads the SDK's configuration (credential chain, region, endpoint
/// overrides from the environment and profile) and builds the clients.
/// Fails when no region is configured.
pub async fn connect(settings: AwsSettings) -> PortResult<AwsClients> {
    let config = load_sdk_config(settings.region.as_deref()).await;
    AwsClients::from_sdk_config(&config, settings)
}

/// The SDK's configuration from the environment and profile, in `region` when given.
pub async fn load_sdk_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    loader.load().await
}

impl AwsClients {
    /// Builds the clients from an SDK configuration the caller loaded (a Lambda's
    /// `main`, or a test pointing at an AWS-compatible server).
    pub fn from_sdk_config(config: &SdkConfig, settings: AwsSettings) -> PortResult<AwsClients> {
        if config.region().is_none() && settings.region.is_none() {
            return Err(PortError::invalid(
                "no AWS region is configured: set AWS_REGION (or a profile's region), or pass --region",
            ));
        }
        let region = settings.region.clone().map(Region::new);
        let path_style = settings.force_path_style.unwrap_or_else(|| {
            config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        });
        let calls = CallCounter::default();
        let mut s3 =
            aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).interceptor(calls.clone());
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(config).interceptor(calls.clone());
        let mut sns = aws_sdk_sns::config::Builder::from(config).interceptor(calls.clone());
        let mut batch = aws_sdk_batch::config::Builder::from(config).interceptor(calls.clone());
        if let Some(region) = region {
            s3 = s3.region(region.clone());
            dynamodb = dynamodb.region(region.clone());
            sns = sns.region(region.clone());
            batch = batch.region(region);
        }
        Ok(AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sns: aws_sdk_sns::Client::from_conf(sns.build()),
            batch: aws_sdk_batch::Client::from_conf(batch.build()),
            limiter: Arc::new(RateLimiter::for_submit(settings.submit_rate)),
            calls,
            settings,
        })
    }

    /// The settings the clients were built with.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }
    /// The AWS API calls every adapter made from these clients so far, by kind.
    pub fn api_calls(&self) -> ApiTally {
        self.calls.snapshot()
    }
    /// The counter behind [`AwsClients::api_calls`] (clones share its tally).
    pub fn call_counter(&self) -> CallCounter {
        self.calls.clone()
    }
    /// The DynamoDB table port.
    pub fn table(&self) -> AwsTable {
        AwsTable::new(self.dynamodb.clone())
    }
    /// The S3 objects port.
    pub fn objects(&self) -> S3Objects {
        S3Objects::new(self.s3.clone())
    }
    /// The SNS topic port.
    pub fn topic(&self) -> SnsTopic {
        SnsTopic::new(self.sns.clone(), self.settings.topic_arns.clone())
    }
    /// The AWS Batch port (sharing this process's SubmitJob rate limiter).
    pub fn batch(&self) -> AwsBatch {
        AwsBatch::new(self.batch.clone(), self.limiter.clone())
    }
    /// The log port: a pointer to the CloudWatch Logs stream.
    pub fn logs(&self) -> CloudWatchPointer {
        CloudWatchPointer { log_group: self.settings.log_group.clone() }
    }
}

/// A [`LogTail`] that says where a job attempt's log is on CloudWatch Logs,
/// rather than reading it (which would need the CloudWatch Logs SDK and the
/// `logs:GetLogEvents` permission).
#[derive(Debug, Clone)]
pub struct CloudWatchPointer {
    log_group: String,
}

#[async_trait]
impl LogTail for CloudWatchPointer {
    async fn tail(&self, log_stream: &str, _lines: usize) -> PortResult<String> {
        let group = &self.log_group;
        Ok(format!(
            "the log is in CloudWatch Logs, group {group}, stream {log_stream}: read it with `aws logs tail {group} --log-stream-names {log_stream}`"
        ))
    }
}

/// An SDK configuration with fixed keys and an explicit endpoint, built
/// without reading the environment: for an AWS-compatible server (moto in the
/// tests) or any setup where the caller knows all three.
pub fn static_sdk_config(
    endpoint_url: &str,
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> SdkConfig {
    use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
    let credentials = Credentials::new(access_key_id, secret_access_key, None, None, "batchfan-static");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint_url)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(https_client())
        .build()
}

/// The one HTTP(S) client every AWS client is built with: hyper 1 and rustls
/// on ring, the system's root certificates. The SDK crates are compiled
/// without their default clients (see the workspace `Cargo.toml`), so an
/// `SdkConfig` built without this one fails its first call.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_required() {
        let no_region = SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
        let err = AwsClients::from_sdk_config(&no_region, AwsSettings::default()).err().expect("an error");
        assert!(matches!(&err, PortError::Invalid(m) if m.contains("AWS_REGION")), "{err}");
        let settings = AwsSettings { region: Some("eu-west-1".into()), ..Default::default() };
        assert!(AwsClients::from_sdk_config(&no_region, settings).is_ok());
    }

    #[tokio::test]
    async fn every_batch_port_shares_the_process_rate_limiter() {
        let config = static_sdk_config("http://127.0.0.1:9", "us-east-1", "k", "s");
        let settings = AwsSettings { submit_rate: 5.0, ..Default::default() };
        let clients = AwsClients::from_sdk_config(&config, settings).unwrap();
        let (a, b) = (clients.batch(), clients.clone().batch());
        assert!(Arc::ptr_eq(a.limiter(), b.limiter()));
        assert_eq!(a.limiter().rate(), 5.0);
        let text = clients.logs().tail("stage/default/abc", 10).await.unwrap();
        assert!(text.contains(DEFAULT_LOG_GROUP) && text.contains("stage/default/abc"), "{text}");
    }

    /// Issue 10: a transport failure the SDK retries (nothing listens: the
    /// connection is refused) stays retryable once the SDK's attempts are spent.
    #[tokio::test]
    async fn an_unreachable_service_is_unavailable_not_permanent() {
        let config = static_sdk_config("http://127.0.0.1:9", "us-east-1", "k", "s");
        let clients = AwsClients::from_sdk_config(&config, AwsSettings::default()).unwrap();
        use crate::table::Table;
        let err = clients.table().get("runs", &crate::table::Key::new("p", "s")).await.unwrap_err();
        assert!(matches!(&err, PortError::Unavailable(m) if m.contains("cannot reach")), "{err}");
        assert!(err.retryable());
    }
}
