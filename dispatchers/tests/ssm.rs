//! The SSM client (`batchfan_dispatchers::ssm`): against moto (a SecureString
//! written and read back, a missing parameter), and against a scripted HTTP
//! server that records what is sent (the SigV4 signature's scope and signed
//! headers, the JSON 1.1 target and body) and answers errors (throttling is
//! retried, a missing parameter is not an error, a refusal names its code).

use crate::moto::Moto;

use std::sync::{Arc, Mutex};

use batchfan_dispatchers::ssm::{Ssm, SsmError};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_string_written_to_moto_reads_back_and_a_missing_one_is_none() {
    let moto = Moto::start();
    let ssm = Ssm::new(&moto.sdk_config()).expect("a client");
    ssm.put_secure_string("/hooks/orders", "s3cr3t value").await.expect("put");
    assert_eq!(ssm.get_parameter("/hooks/orders").await.expect("get").as_deref(), Some("s3cr3t value"));
    ssm.put_secure_string("/hooks/orders", "rotated").await.expect("overwrite");
    assert_eq!(ssm.get_parameter("/hooks/orders").await.expect("get").as_deref(), Some("rotated"));
    assert_eq!(ssm.get_parameter("/hooks/none").await.expect("a missing parameter is not an error"), None);
}

/// A request as the scripted server received it.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v)
    }
}

/// Serves `answers` (status, body) in order, one per connection, recording each request.
async fn scripted(answers: Vec<(u16, Value)>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        for (status, body) in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed before a whole request");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
            let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
            let request_line = lines.next().unwrap().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            while buf.len() < head_end + length {
                let n = socket.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let sent = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap();
            record.lock().unwrap().push(Received { request_line, headers, body: sent });
            let text = body.to_string();
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    (endpoint, seen)
}

fn client(endpoint: &str, region: &str) -> Ssm {
    Ssm::new(&batchfan::aws::static_sdk_config(endpoint, region, "AKIDEXAMPLE", "secret")).expect("a client")
}

#[tokio::test]
async fn get_parameter_is_a_signed_json_call_and_throttling_is_retried() {
    let throttled = json!({"__type": "ThrottlingException", "message": "Rate exceeded"});
    let value = json!({"Parameter": {"Name": "/hooks/orders", "Type": "SecureString", "Value": "v"}});
    let (endpoint, seen) = scripted(vec![(400, throttled), (503, json!({})), (200, value)]).await;
    let ssm = client(&endpoint, "eu-west-3");
    assert_eq!(ssm.get_parameter("/hooks/orders").await.expect("the third try").as_deref(), Some("v"));

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "throttled, unavailable, answered: {seen:#?}");
    for r in &seen {
        assert_eq!(r.request_line, "POST / HTTP/1.1");
        assert_eq!(r.header("x-amz-target"), "AmazonSSM.GetParameter");
        assert_eq!(r.header("content-type"), "application/x-amz-json-1.1");
        assert_eq!(r.body, json!({"Name": "/hooks/orders", "WithDecryption": true}));
        let auth = r.header("authorization");
        let date = r.header("x-amz-date");
        assert_eq!(date.len(), 16, "x-amz-date is YYYYMMDDTHHMMSSZ: {date:?}");
        let scope = format!("Credential=AKIDEXAMPLE/{}/eu-west-3/ssm/aws4_request", &date[..8]);
        assert!(auth.starts_with("AWS4-HMAC-SHA256 ") && auth.contains(&scope), "{auth}");
        let signed = auth.split("SignedHeaders=").nth(1).and_then(|s| s.split(',').next()).unwrap_or("");
        for h in ["content-type", "host", "x-amz-date", "x-amz-target"] {
            assert!(signed.split(';').any(|s| s == h), "{h} is not signed: {auth}");
        }
        let signature = auth.rsplit("Signature=").next().unwrap_or("");
        assert!(signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()), "{auth}");
    }
}

#[tokio::test]
async fn a_refusal_names_its_code_and_is_not_retried() {
    let denied = json!({"__type": "com.amazonaws.ssm#AccessDeniedException", "Message": "not authorized to perform ssm:GetParameter"});
    let (endpoint, seen) = scripted(vec![(400, denied)]).await;
    let err = client(&endpoint, "us-east-1").get_parameter("/hooks/orders").await.expect_err("refused");
    assert!(
        matches!(&err, SsmError::Service { code, status: 400, .. } if code == "AccessDeniedException"),
        "{err:?}"
    );
    assert!(!err.retryable());
    let text = err.to_string();
    assert!(
        text.contains("GetParameter") && text.contains("not authorized to perform ssm:GetParameter"),
        "{text}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "asked once");
}

#[tokio::test]
async fn no_server_is_a_transport_error_naming_the_endpoint_after_three_tries() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let err = client(&endpoint, "us-east-1").get_parameter("/hooks/orders").await.expect_err("no server");
    assert!(matches!(err, SsmError::Transport { .. }), "{err:?}");
    assert!(err.retryable());
    assert!(err.to_string().contains(&endpoint), "{err}");
}

#[test]
fn an_endpoint_that_is_not_a_url_is_refused_when_the_client_is_made() {
    let err =
        Ssm::new(&batchfan::aws::static_sdk_config("ssm.local", "us-east-1", "k", "s")).expect_err("refused");
    assert!(err.to_string().contains("\"ssm.local\"") && err.to_string().contains("https://"), "{err}");
}
