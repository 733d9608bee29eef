//! A pipeline deployed on one machine: moto for S3, DynamoDB, SNS, SQS, IAM
//! and Lambda; `batchfan batch-api` for AWS Batch; the dispatchers packaged by
//! `scripts/package-lambdas.sh` and deployed as `terraform/modules/pipeline`
//! deploys them (names, environment, dead-letter queues, retries).
//!
//! Until the tests apply the module itself (terraform against moto and
//! batch-api), [`World::deploy`] creates what `lambdas.tf` creates through
//! moto's APIs, with the module's names and environment ([`module_env`]).
//! Everything the harness runs is then read back from moto
//! ([`World::function`]), never taken from what this file wrote.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::{
    aws_fixtures::{create_role, Fixtures},
    batch_api::{register_sh, Server, QUEUE},
    deploy::{self, FunctionSpec},
    function::Function,
    moto::Moto,
    package,
};

pub const PIPELINE: &str = "orders";
/// The module's defaults (`lambda_memory_mb`, `lambda_timeout_seconds`).
pub const MEMORY_MB: u32 = 256;
pub const TIMEOUT_SECONDS: u32 = 300;

/// The deployment.
pub struct World {
    pub moto: Moto,
    pub batch: Server,
    pub fx: Fixtures,
    pub dir: tempfile::TempDir,
    pub table: String,
    pub bucket: String,
    pub inbox: String,
    pub plan_topic: String,
    pub alerts_topic: String,
    /// SQS queues subscribed to the topics, to read what was published.
    pub plan_probe: String,
    pub alerts_probe: String,
    pub prefix: String,
}

/// The spec: a CSV's lines, two per child, in two stages.
pub fn spec_text(inbox: &str) -> String {
    format!(
        r#"name = "{PIPELINE}"
[triggers]
manual = true
[triggers.s3]
bucket = "{inbox}"
prefix = "in/"
suffix = ".csv"
[planner]
strategy = "lines"
lines_per_item = 2
header = true
[[stages]]
name = "parse"
command = ["true"]
[[stages]]
name = "load"
command = ["true"]
"#
    )
}

impl World {
    /// Starts moto and batch-api, and creates the pipeline's resources.
    pub async fn start() -> World {
        let moto = Moto::start();
        let fx = Fixtures::new(&moto.sdk_config());
        let batch = Server::start();
        let client = batch.client();
        batch.setup(&client).await;
        let prefix = format!("{PIPELINE}-");
        for what in ["parse", "load", "aggregation", "cleanup", "barrier"] {
            register_sh(&client, &batchfan::deploy::job_definition_name(&prefix, what), "true", &batch.out())
                .await;
        }
        let (table, bucket, inbox) =
            (format!("batchfan-{PIPELINE}"), format!("{PIPELINE}-runs"), format!("{PIPELINE}-inbox"));
        fx.create_table(&table).await;
        fx.create_bucket(&bucket).await;
        fx.create_bucket(&inbox).await;
        let plan_topic = fx.create_topic(&format!("{PIPELINE}-plan")).await;
        let alerts_topic = fx.create_topic(&format!("{PIPELINE}-alerts")).await;
        let plan_probe = fx.subscribe_queue(&plan_topic).await;
        let alerts_probe = fx.subscribe_queue(&alerts_topic).await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let world = World {
            moto,
            batch,
            fx,
            dir,
            table,
            bucket,
            inbox,
            plan_topic,
            alerts_topic,
            plan_probe,
            alerts_probe,
            prefix,
        };
        world.put(&world.bucket, &world.spec_key(), spec_text(&world.inbox).as_bytes()).await;
        world
    }

    /// `batchfan/specs/{pipeline}.toml`, where the module uploads the spec.
    pub fn spec_key(&self) -> String {
        format!("batchfan/specs/{PIPELINE}.toml")
    }

    pub fn function_name(function: &str) -> String {
        format!("{PIPELINE}-{function}")
    }

    /// The module's `lambda_package_dir`: `{dir}/lambda/{function}/bootstrap.zip`.
    pub fn lambda_dir(&self) -> PathBuf {
        self.dir.path().join("lambda")
    }

