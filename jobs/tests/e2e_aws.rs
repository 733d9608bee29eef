//! The job binaries, unchanged, on the AWS backend (a moto server): an
//! `orders` run planned into DynamoDB, each `orders-confirm` child started as
//! AWS Batch would start it (`BATCHFAN_BACKEND=aws`, the pointers, the array
//! index), then `batchfan job concat` and `batchfan job cleanup`: rows land in
//! the DynamoDB `Orders` table (BatchWriteItem through the Table port),
//! outputs in S3; the run's rows stay, to expire with DynamoDB's TTL.

use crate::aws_fixtures;
use crate::common;
use crate::moto;

use std::process::Command;

use aws_fixtures::Fixtures;
use batchfan::{
    aws::AwsClients,
    env,
    objects::ObjectRef,
    run::{planner, RunStore, TriggerEvent, TriggerSource},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_jobs_read_dynamodb_and_write_dynamodb_and_s3_on_the_aws_backend() {
    let moto = moto::Moto::start();
    let fx = Fixtures::new(&moto.sdk_config());
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let (table, bucket, orders) =
        (format!("batchfan-{suffix}"), format!("runs-{suffix}"), format!("Orders-{suffix}"));
    fx.create_table(&table).await;
    fx.create_table(&orders).await;
    fx.create_bucket(&bucket).await;
    let plan_arn = fx.create_topic(&format!("orders-plan-{suffix}")).await;

    // 7 rows in 3 children (3 lines each), one row malformed.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("orders.csv");
    common::gen_orders(&csv, 7, 5);
    let input = ObjectRef::new(&bucket, "in/orders.csv");
    fx.s3
        .put_object()
        .bucket(&bucket)
        .key(&input.key)
        .body(std::fs::read(&csv).unwrap().into())
        .send()
        .await
        .unwrap();

    let mut spec = batchfan::spec::load(&common::jobs_dir().join("orders.toml")).unwrap();
    spec.storage.table = table.clone();
    spec.storage.bucket = bucket.clone();
    spec.alerts.tolerated_failure_percent = 20.0; // 1 malformed row of 7
    let clients =
        AwsClients::from_sdk_config(&moto.sdk_config(), moto.settings().with_topic("orders-plan", &plan_arn))
            .unwrap();
    let ports = batchfan::backend::ports_on_aws(&clients);
    let trigger = TriggerEvent {
        pipeline: "orders".into(),
        source: TriggerSource::Manual,
        idempotency_key: "request:aws-jobs".into(),
        input: Some(input.clone()),
        params: [("lines_per_item".to_owned(), "3".to_owned())].into(),
    };
    let run = planner::plan(&ports, &spec, trigger).await.expect("planned on DynamoDB");
    let children = run.sizing.unwrap().children;
    assert_eq!(children, 3);

    let child = |program: &std::path::Path, role: &str, index: Option<u64>| {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(env::BACKEND, "aws")
            .env(env::TABLE, &table)
            .env(env::BUCKET, &bucket)
            .env(env::PIPELINE, "orders")
            .env(env::RUN, &run.run_id)
            .env(env::ROLE, role)
            .env("ORDERS_TABLE", &orders)
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_REGION", moto::REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(i) = index {
            // What the submitter adds to a stage job's environment (see `run::submit::with_run_pointers`).
            cmd.env(env::INPUT, input.to_string())
                .env(env::STAGE, "confirm")
                .env(env::INDEX_OFFSET, "0")
                .env(env::AWS_BATCH_JOB_ARRAY_INDEX, i.to_string());
        }
        cmd.output().expect("the job runs")
    };
    let bin = common::bin_dir();
    let mut child_calls = Vec::new();
    for i in 0..children {
        let out = child(&bin.join("orders-confirm"), "stage", Some(i));
        assert!(out.status.success(), "child {i}: {}", String::from_utf8_lossy(&out.stderr));
        child_calls.push(api_calls(&out));
    }
    let table_port = clients.table();
    let store = RunStore::new(&table_port, &table);
    let results = store.results(&run.run_id, "confirm").await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results.iter().map(|(_, r)| r.items).sum::<u64>(), 7);
    assert_eq!(results.iter().map(|(_, r)| r.failed).sum::<u64>(), 1, "the malformed row");
    let rows = fx.dynamodb.scan().table_name(&orders).send().await.unwrap();
    assert_eq!(rows.count, 6, "every good row in the DynamoDB Orders table");

    let out = {
        let mut cmd = Command::new(bin.join("batchfan"));
        cmd.args(["job", "concat"]);
        run_like(&mut cmd, &job_env(&moto, &table, &bucket, &run.run_id, "aggregation"))
    };
    assert!(out.status.success(), "concat: {}", String::from_utf8_lossy(&out.stderr));
    let concat_calls = api_calls(&out);
    let output =
        fx.s3.get_object().bucket(&bucket).key(&run.output.key).send().await.expect("the run output in S3");
    let text = String::from_utf8(output.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    assert_eq!(text.lines().count(), 6, "OrderId,ConfirmationId per good row:\n{text}");

    let out = {
        let mut cmd = Command::new(bin.join("batchfan"));
        cmd.args(["job", "cleanup"]);
        run_like(&mut cmd, &job_env(&moto, &table, &bucket, &run.run_id, "cleanup"))
    };
    assert!(out.status.success(), "cleanup: {}", String::from_utf8_lossy(&out.stderr));
    let cleanup_calls = api_calls(&out);
    // Cleanup deletes no row (each delete would cost a write unit): the rows
    // carry expires_at, [storage] scratch_days ahead, for DynamoDB's TTL.
    let kept = fx
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("items#{}", run.run_id)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("0000000000".into()))
        .send()
        .await
        .unwrap();
    let expires: i64 = kept
        .item()
        .and_then(|i| i.get("expires_at"))
        .and_then(|v| v.as_n().ok())
        .expect("expires_at on the work item")
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = (expires - now) as f64 / 86_400.0;
    assert!((days - f64::from(spec.storage.scratch_days)).abs() < 0.01, "expires in {days} days");

    // batchfan's own calls inside the jobs are what `batchfan cost` counts for
    // them. (The children's BatchWriteItems and S3 reads and writes are the
    // orders job's data: rows for the Orders table, its input and outputs.)
    let sizing = run.sizing.unwrap();
    let jobs = batchfan::graph::build(&spec, &run.run_id, &sizing).unwrap().nodes.len() as u64;
    // The aggregation this test runs is `batchfan job concat`.
    let mut as_run = spec.clone();
    as_run.aggregation.command = batchfan::spec::DEFAULT_AGGREGATION_COMMAND.map(String::from).to_vec();
    let phases = batchfan::cost::phases(&as_run, &sizing, jobs, spec.stages.len() as u64);
    let predicted = &phases.iter().find(|p| p.name.starts_with("jobs")).unwrap().calls;
    let mut measured = std::collections::BTreeMap::<String, u64>::new();
    let framework = ["DynamoDB.GetItem", "DynamoDB.PutItem", "DynamoDB.Query", "S3.ListObjectsV2"];
    for calls in child_calls.iter().chain([&concat_calls, &cleanup_calls]) {
        for kind in framework {
            *measured.entry(kind.into()).or_default() += calls.get(kind).copied().unwrap_or(0);
        }
    }
    let batch_writes =
        |c: &std::collections::BTreeMap<String, u64>| c.get("DynamoDB.BatchWriteItem").copied();
    *measured.entry("DynamoDB.BatchWriteItem".into()).or_default() +=
        batch_writes(&concat_calls).unwrap_or(0) + batch_writes(&cleanup_calls).unwrap_or(0);
    for (kind, n) in &measured {
        assert_eq!(
            *n,
            predicted.get(kind.as_str()).copied().unwrap_or(0),
            "{kind}: measured {measured:?}, predicted {predicted:?}"
        );
    }
    // The aggregation reads every child's output and writes the run's output (and, here, the rejects).
    assert!(concat_calls["S3.GetObject"] >= predicted["S3.GetObject"], "{concat_calls:?}");
    assert!(concat_calls["S3.PutObject"] >= predicted["S3.PutObject"], "{concat_calls:?}");
    assert_eq!(
        store.results(&run.run_id, "confirm").await.unwrap().len(),
        3,
        "the results stay until they expire"
    );
    assert!(
        fx.s3.head_object().bucket(&bucket).key(&run.output.key).send().await.is_ok(),
        "the output stays"
    );
}

/// The API calls a job reported on its last stderr line, by kind.
fn api_calls(out: &std::process::Output) -> std::collections::BTreeMap<String, u64> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(batchfan::runtime::API_CALLS_LINE))
        .unwrap_or_else(|| panic!("no api_calls line on stderr:\n{stderr}"));
    let tally: batchfan::aws::ApiTally = serde_json::from_str(line).expect("api_calls JSON");
    tally.0.into_iter().map(|(k, c)| (k, c.calls)).collect()
}

fn job_env(moto: &moto::Moto, table: &str, bucket: &str, run_id: &str, role: &str) -> Vec<(String, String)> {
    [
        (env::BACKEND, "aws"),
        (env::TABLE, table),
        (env::BUCKET, bucket),
        (env::PIPELINE, "orders"),
        (env::RUN, run_id),
        (env::ROLE, role),
        ("AWS_ENDPOINT_URL", &moto.endpoint()),
        ("AWS_REGION", moto::REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn run_like(cmd: &mut Command, vars: &[(String, String)]) -> std::process::Output {
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("the job runs")
}
