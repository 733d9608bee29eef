//! What invokes which function, read back from the deployment in moto — never
//! written again here:
//!
//! - each bucket's notification configuration (event types, prefix, suffix);
//! - each topic's `lambda` subscriptions;
//! - each EventBridge rule's event pattern and targets;
//! - each EventBridge Scheduler schedule's target and input;
//! - each function's Function URL.

use std::collections::BTreeMap;

use aws_sdk_s3::types::Event;
use serde_json::{json, Value};

use super::{
    deploy::{json_api, lambda_api, rest_api},
    deployed::Deployment,
};

/// A bucket notification to a function.
#[derive(Debug, Clone)]
pub struct S3Route {
    pub bucket: String,
    /// e.g. `s3:ObjectCreated:*`.
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
    pub function_arn: String,
}

impl S3Route {
    /// Whether S3 sends event `name` (e.g. `ObjectCreated:Put`) for `key` of `bucket` here.
    pub fn matches(&self, bucket: &str, name: &str, key: &str) -> bool {
        let name = format!("s3:{name}");
        bucket == self.bucket
            && key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && self.events.iter().any(|e| match e.strip_suffix('*') {
                Some(family) => name.starts_with(family),
                None => *e == name,
            })
    }
}

/// An EventBridge rule and the functions it targets: an event pattern, or
/// a schedule (`rate(5 minutes)`) sending each target its constant input.
#[derive(Debug, Clone)]
pub struct RuleRoute {
    pub name: String,
    /// Empty for a schedule rule.
    pub pattern: String,
    /// Empty for a pattern rule.
    pub schedule: String,
    pub targets: Vec<String>,
    /// Target ARN → its constant input (`Input`), where it has one.
    pub inputs: BTreeMap<String, String>,
}

/// An EventBridge Scheduler schedule.
#[derive(Debug, Clone)]
pub struct ScheduleRoute {
    pub name: String,
    pub arn: String,
    pub expression: String,
    pub timezone: String,
    pub target: String,
    /// The target's input, `<aws.scheduler.*>` placeholders unfilled.
    pub input: String,
}

/// Every route of the deployment.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Function ARN → function name.
    pub functions: BTreeMap<String, String>,
    pub s3: Vec<S3Route>,
    /// Topic ARN → the functions subscribed to it.
    pub topics: BTreeMap<String, Vec<String>>,
    pub rules: Vec<RuleRoute>,
    pub schedules: Vec<ScheduleRoute>,
    /// Function ARN → its Function URL.
    pub urls: BTreeMap<String, String>,
}

impl Routes {
    /// Reads every route from moto.
    pub async fn read(d: &Deployment) -> Routes {
        let mut routes = Routes::default();
        let (status, listed) = lambda_api(&d.moto, "GET", "/2015-03-31/functions/", &Value::Null);
        assert_eq!(status, 200, "list functions: {listed}");
        for f in listed["Functions"].as_array().into_iter().flatten() {
            let (name, arn) = (text(f, "FunctionName"), text(f, "FunctionArn"));
            let (status, url) =
                lambda_api(&d.moto, "GET", &format!("/2021-10-31/functions/{name}/url"), &Value::Null);
            // AWS answers GetFunctionUrlConfig 200; moto (5.1) answers 201.
            if status == 200 || status == 201 {
                routes.urls.insert(arn.clone(), text(&url, "FunctionUrl"));
            }
            routes.functions.insert(arn, name);
        }
        routes.s3 = s3_routes(d).await;
        routes.topics = topic_routes(d).await;
        let rules = json_api(&d.moto, "events", "AWSEvents.ListRules", &json!({}));
        for rule in rules["Rules"].as_array().into_iter().flatten() {
            let name = text(rule, "Name");
            let listed = json_api(&d.moto, "events", "AWSEvents.ListTargetsByRule", &json!({"Rule": name}));
            let listed = listed["Targets"].as_array().cloned().unwrap_or_default();
            let targets = listed.iter().map(|t| text(t, "Arn")).collect();
            let inputs = listed
                .iter()
                .filter_map(|t| Some((text(t, "Arn"), t["Input"].as_str()?.to_owned())))
                .collect();
            let pattern = rule["EventPattern"].as_str().unwrap_or_default().to_owned();
            let schedule = rule["ScheduleExpression"].as_str().unwrap_or_default().to_owned();
            routes.rules.push(RuleRoute { name, pattern, schedule, targets, inputs });
        }
        let (status, schedules) = rest_api(&d.moto, "scheduler", "GET", "/schedules", &Value::Null);
        assert_eq!(status, 200, "list schedules: {schedules}");
        for s in schedules["Schedules"].as_array().into_iter().flatten() {
            let name = text(s, "Name");
            let (status, s) =
                rest_api(&d.moto, "scheduler", "GET", &format!("/schedules/{name}"), &Value::Null);
            assert_eq!(status, 200, "get schedule {name}: {s}");
            routes.schedules.push(ScheduleRoute {
                name,
                arn: text(&s, "Arn"),
                expression: text(&s, "ScheduleExpression"),
                timezone: s["ScheduleExpressionTimezone"].as_str().unwrap_or("UTC").to_owned(),
                target: text(&s["Target"], "Arn"),
                input: s["Target"]["Input"].as_str().unwrap_or_default().to_owned(),
            });
        }
        routes
    }

    /// The ARN of function `name`.
    pub fn arn_of(&self, name: &str) -> String {
        self.functions
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(arn, _)| arn.clone())
            .unwrap_or_else(|| panic!("no function {name} deployed: {:?}", self.functions))
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).to_owned()
}

/// Every bucket's notifications to functions.
async fn s3_routes(d: &Deployment) -> Vec<S3Route> {
    let mut routes = Vec::new();
    let buckets = d.fx.s3.list_buckets().send().await.expect("list buckets");
    for bucket in buckets.buckets().iter().filter_map(|b| b.name()) {
        let config =
            d.fx.s3
                .get_bucket_notification_configuration()
                .bucket(bucket)
                .send()
                .await
                .unwrap_or_else(|e| panic!("the notification configuration of {bucket}: {e:?}"));
        for c in config.lambda_function_configurations() {
            let rules = c.filter().and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default();
            let rule = |name: &str| {
                rules
                    .iter()
                    .find(|r| r.name().is_some_and(|n| n.as_str().eq_ignore_ascii_case(name)))
                    .and_then(|r| r.value())
                    .unwrap_or_default()
                    .to_owned()
            };
            routes.push(S3Route {
                bucket: bucket.to_owned(),
                events: c.events().iter().map(Event::as_str).map(str::to_owned).collect(),
                prefix: rule("prefix"),
                suffix: rule("suffix"),
                function_arn: c.lambda_function_arn().to_owned(),
            });
        }
    }
    routes
}

/// Every topic's `lambda` subscriptions.
async fn topic_routes(d: &Deployment) -> BTreeMap<String, Vec<String>> {
    let mut routes = BTreeMap::new();
    let topics = d.fx.sns.list_topics().send().await.expect("list topics");
    for topic in topics.topics().iter().filter_map(|t| t.topic_arn()) {
        let subs =
            d.fx.sns.list_subscriptions_by_topic().topic_arn(topic).send().await.expect("subscriptions");
        let lambdas: Vec<String> = subs
            .subscriptions()
            .iter()
            .filter(|s| s.protocol() == Some("lambda"))
            .filter_map(|s| s.endpoint().map(str::to_owned))
            .collect();
        if !lambdas.is_empty() {
            routes.insert(topic.to_owned(), lambdas);
        }
    }
    routes
}
