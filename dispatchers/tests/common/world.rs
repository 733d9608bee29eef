//! A pipeline deployed on a moto server, as the Terraform module would deploy
//! it: table, buckets, plan and alerts topics (each with an SQS probe queue
//! subscribed), a Batch queue with one job definition per stage and role, the
//! webhook secret in SSM, and the dispatchers' context built over the AWS adapters.

use std::{sync::Arc, time::Duration};

use aws_lambda_events::sns::SnsEvent;
use batchfan::{
    aws::AwsClients,
    backend::AwsTarget,
    objects::ObjectRef,
    run::{Ports, RunRecord, RunStore},
    spec::PipelineSpec,
};
use batchfan_dispatchers::{
    alert::AlertContext, secret::SsmSecrets, trigger::TriggerContext, Config, Dispatcher,
};
use serde_json::{json, Value};

use super::{
    aws_fixtures::{Delivered, Fixtures},
    fixtures::fixture,
    moto::{Moto, ACCOUNT, REGION},
};

pub const PIPELINE: &str = "orders";
pub const SECRET: &str = "webhook-s3cret";

/// The spec: lines of a CSV (2 per child, header skipped), two stages chained N_TO_N.
pub fn spec_text(inbox: &str) -> String {
    format!(
        r#"
name = "{PIPELINE}"
[triggers]
manual = true
[triggers.s3]
bucket = "{inbox}"
prefix = "in/"
suffix = ".csv"
[triggers.cron]
schedule = "0 0 6 * * *"
input = "s3://{inbox}/in/daily.csv"
[triggers.webhook]
secret_ssm = "/orders/webhook"
[params]
day = "today"
[planner]
strategy = "lines"
lines_per_item = 2
header = true
[[stages]]
name = "parse"
command = ["orders-parse"]
[[stages]]
name = "load"
command = ["orders-load", "--fast"]
[storage]
bucket = "ignored-by-the-deployment"
"#
    )
}

/// Everything a test needs.
pub struct World {
    pub moto: Moto,
    pub fx: Fixtures,
    pub clients: AwsClients,
    pub ssm: batchfan_dispatchers::ssm::Ssm,
    pub table: String,
    pub bucket: String,
    pub inbox: String,
    pub queue: String,
    pub prefix: String,
    pub plan_topic: String,
    pub alerts_topic: String,
    pub plan_probe: String,
    pub alerts_probe: String,
    pub secret_parameter: String,
    pub config: Config,
}

impl World {
    pub async fn start() -> World {
        let moto = Moto::start();
        let sdk = moto.sdk_config();
        let fx = Fixtures::new(&sdk);
        let clients = AwsClients::from_sdk_config(&sdk, moto.settings()).expect("clients");
        let ssm = batchfan_dispatchers::ssm::Ssm::new(&sdk).expect("an SSM client");
        let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let (table, bucket, inbox) =
            (format!("batchfan-{suffix}"), format!("runs-{suffix}"), format!("inbox-{suffix}"));
        fx.create_table(&table).await;
        fx.create_bucket(&bucket).await;
        fx.create_bucket(&inbox).await;
        let plan_topic = fx.create_topic(&format!("{PIPELINE}-plan-{suffix}")).await;
        let alerts_topic = fx.create_topic(&format!("{PIPELINE}-alerts-{suffix}")).await;
        let plan_probe = fx.subscribe_queue(&plan_topic).await;
        let alerts_probe = fx.subscribe_queue(&alerts_topic).await;
        let (queue, _) = fx.batch_queue(&moto).await;
        let prefix = format!("{PIPELINE}-{suffix}-");
        for what in ["parse", "load", "aggregation", "cleanup", "barrier"] {
            register_definition(&fx, &batchfan::deploy::job_definition_name(&prefix, what)).await;
        }
        let secret_parameter = format!("/{PIPELINE}/{suffix}/webhook");
        ssm.put_secure_string(&secret_parameter, SECRET).await.expect("put the webhook secret");
        let config = Config {
            spec_uri: Some(ObjectRef::new(&bucket, "spec/orders.toml")),
            target: AwsTarget {
                region: None,
                table: Some(table.clone()),
                bucket: Some(bucket.clone()),
                job_queue: Some(queue.clone()),
                job_definition_prefix: Some(prefix.clone()),
                plan_topic_arn: Some(plan_topic.clone()),
                alerts_topic_arn: Some(alerts_topic.clone()),
            },
            webhook_secret_parameter: Some(secret_parameter.clone()),
            job_log_group: None,
        };
        let world = World {
            moto,
            fx,
            clients,
            ssm,
            table,
            bucket,
            inbox,
            queue,
            prefix,
            plan_topic,
            alerts_topic,
            plan_probe,
            alerts_probe,
            secret_parameter,
            config,
        };
        world.put(&world.bucket, "spec/orders.toml", spec_text(&world.inbox).as_bytes()).await;
        world
    }

    pub fn ports(&self) -> Ports {
        batchfan::backend::ports_on_aws(&self.clients)
    }

    /// The dispatcher as a cold start builds it: the spec loaded from S3.
    pub async fn dispatcher_with(&self, ports: Ports) -> Dispatcher {
        Dispatcher::load(self.config.clone(), ports).await.expect("dispatcher")
    }

