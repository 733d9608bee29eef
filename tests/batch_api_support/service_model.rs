//! The job operations against botocore's Batch service model (the one in the
//! test venv): every input member of SubmitJob, DescribeJobs, ListJobs,
//! TerminateJob and CancelJob is a member our request types read (or one
//! listed as refused/ignored in `batchapi::members`), none of ours is
//! invented, and a value of the wrong type for any of them is a
//! ClientException naming its path.

use std::collections::{BTreeSet, HashMap};

use batchfan::batchapi::members::{request_shapes, IGNORED, NOT_EMULATED};
use serde_json::{json, Value};

use super::{batch_api_support::Server, clients::python};

/// (operation, its input shape, its route).
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("SubmitJob", "SubmitJobRequest", "/v1/submitjob"),
    ("DescribeJobs", "DescribeJobsRequest", "/v1/describejobs"),
    ("ListJobs", "ListJobsRequest", "/v1/listjobs"),
    ("TerminateJob", "TerminateJobRequest", "/v1/terminatejob"),
    ("CancelJob", "CancelJobRequest", "/v1/canceljob"),
];

/// The service model's shapes, as botocore loads them.
fn shapes() -> Value {
    let code = "import json, botocore.loaders as l; \
                print(json.dumps(l.create_loader().load_service_model('batch', 'service-2')['shapes']))";
    let out = std::process::Command::new(python()).args(["-c", code]).output().expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("service model JSON")
}

/// One path into a request: an object member or the first list element.
#[derive(Debug, Clone)]
enum Step {
    Member(String),
    First,
}

/// A request with `leaf` at `path`, and the path as serde_path_to_error prints it.
fn request_at(path: &[Step], leaf: Value) -> (Value, String) {
    let mut value = leaf;
    for step in path.iter().rev() {
        value = match step {
            Step::Member(m) => json!({ m.as_str(): value }),
            Step::First => json!([value]),
        };
    }
    let mut text = String::new();
    for step in path {
        match step {
            Step::Member(m) if text.is_empty() => text.push_str(m),
            Step::Member(m) => text.push_str(&format!(".{m}")),
            Step::First => text.push_str("[0]"),
        }
    }
    (value, text)
}

/// Walks the structures reachable from `shape`, checking members both ways,
/// and collects the path and model type of every scalar member reached.
fn walk(model: &Value, shape: &str, path: Vec<Step>, scalars: &mut Vec<(Vec<Step>, String)>) {
    let ours: HashMap<&str, &[&str]> = request_shapes().into_iter().collect();
    let skipped: BTreeSet<(&str, &str)> =
        NOT_EMULATED.iter().chain(IGNORED).map(|(s, m, _)| (*s, *m)).collect();
    let fields = ours.get(shape).unwrap_or_else(|| panic!("shape {shape} is reached but not modelled"));
    let members = model[shape]["members"].as_object().expect("a structure");
    for field in *fields {
        assert!(members.contains_key(*field), "{shape}.{field} is not in the service model");
    }
    for (member, target) in members {
        assert!(fields.contains(&member.as_str()), "{shape}.{member} of the service model is not read");
        if skipped.contains(&(shape, member.as_str())) {
            continue;
        }
        let mut at = path.clone();
        at.push(Step::Member(member.clone()));
        let mut target = target["shape"].as_str().expect("member shape");
        if model[target]["type"] == "list" {
            at.push(Step::First);
            target = model[target]["member"]["shape"].as_str().expect("list member");
        }
        match model[target]["type"].as_str() {
            Some("structure") => walk(model, target, at, scalars),
            Some(t @ ("string" | "integer" | "boolean")) => scalars.push((at, t.to_string())),
            _ => {} // maps of strings (parameters, tags)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_of_the_service_model_is_read_and_type_checked() {
    let model = shapes();
    let server = Server::start();
    let http = reqwest::Client::builder().no_proxy().build().expect("http client");
    let mut checked = 0;
    for (operation, input, route) in OPERATIONS {
        let mut scalars = Vec::new();
        walk(&model, input, Vec::new(), &mut scalars);
        assert!(!scalars.is_empty(), "{operation}");
        for (path, kind) in scalars {
            let wrong = if kind == "string" { json!(7) } else { json!("seven") };
            let (body, field) = request_at(&path, wrong);
            let reply =
                http.post(format!("{}{route}", server.endpoint)).json(&body).send().await.expect("post");
            assert_eq!(reply.status().as_u16(), 400, "{operation} {field}");
            let error_type = reply.headers()["x-amzn-errortype"].to_str().unwrap_or_default().to_string();
            assert!(error_type.starts_with("ClientException"), "{operation} {field}: {error_type}");
            let message = reply.json::<Value>().await.expect("error body")["message"].to_string();
            assert!(message.contains(&format!("{field} is not valid")), "{operation} {field}: {message}");
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} members checked");
    // A member the model does not have is refused by name, not dropped.
    let typo =
        json!({"jobName": "j", "jobQueue": "q", "jobDefinition": "d", "retryStrategy": {"attemps": 2}});
    let reply = http.post(format!("{}/v1/submitjob", server.endpoint)).json(&typo).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    let message = reply.json::<Value>().await.unwrap()["message"].to_string();
    assert!(message.contains("retryStrategy") && message.contains("attemps"), "{message}");
}
