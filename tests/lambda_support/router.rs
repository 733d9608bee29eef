//! Delivers events as AWS would, along the routes read back from the
//! deployment ([`Routes`]), to the real functions ([`Function`], each invoked
//! asynchronously by [`invoke_async`]: two retries, then its dead-letter queue):
//!
//! - an object put → the S3 event of each matching bucket notification;
//! - a message on a topic with `lambda` subscribers → each subscriber, in the
//!   SNS envelope (the harness reads the topic through an SQS subscription of
//!   its own, where moto delivers it);
//! - a line of batch-api's event file (`--events-file`: the EventBridge
//!   envelopes AWS Batch sends) → each target of each rule whose pattern
//!   matches, as moto's EventBridge matches it ([`matches`]).
//! - a schedule tick → its target, with the schedule's input filled in.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use batchfan::{
    aws::AwsClients,
    run::{RunRecord, RunStore},
};
use serde_json::{json, Value};
use tokio::{sync::Mutex, time::Instant};

use super::{
    deployed::Deployment,
    function::{request_id, Function},
    invoker::{invoke_async, AsyncInvocation},
    routes::Routes,
};

/// How long a run may take on a loaded 2-core machine before a test gives up.
pub const RUN_DEADLINE: Duration = Duration::from_secs(600);

/// The deployment's functions, wired by its routes.
pub struct Router<'a> {
    pub d: &'a Deployment,
    pub routes: Routes,
    /// Function ARN → the function.
    pub functions: BTreeMap<String, Arc<Mutex<Function>>>,
    /// Topic ARN → the harness's SQS queue subscribed to it.
    taps: BTreeMap<String, String>,
    /// How often each message on a topic is delivered (SNS may deliver twice).
    pub sns_copies: usize,
    /// Bytes of batch-api's event file delivered so far.
    events_read: usize,
    /// Every asynchronous invocation so far: (function name, what came of it).
    pub invocations: Vec<(String, AsyncInvocation)>,
    /// Batch events that matched a rule.
    pub events_matched: usize,
}