    pub async fn dispatcher(&self) -> Dispatcher {
        self.dispatcher_with(self.ports()).await
    }

    pub async fn trigger_context(&self) -> TriggerContext {
        let secrets = Arc::new(SsmSecrets::new(&self.moto.sdk_config()));
        TriggerContext::new(self.dispatcher().await, secrets)
    }

    pub async fn alert_context(&self) -> AlertContext {
        AlertContext::new(self.dispatcher().await)
    }

    pub async fn spec(&self) -> PipelineSpec {
        self.dispatcher().await.spec
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

    /// A CSV with a header and `rows` lines.
    pub async fn put_csv(&self, key: &str, rows: usize) {
        let mut text = String::from("id,amount\n");
        for i in 0..rows {
            text.push_str(&format!("{i},{}\n", i * 10));
        }
        self.put(&self.inbox.clone(), key, text.as_bytes()).await;
    }

    /// The recorded two-record S3 event, for this world's inbox.
    pub fn s3_event(&self) -> Value {
        fixture("s3_put_two_records", &[("INBOX", &self.inbox)])
    }

    /// An S3 event with only the record `index` of the recorded one.
    pub fn s3_event_of(&self, index: usize) -> Value {
        let mut v = self.s3_event();
        let record = v["Records"][index].clone();
        v["Records"] = json!([record]);
        v
    }

    pub async fn runs(&self) -> Vec<RunRecord> {
        let table = self.clients.table();
        let store = RunStore::new(&table, &self.table);
        let mut out = Vec::new();
        for id in store.list_runs(None).await.expect("list runs") {
            out.push(store.get(&id).await.expect("get run").expect("indexed run exists"));
        }
        out
    }

    /// Sets run `run_id`'s state (as the alert function does when it ends).
    pub async fn set_state(&self, run_id: &str, state: batchfan::run::RunState) {
        let table = self.clients.table();
        RunStore::new(&table, &self.table)
            .update(run_id, |r| {
                r.state = state;
                true
            })
            .await
            .expect("update the run");
    }

    pub async fn run(&self, run_id: &str) -> RunRecord {
        let table = self.clients.table();
        RunStore::new(&table, &self.table).get(run_id).await.expect("get run").expect("run exists")
    }

    /// Messages SNS delivered to the probe queue, waiting until `n` arrived (or 20 s).
    pub async fn delivered(&self, probe: &str, n: usize) -> Vec<Delivered> {
        let mut got = Vec::new();
        for _ in 0..20 {
            got.extend(self.fx.receive(probe, Duration::from_secs(1)).await);
            if got.len() >= n {
                break;
            }
        }
        got
    }

    /// Whether nothing (more) arrives on the probe within a few seconds.
    pub async fn quiet(&self, probe: &str) -> bool {
        self.fx.receive(probe, Duration::from_secs(3)).await.is_empty()
    }

    /// The SNS event Lambda would receive for a delivered plan message.
    pub fn sns_event(&self, d: &Delivered) -> SnsEvent {
        let mut v = fixture("sns_run_planned", &[]);
        let sns = &mut v["Records"][0]["Sns"];
        sns["MessageId"] = json!(d.message_id);
        sns["TopicArn"] = json!(self.plan_topic);
        sns["Message"] = json!(d.message.body);
        sns["Subject"] = json!(d.message.subject);
        sns["MessageAttributes"] = d
            .message
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), json!({"Type": "String", "Value": v})))
            .collect();
        serde_json::from_value(v).expect("an SNS event")
    }

    /// Every job submitted to the queue whose name starts with `prefix`.
    pub async fn jobs_named(&self, prefix: &str) -> Vec<aws_sdk_batch::types::JobSummary> {
        let filter = aws_sdk_batch::types::KeyValuesPair::builder()
            .name("JOB_NAME")
            .values(format!("{prefix}*"))
            .build();
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .fx
                .batch
                .list_jobs()
                .job_queue(&self.queue)
                .filters(filter.clone())
                .set_next_token(token)
                .send()
                .await
                .expect("list jobs");
            // moto lists array children (`parent:index`, the parent's name) with
            // their parents; AWS lists only the jobs submitted.
            let submitted = page.job_summary_list.unwrap_or_default().into_iter();
            out.extend(submitted.filter(|j| !j.job_id.as_deref().unwrap_or_default().contains(':')));
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        out
    }

    pub async fn describe(&self, ids: &[String]) -> Vec<aws_sdk_batch::types::JobDetail> {
        let out =
            self.fx.batch.describe_jobs().set_jobs(Some(ids.to_vec())).send().await.expect("describe jobs");
        out.jobs.unwrap_or_default()
    }
}

async fn register_definition(fx: &Fixtures, name: &str) {
    use aws_sdk_batch::types::{ContainerProperties, JobDefinitionType, ResourceRequirement, ResourceType};
    let res = |t, v: &str| ResourceRequirement::builder().r#type(t).value(v).build();
    fx.batch
        .register_job_definition()
        .job_definition_name(name)
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image(format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/batchfan-jobs:latest"))
                .command("true")
                .resource_requirements(res(ResourceType::Vcpu, "1"))
                .resource_requirements(res(ResourceType::Memory, "512"))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("register job definition {name}: {e:?}"));
}