    /// The environment `lambdas.tf` gives `function` (`local.lambda_env`).
    pub fn module_env(&self, function: &str) -> BTreeMap<String, String> {
        let spec_uri = format!("s3://{}/{}", self.bucket, self.spec_key());
        let mut env = vec![
            ("BATCHFAN_SPEC_URI", spec_uri),
            ("BATCHFAN_TABLE", self.table.clone()),
            ("BATCHFAN_BUCKET", self.bucket.clone()),
        ];
        match function {
            // No webhook in this spec: the module sets the parameter to "".
            "trigger" => env.extend([
                ("BATCHFAN_PLAN_TOPIC_ARN", self.plan_topic.clone()),
                ("BATCHFAN_WEBHOOK_SECRET_PARAMETER", String::new()),
            ]),
            "submit" | "alert" => {
                env.extend([
                    ("BATCHFAN_JOB_QUEUE", QUEUE.to_owned()),
                    ("BATCHFAN_JOB_DEFINITION_PREFIX", self.prefix.clone()),
                ]);
                if function == "alert" {
                    env.push(("BATCHFAN_ALERTS_TOPIC_ARN", self.alerts_topic.clone()));
                    env.push(("BATCHFAN_PLAN_TOPIC_ARN", self.plan_topic.clone()));
                    env.push(("BATCHFAN_JOB_LOG_GROUP", "/aws/batch/batchfan/orders".to_owned()));
                }
            }
            other => panic!("{other} is not a dispatcher"),
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Packages `function` and deploys it as `lambdas.tf` does: its role, its
    /// dead-letter queue, the function, and the async invoker's 2 retries.
    pub async fn deploy(&self, function: &str) {
        self.deploy_with_handler(function, function).await;
    }

    /// [`World::deploy`] with the function's handler set to `handler`
    /// instead of its name.
    pub async fn deploy_with_handler(&self, function: &str, handler: &str) {
        let zip = package::package(function, &self.lambda_dir());
        let name = Self::function_name(function);
        let role_arn = create_role(&self.moto, &format!("{name}-lambda"));
        let dlq = format!("{name}-dlq");
        self.fx.sqs.create_queue().queue_name(&dlq).send().await.expect("create the dead-letter queue");
        let spec = FunctionSpec {
            name: &name,
            handler,
            zip: &std::fs::read(&zip).expect("the zip"),
            role_arn: &role_arn,
            timeout_seconds: TIMEOUT_SECONDS,
            memory_mb: MEMORY_MB,
            environment: self.module_env(function),
            dead_letter_target: &deploy::queue_arn(&dlq),
        };
        deploy::create_function(&self.moto, &spec);
    }

    /// `function` as deployed, ready to invoke: its configuration read back
    /// from moto, its zip (the one moto holds: same SHA-256) unpacked into a
    /// task root, the SDK pointed at moto and batch-api, plus `endpoints`.
    pub async fn function(&self, function: &str, endpoints: &[(&str, &str)]) -> Function {
        let name = Self::function_name(function);
        let zip = self.lambda_dir().join(function).join("bootstrap.zip");
        let task_root = self.dir.path().join("task").join(function);
        let mut vars: BTreeMap<String, String> = [
            ("AWS_ENDPOINT_URL".to_owned(), self.moto.endpoint()),
            ("AWS_ENDPOINT_URL_BATCH".to_owned(), self.batch.endpoint.clone()),
        ]
        .into();
        vars.extend(endpoints.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        deploy::deployed_function(&self.moto, &self.fx, &name, &zip, &task_root, vars, &self.log_of(function))
            .await
    }

    fn log_of(&self, function: &str) -> PathBuf {
        self.dir.path().join(format!("{function}.log"))
    }

    pub async fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        self.fx
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
    }

    /// The SNS event Lambda gets for a message delivered on the plan topic.
    pub fn sns_event(&self, message_id: &str, message: &batchfan::topic::Message) -> Value {
        super::router::sns_event(&self.plan_topic, message_id, message)
    }
}

/// The process's environment, read from `/proc/PID/environ`.
pub fn environ_of(pid: u32) -> BTreeMap<String, String> {
    let raw =
        std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_else(|e| panic!("/proc/{pid}/environ: {e}"));
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            std::str::from_utf8(kv).ok()?.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Whether process `pid` is gone (killed and reaped).
pub fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}
