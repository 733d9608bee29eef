//! What the AWS adapters do beyond the shared contract suites, on a moto
//! server: the port set, topic names mapped to ARNs, missing resources,
//! duplicate keys in a batch, multipart uploads leaving nothing pending, and
//! what SubmitJob sends as AWS Batch records it.

use crate::aws_fixtures;
use crate::moto;

use std::{collections::BTreeMap, io::Write, time::Duration};

use aws_fixtures::Fixtures;
use batchfan::{
    aws::{AwsClients, AwsSettings},
    backend::ports_on_aws as ports,
    batch::{Batch, ContainerSpec, JobDependency, JobQuery, JobStatus, RetryStrategy, SubmitJob},
    error::PortError,
    objects::{ObjectRef, Objects},
    run::BackendKind,
    table::{Condition, Item, Key, Table},
    topic::{Message, Topic},
};
use moto::Moto;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

fn setup(settings: impl FnOnce(AwsSettings) -> AwsSettings) -> (Moto, AwsClients, Fixtures) {
    let moto = Moto::start();
    let clients =
        AwsClients::from_sdk_config(&moto.sdk_config(), settings(moto.settings())).expect("clients");
    let fixtures = Fixtures::new(&moto.sdk_config());
    (moto, clients, fixtures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_are_the_aws_adapters() {
    let (_moto, clients, fx) = setup(|s| s);
    let ports = ports(&clients);
    assert_eq!(ports.kind, BackendKind::Aws);
    let table = unique("runs");
    fx.create_table(&table).await;
    let item = Item::new(Key::new("run#1", "record")).with("state", "PLANNED");
    ports.table.put(&table, item.clone(), Condition::NotExists).await.unwrap();
    // Written through the port, visible through the SDK: it really is DynamoDB.
    let raw = fx.dynamodb.scan().table_name(&table).send().await.unwrap();
    assert_eq!(raw.count, 1);
    assert_eq!(ports.table.get(&table, &item.key).await.unwrap(), Some(item));
    let text = ports.logs.tail("orders-confirm/default/abc123", 50).await.unwrap();
    assert!(text.contains("/aws/batch/job") && text.contains("orders-confirm/default/abc123"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_names_map_to_their_arns() {
    let moto_fx = Moto::start();
    let fx = Fixtures::new(&moto_fx.sdk_config());
    let arn = fx.create_topic(&unique("orders-plan")).await;
    let settings = moto_fx.settings().with_topic("orders-plan", &arn);
    let clients = AwsClients::from_sdk_config(&moto_fx.sdk_config(), settings).unwrap();
    let queue = fx.subscribe_queue(&arn).await;
    let topic = clients.topic();
    let id = topic
        .publish("orders-plan", Message::new("{\"run\":\"r1\"}").with_attribute("run_id", "r1"))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(fx.receive(&queue, Duration::from_secs(1)).await);
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].message_id, id);
    assert_eq!(got[0].message.attributes["run_id"], "r1");
    match topic.publish("orders-alerts", Message::new("x")).await {
        Err(PortError::Invalid(m)) => {
            assert!(m.contains("\"orders-alerts\"") && m.contains("topic_arns"), "{m}")
        }
        other => panic!("an unmapped topic name is invalid, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_resources_are_not_found_and_named() {
    let (_moto, clients, _fx) = setup(|s| s);
    match clients.table().get("no-such-table", &Key::new("p", "s")).await {
        Err(PortError::NotFound(m)) => assert!(m.contains("no-such-table"), "{m}"),
        other => panic!("expected not found, got {other:?}"),
    }
    match clients.objects().list("no-such-bucket", "").await {
        Err(PortError::NotFound(m)) => assert!(m.contains("no-such-bucket"), "{m}"),
        other => panic!("expected not found, got {other:?}"),
    }
    let obj = ObjectRef::new("no-such-bucket", "k");
    assert!(
        matches!(clients.objects().get(&obj).await, Err(PortError::NotFound(m)) if m.contains("s3://no-such-bucket/k"))
    );
    assert_eq!(clients.objects().head(&obj).await.unwrap(), None);
    clients.objects().delete(&obj).await.expect("deleting from a missing bucket is fine");
    let arn = format!("arn:aws:sns:{}:{}:no-such-topic", moto::REGION, moto::ACCOUNT);
    match clients.topic().publish(&arn, Message::new("x")).await {
        Err(PortError::NotFound(m)) => assert!(m.contains("no-such-topic"), "{m}"),
        other => panic!("expected not found, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_duplicate_keys_keeps_the_last_write() {
    // BatchWriteItem refuses a call naming one key twice; the adapter keeps the
    // last write of each key, as the local table does.
    let (_moto, clients, fx) = setup(|s| s);
    let table = unique("dups");
    fx.create_table(&table).await;
    let t = clients.table();
    let items: Vec<Item> =
        (0..60).map(|i| Item::new(Key::new("p", format!("s{:02}", i % 30))).with("round", i / 30)).collect();
    t.put_batch(&table, items).await.unwrap();
    let got = t.query(&table, "p", "").await.unwrap();
    assert_eq!(got.len(), 30);
    assert!(got.iter().all(|i| i.u64("round") == Some(1)), "{got:?}");
    let keys: Vec<Key> = (0..60).map(|i| Key::new("p", format!("s{:02}", i % 30))).collect();
    t.delete_batch(&table, keys).await.unwrap();
    assert_eq!(t.query(&table, "p", "").await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_completes_and_leaves_nothing_pending() {
    let (_moto, clients, fx) = setup(|s| s);
    let bucket = unique("big");
    fx.create_bucket(&bucket).await;
    let size = batchfan::aws::MULTIPART_THRESHOLD as usize * 2 + 4096; // three parts
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&body).unwrap();
    let obj = ObjectRef::new(&bucket, "out/result.bin");
    let meta = clients.objects().put_file(&obj, file.path()).await.unwrap();
    assert_eq!(meta.size, size as u64);
    assert!(meta.etag.ends_with("-3"), "a 3-part upload's etag: {}", meta.etag);
    assert_eq!(clients.objects().head(&obj).await.unwrap().unwrap().etag, meta.etag);
    assert!(clients.objects().get(&obj).await.unwrap() == body);
    let pending = fx.s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(pending.uploads.unwrap_or_default().is_empty(), "no upload left pending");
    // A failed upload (missing file) is an error naming the file.
    let missing = std::path::Path::new("/nonexistent/batchfan-input.bin");
    assert!(
        matches!(clients.objects().put_file(&obj, missing).await, Err(PortError::NotFound(m)) if m.contains("batchfan-input.bin"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_job_sends_the_whole_request() {
    let (moto, clients, fx) = setup(|s| s);
    let (queue, definition) = fx.batch_queue(&moto).await;
    let batch = clients.batch();
    let base = SubmitJob {
        job_name: "orders-r1-confirm-s0".into(),
        job_queue: queue.clone(),
        job_definition: definition.clone(),
        array_size: Some(3),
        depends_on: vec![],
        container: ContainerSpec {
            image: String::new(),
            command: vec!["orders-confirm".into(), "--fast".into()],
            environment: BTreeMap::from([("BATCHFAN_RUN".into(), "r1".into())]),
            vcpus: 1.0,
            memory_mib: 512,
        },
        retry_strategy: RetryStrategy::batchfan_default(3),
        timeout_seconds: Some(600),
        tags: BTreeMap::from([("batchfan:run".into(), "r1".into())]),
    };
    let first = batch.submit_job(base.clone()).await.unwrap();
    let second = SubmitJob {
        job_name: "orders-r1-aggregation".into(),
        depends_on: vec![JobDependency::n_to_n(&first.job_id)],
        ..base.clone()
    };
    let second = batch.submit_job(second).await.unwrap();
    let jobs = batch.describe_jobs(&[second.job_id.clone(), first.job_id.clone()]).await.unwrap();
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, [second.job_id.as_str(), first.job_id.as_str()], "in the order asked for");
    let job = &jobs[1];
    assert_eq!(job.job_name, "orders-r1-confirm-s0");
    assert!(job.job_definition.contains(&definition), "{}", job.job_definition);
    assert_eq!(job.array_properties.as_ref().and_then(|a| a.size), Some(3));
    assert_eq!(job.container.command, base.container.command);
    assert_eq!(job.container.environment.get("BATCHFAN_RUN").map(String::as_str), Some("r1"));
    assert_eq!(job.timeout_seconds, Some(600));
    assert_eq!(job.tags.get("batchfan:run").map(String::as_str), Some("r1"));
    assert_eq!(jobs[0].depends_on, vec![JobDependency::n_to_n(&first.job_id)]);

    // Reconciliation reads: by exact name, by status, children.
    let by_name = batch
        .list_jobs(&JobQuery::ByName { queue: queue.clone(), pattern: "orders-r1-confirm-s0".into() })
        .await
        .unwrap();
    assert_eq!(by_name.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), [first.job_id.as_str()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = batch.describe_jobs(&[first.job_id.clone(), second.job_id.clone()]).await.unwrap();
        if done.iter().all(|j| j.status == JobStatus::Succeeded) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "moto finishes jobs at once: {done:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let succeeded = batch
        .list_jobs(&JobQuery::ByStatus { queue: queue.clone(), status: JobStatus::Succeeded })
        .await
        .unwrap();
    let mut ids: Vec<String> = succeeded.iter().map(|j| j.job_id.clone()).collect();
    ids.sort();
    let mut want = vec![first.job_id.clone(), second.job_id.clone()];
    want.sort();
    assert_eq!(ids, want, "queue listings hold parents, not children");
    let children = batch
        .list_jobs(&JobQuery::ArrayChildren {
            array_job_id: first.job_id.clone(),
            status: Some(JobStatus::Succeeded),
        })
        .await
        .unwrap();
    assert_eq!(children.len(), 3);

    // Describe takes 100 ids per call: 250 ids (2 known) take three calls.
    let mut many: Vec<String> = (0..248).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
    many.insert(120, second.job_id.clone());
    many.push(first.job_id.clone());
    let found = batch.describe_jobs(&many).await.unwrap();
    assert_eq!(
        found.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        [second.job_id.as_str(), first.job_id.as_str()]
    );
}