impl<'a> Router<'a> {
    /// Reads the routes and readies every deployed function.
    pub async fn new(d: &'a Deployment) -> Router<'a> {
        let routes = Routes::read(d).await;
        let functions = functions_of(d, &routes).await;
        let mut taps = BTreeMap::new();
        for topic in routes.topics.keys() {
            taps.insert(topic.clone(), d.fx.subscribe_queue(topic).await);
        }
        Router {
            d,
            routes,
            functions,
            taps,
            sns_copies: 1,
            events_read: 0,
            invocations: Vec::new(),
            events_matched: 0,
        }
    }

    /// Reads the routes and the functions' configurations again (after an
    /// update of the deployment); what was delivered so far stays delivered.
    pub async fn reload(&mut self) {
        self.routes = Routes::read(self.d).await;
        self.functions = functions_of(self.d, &self.routes).await;
        let untapped: Vec<String> =
            self.routes.topics.keys().filter(|t| !self.taps.contains_key(*t)).cloned().collect();
        for topic in untapped {
            let queue = self.d.fx.subscribe_queue(&topic).await;
            self.taps.insert(topic, queue);
        }
    }

    /// Function `arn`.
    pub fn function(&self, arn: &str) -> Arc<Mutex<Function>> {
        self.functions.get(arn).unwrap_or_else(|| panic!("no deployed function {arn}")).clone()
    }

    /// Invokes function `arn` asynchronously with `payload`.
    pub async fn invoke(&mut self, arn: &str, payload: &Value) {
        let function = self.function(arn);
        let mut f = function.lock().await;
        let done = invoke_async(&mut f, &self.d.fx, payload).await;
        self.invocations.push((f.config.name.clone(), done));
    }

    /// The S3 event records of a put of `key` (version `version`) in `bucket`,
    /// by the function each matching notification invokes.
    pub fn s3_events(&self, bucket: &str, key: &str, version: &str, size: usize) -> Vec<(String, Value)> {
        let name = "ObjectCreated:Put";
        let encoded: String = url_encode(key);
        self.routes
            .s3
            .iter()
            .filter(|r| r.matches(bucket, name, key))
            .map(|r| {
                let record = json!({"Records": [{
                    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": super::moto::REGION,
                    "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "eventName": name,
                    "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                    "responseElements": {"x-amz-request-id": request_id(), "x-amz-id-2": "EXAMPLE"},
                    "s3": {"s3SchemaVersion": "1.0", "configurationId": "notification",
                        "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{bucket}")},
                        "object": {"key": encoded, "size": size, "eTag": "0", "versionId": version,
                            "sequencer": format!("{:016X}", rand::random::<u64>())}}
                }]});
                (r.function_arn.clone(), record)
            })
            .collect()
    }

    /// Puts `body` at `bucket`/`key`; returns the S3 events it causes
    /// (not delivered yet: [`Router::deliver`] them, as often as S3 would).
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Vec<(String, Value)> {
        let size = body.len();
        let put = self.d.fx.s3.put_object().bucket(bucket).key(key).body(body.into()).send().await;
        let put = put.unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
        let version = put.version_id().unwrap_or("null").to_owned();
        self.s3_events(bucket, key, &version, size)
    }

    /// Delivers each (function, event) pair.
    pub async fn deliver(&mut self, events: &[(String, Value)]) {
        for (arn, event) in events {
            self.invoke(arn, event).await;
        }
    }

    /// Delivers what is waiting: messages on topics, batch-api's new events.
    /// Returns how many deliveries were made.
    pub async fn pump(&mut self) -> usize {
        let mut delivered = 0;
        let taps: Vec<(String, String)> = self.taps.clone().into_iter().collect();
        for (topic, queue) in taps {
            for m in self.d.fx.receive(&queue, Duration::ZERO).await {
                let event = sns_event(&topic, &m.message_id, &m.message);
                for arn in self.routes.topics[&topic].clone() {
                    for _ in 0..self.sns_copies {
                        self.invoke(&arn, &event).await;
                        delivered += 1;
                    }
                }
            }
        }
        let text = std::fs::read_to_string(&self.d.events_file).unwrap_or_default();
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        let fresh: Vec<String> = text[self.events_read.min(complete)..complete]
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        self.events_read = complete;
        if fresh.is_empty() {
            return delivered;
        }
        // Schedule rules (the reconcile tick) match no event: they tick.
        for rule in self.routes.rules.clone().into_iter().filter(|r| !r.pattern.is_empty()) {
            for (line, matched) in fresh.iter().zip(matches(&rule.pattern, &fresh)) {
                if matched {
                    self.events_matched += 1;
                    let event: Value = serde_json::from_str(line).expect("an event");
                    for arn in &rule.targets {
                        self.invoke(arn, &event).await;
                        delivered += 1;
                    }
                }
            }
        }
        delivered
    }

    /// Run `run_id`'s record.
    pub async fn run(&self, run_id: &str) -> RunRecord {
        let clients = AwsClients::from_sdk_config(&self.d.moto.sdk_config(), self.d.moto.settings())
            .expect("clients for moto");
        let (table, name) = (clients.table(), self.d.output("table"));
        let store = RunStore::new(&table, &name);
        store.get(run_id).await.expect("read the run").unwrap_or_else(|| panic!("no run {run_id}"))
    }

    /// The pipeline's runs.
    pub async fn runs(&self) -> Vec<String> {
        let clients = AwsClients::from_sdk_config(&self.d.moto.sdk_config(), self.d.moto.settings())
            .expect("clients for moto");
        let (table, name) = (clients.table(), self.d.output("table"));
        let store = RunStore::new(&table, &name);
        store.list_runs(Some("orders")).await.expect("list the runs")
    }

    /// Jobs of the queue not yet SUCCEEDED or FAILED.
    pub async fn active_jobs(&self) -> usize {
        let client = self.d.batch.client();
        let queue = self.d.output("job_queue");
        let mut n = 0;
        for status in ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"] {
            let listed = client
                .list_jobs()
                .job_queue(&queue)
                .job_status(status.into())
                .send()
                .await
                .expect("list jobs");
            n += listed.job_summary_list().len();
        }
        n
    }

    /// Delivers until run `run_id` has ended, no job is left and nothing is
    /// waiting; returns the run's record.
    pub async fn settle(&mut self, run_id: &str) -> RunRecord {
        let start = Instant::now();
        loop {
            let delivered = self.pump().await;
            let run = self.run(run_id).await;
            if delivered == 0
                && run.state.is_terminal()
                && self.active_jobs().await == 0
                && self.pump().await == 0
            {
                return run;
            }
            assert!(
                start.elapsed() < RUN_DEADLINE,
                "run {run_id} is {:?} after {RUN_DEADLINE:?}; {} jobs active",
                run.state,
                self.active_jobs().await
            );
            if delivered == 0 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Every function the routes name, ready to invoke, by ARN.
async fn functions_of(d: &Deployment, routes: &Routes) -> BTreeMap<String, Arc<Mutex<Function>>> {
    let mut functions = BTreeMap::new();
    for (arn, name) in &routes.functions {
        functions.insert(arn.clone(), Arc::new(Mutex::new(d.function(name).await)));
    }
    functions
}

/// Whether EventBridge rule `pattern` matches each of `events`, decided by
/// moto's own matcher (`moto.events.models.EventPattern`, what its rules
/// use), run with moto's Python: moto server implements no TestEventPattern
/// (moto 5.1 answers an empty 200) and raises on a rule with a Lambda target.
pub fn matches(pattern: &str, events: &[String]) -> Vec<bool> {
    let python = super::moto::moto_binary().with_file_name("python");
    let script = "import json, sys\nfrom moto.events.models import EventPattern\n\
        a = json.load(sys.stdin)\np = EventPattern.load(a['pattern'])\n\
        print(json.dumps([p.matches_event(json.loads(e)) for e in a['events']]))\n";
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run moto's python {}: {e}", python.display()));
    let input = json!({"pattern": pattern, "events": events}).to_string();
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes())
        .expect("write the events");
    let out = child.wait_with_output().expect("moto's matcher");
    assert!(out.status.success(), "moto's matcher: {}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<bool> = serde_json::from_slice(&out.stdout).expect("a JSON list of booleans");
    assert_eq!(got.len(), events.len());
    got
}

/// The SNS event Lambda gets for `message` (id `message_id`) on `topic_arn`.
pub fn sns_event(topic_arn: &str, message_id: &str, message: &batchfan::topic::Message) -> Value {
    let attributes: serde_json::Map<String, Value> =
        message.attributes.iter().map(|(k, v)| (k.clone(), json!({"Type": "String", "Value": v}))).collect();
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{topic_arn}:{}", request_id()),
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Subject": message.subject,
            "Message": message.body,
            "Timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
            "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": attributes,
        }
    }]})
}

/// An S3 notification's key: URL-encoded, `+` for a space.
fn url_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
