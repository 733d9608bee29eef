//! Resources the AWS tests create through the SDK (never through the
//! adapters under test): DynamoDB tables with the `pk`/`sk` schema, buckets,
//! SNS topics with an SQS queue subscribed (to observe deliveries), and a
//! Batch compute environment, queue and job definition.
//!
//! Needs `mod moto` (support/moto.rs) next to it, and the aws-sdk-* crates.

#![allow(dead_code)]

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use batchfan::topic::Message;

use super::moto::{Moto, ACCOUNT, REGION};

/// SDK clients for setting up and inspecting resources.
#[derive(Clone)]
pub struct Fixtures {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub batch: aws_sdk_batch::Client,
}

/// A message as it reached a subscribed SQS queue (SNS's JSON envelope, unpacked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub message_id: String,
    pub message: Message,
}

impl Fixtures {
    pub fn new(config: &SdkConfig) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
        Fixtures {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sns: aws_sdk_sns::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            batch: aws_sdk_batch::Client::new(config),
        }
    }

    /// Creates table `name` with string keys `pk` (hash) and `sk` (range), on demand.
    pub async fn create_table(&self, name: &str) {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap()
        };
        let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
        self.dynamodb
            .create_table()
            .table_name(name)
            .attribute_definitions(attr(batchfan::deploy::TABLE_PARTITION_KEY))
            .attribute_definitions(attr(batchfan::deploy::TABLE_SORT_KEY))
            .key_schema(key(batchfan::deploy::TABLE_PARTITION_KEY, KeyType::Hash))
            .key_schema(key(batchfan::deploy::TABLE_SORT_KEY, KeyType::Range))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
    }

    /// Creates bucket `name`.
    pub async fn create_bucket(&self, name: &str) {
        self.s3
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    }

    /// Creates topic `name`; returns its ARN.
    pub async fn create_topic(&self, name: &str) -> String {
        let out = self
            .sns
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create topic {name}: {e:?}"));
        out.topic_arn.expect("a topic ARN")
    }

    /// Creates an SQS queue subscribed to `topic_arn`; returns the queue URL.
    pub async fn subscribe_queue(&self, topic_arn: &str) -> String {
        let name = format!("probe-{:016x}", rand::random::<u64>());
        let url =
            self.sqs.create_queue().queue_name(&name).send().await.expect("create queue").queue_url.unwrap();
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        self.sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("subscribe a queue to {topic_arn}: {e:?}"));
        url
    }

    /// Messages waiting in the queue (long-polling up to `wait`), deleted once read.
    pub async fn receive(&self, queue_url: &str, wait: Duration) -> Vec<Delivered> {
        let secs = wait.as_secs().clamp(0, 20) as i32;
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(secs)
            .send()
            .await
            .expect("receive from the probe queue");
        let mut got = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let body = m.body.clone().unwrap_or_default();
            got.push(unpack(&body));
            if let Some(handle) = m.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        got
    }

    /// A Batch queue and job definition to submit to: an UNMANAGED compute
    /// environment (moto runs no containers: jobs succeed at once), a queue
    /// on it, and a container job definition. Returns (queue name, job definition name).
    pub async fn batch_queue(&self, moto: &Moto) -> (String, String) {
        let suffix = format!("{:08x}", rand::random::<u32>());
        let role = create_role(moto, &format!("batch-service-{suffix}"));
        let ce = self
            .batch
            .create_compute_environment()
            .compute_environment_name(format!("ce-{suffix}"))
            .r#type(aws_sdk_batch::types::CeType::Unmanaged)
            .state(aws_sdk_batch::types::CeState::Enabled)
            .service_role(role)
            .send()
            .await
            .expect("create compute environment")
            .compute_environment_arn
            .unwrap();
        let queue = format!("queue-{suffix}");
        self.batch
            .create_job_queue()
            .job_queue_name(&queue)
            .state(aws_sdk_batch::types::JqState::Enabled)
            .priority(1)
            .compute_environment_order(
                aws_sdk_batch::types::ComputeEnvironmentOrder::builder()
                    .order(1)
                    .compute_environment(ce)
                    .build(),
            )
            .send()
            .await
            .expect("create job queue");
        let definition = format!("jd-{suffix}");
        let res =
            |t, v: &str| aws_sdk_batch::types::ResourceRequirement::builder().r#type(t).value(v).build();
        self.batch
            .register_job_definition()
            .job_definition_name(&definition)
            .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
            .container_properties(
                aws_sdk_batch::types::ContainerProperties::builder()
                    .image("public.ecr.aws/docker/library/busybox:latest")
                    .command("true")
                    .resource_requirements(res(aws_sdk_batch::types::ResourceType::Vcpu, "1"))
                    .resource_requirements(res(aws_sdk_batch::types::ResourceType::Memory, "512"))
                    .build(),
            )
            .send()
            .await
            .expect("register job definition");
        (queue, definition)
    }
}

/// Creates an IAM role on the server (moto checks that a compute
/// environment's service role exists) with IAM's query API: the tests need no
/// IAM SDK for this one call. moto does not check request signatures.
pub fn create_role(moto: &Moto, name: &str) -> String {
    let body =
        format!("Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D");
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20240101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=00"
    );
    let (status, answer) = moto
        .request_with(
            "POST",
            "/",
            &body,
            &[("Authorization", &auth), ("Content-Type", "application/x-www-form-urlencoded")],
        )
        .expect("create role");
    assert_eq!(status, 200, "create role {name}: {answer}");
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// SNS's JSON envelope of a message delivered to SQS.
fn unpack(body: &str) -> Delivered {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not an sns envelope ({e}): {body:.300}"));
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let attributes = v
        .get("MessageAttributes")
        .and_then(|a| a.as_object())
        .map(|a| {
            a.iter()
                .map(|(k, x)| {
                    assert_eq!(x["Type"], "String", "attribute {k} has type String");
                    (k.clone(), x["Value"].as_str().unwrap_or_default().to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    Delivered {
        message_id: text("MessageId").expect("a MessageId"),
        message: Message { subject: text("Subject"), body: text("Message").expect("a Message"), attributes },
    }
}
