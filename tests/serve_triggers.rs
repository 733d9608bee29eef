//! `batchfan serve` triggers through the real binary and real HTTP on 127.0.0.1:
//! cron slots (and a restart), object puts (complete files only, one run per
//! content; links and odd names skipped once, in `serve_triggers/skipped.rs`),
//! and the signed webhook's answers and its quiet refusals
//! (`serve_triggers/webhook.rs`).

use crate::serve_support;
#[path = "serve_triggers/skipped.rs"]
mod skipped;
#[path = "serve_triggers/webhook.rs"]
mod webhook;

use std::{io::Write, path::Path};

use batchfan::objects::{dir::DirObjects, ObjectRef, Objects};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use serve_support::{sh_stage, wait_for, write_spec, Serve};

fn slot_of(run: &Value) -> DateTime<Utc> {
    let key = run["key"].as_str().expect("key");
    let t = key.strip_prefix("cron:").unwrap_or_else(|| panic!("not a cron key: {key}"));
    DateTime::parse_from_rfc3339(t).expect("rfc3339").with_timezone(&Utc)
}

fn tick_spec(dir: &Path, name: &str, catch_up: &str) -> std::path::PathBuf {
    let text = format!(
        "name = \"{name}\"\n[triggers.cron]\nschedule = \"*/2 * * * * *\"\noverlap = \"allow\"\ncatch_up = \"{catch_up}\"\n\
         [planner]\nstrategy = \"range\"\ncount = 2\n[[stages]]\nname = \"s\"\ncommand = {}\nvcpus = 0.25\nmemory = 64\n",
        sh_stage("true")
    );
    write_spec(dir, name, &text)
}

async fn started_at(serve: &Serve) -> DateTime<Utc> {
    let v = serve.get("/api/service").await;
    DateTime::parse_from_rfc3339(v["started_at"].as_str().expect("started_at"))
        .expect("time")
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_starts_one_run_per_slot_and_a_restart_follows_the_catch_up_policy() {
    let dir = tempfile::tempdir().unwrap();
    let none = tick_spec(dir.path(), "tick", "none");
    let latest = tick_spec(dir.path(), "catchup", "latest");
    let state = dir.path().join("state");
    let mut serve = Serve::start(&state, &[&none, &latest], &[], &[]);
    let first = wait_for("three scheduled runs of tick to succeed", || async {
        let runs = serve.runs("tick").await;
        (runs.iter().filter(|r| r["state"] == "SUCCEEDED").count() >= 3).then_some(runs)
    })
    .await;
    let stop_sent = Utc::now();
    assert!(serve.stop_with(libc::SIGTERM).success(), "{}", serve.log_text());
    // Let at least two slots pass while the service is down.
    wait_for("two slots to pass", || async {
        (Utc::now() > stop_sent + chrono::Duration::seconds(4)).then_some(())
    })
    .await;
    let serve = Serve::start(&state, &[&none, &latest], &[], &[]);
    let up = started_at(&serve).await;
    let after = wait_for("two runs of tick after the restart", || async {
        let runs = serve.runs("tick").await;
        let n = runs.iter().filter(|r| slot_of(r) > up && r["state"] == "SUCCEEDED").count();
        (n >= 2).then_some(runs)
    })
    .await;

    // Every run is a slot of the schedule, and no slot has two runs.
    let mut slots: Vec<DateTime<Utc>> = after.iter().map(slot_of).collect();
    assert!(slots.iter().all(|s| s.timestamp() % 2 == 0), "{slots:?}");
    let ids: std::collections::BTreeSet<&str> = after.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    slots.sort();
    let n = slots.len();
    slots.dedup();
    assert_eq!((slots.len(), ids.len()), (n, n), "one run per slot");
    assert!(after.len() >= first.len() + 2);
    // While up, every slot ran: the slots before the stop are consecutive.
    let before: Vec<_> = slots.iter().filter(|s| **s < stop_sent).collect();
    for w in before.windows(2) {
        assert_eq!(*w[1] - *w[0], chrono::Duration::seconds(2), "a slot was missed while up: {before:?}");
    }
    // catch_up = none: nothing of the downtime ran.
    let margin = chrono::Duration::seconds(1);
    let in_gap: Vec<_> = slots.iter().filter(|s| **s > stop_sent + margin && **s <= up).collect();
    assert!(in_gap.is_empty(), "catch_up = none ran missed slots {in_gap:?} (stopped {stop_sent}, up {up})");
    // catch_up = latest: exactly the latest missed slot ran.
    let caught: Vec<DateTime<Utc>> = serve
        .runs("catchup")
        .await
        .iter()
        .map(slot_of)
        .filter(|s| *s > stop_sent + margin && *s <= up)
        .collect();
    let latest_missed = DateTime::from_timestamp(up.timestamp() - up.timestamp() % 2, 0).unwrap();
    assert_eq!(caught, [latest_missed], "stopped {stop_sent}, up {up}");
    let notices = serve.get("/api/notices").await;
    assert!(notices.to_string().contains("passed while batchfan serve was down"), "{notices}");
    assert!(serve.stop().success());
}

fn lines(n: usize) -> Vec<u8> {
    (0..n).map(|i| format!("row-{i}\n")).collect::<String>().into_bytes()
}

/// The run whose input is `key`, once planned (its children counted).
async fn run_for(serve: &Serve, key: &str) -> Option<Value> {
    started_for(serve, key).await.filter(|r| !r["children"].is_null())
}

/// The run whose input is `key`, planned or not.
async fn started_for(serve: &Serve, key: &str) -> Option<Value> {
    let uri = format!("s3://inbox/{key}");
    serve.runs("inbox").await.into_iter().find(|r| r["input"].as_str() == Some(uri.as_str()))
}

/// The S3-put watcher of `pipeline` as `/api/pipelines` shows it.
async fn s3_watch(serve: &Serve, pipeline: &str) -> Value {
    let all = serve.get("/api/pipelines").await;
    let p = all.as_array().and_then(|ps| ps.iter().find(|p| p["name"] == pipeline)).cloned();
    p.map(|p| p["s3_watch"].clone()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_put_starts_exactly_one_run_and_partial_files_wait() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "inbox",
        &format!(
            "name = \"inbox\"\n[triggers.s3]\nbucket = \"inbox\"\nprefix = \"in/\"\nsuffix = \".csv\"\nsettle_seconds = 2\n\
             [planner]\nstrategy = \"lines\"\nlines_per_item = 1\nheader = false\n\
             [[stages]]\nname = \"s\"\ncommand = {}\nvcpus = 0.25\nmemory = 64\n",
            sh_stage("true")
        ),
    );
    let state = dir.path().join("state");
    let bucket_dir = state.join("buckets/inbox/in");
    std::fs::create_dir_all(&bucket_dir).unwrap();
    std::fs::write(bucket_dir.join("old.csv"), lines(3)).unwrap();
    let objects = DirObjects::new(state.join("buckets"));

    let mut serve = Serve::start(&state, &[&spec], &[], &[]);
    wait_for("the baseline", || async {
        serve.get("/api/notices").await.to_string().contains("baseline").then_some(())
    })
    .await;

    // Written through batchfan: an atomic put.
    objects.put(&ObjectRef::new("inbox", "in/a.csv"), lines(10)).await.unwrap();
    let a = wait_for("a run for in/a.csv", || run_for(&serve, "in/a.csv")).await;
    assert_eq!(a["source"], "s3");
    assert_eq!(a["children"], 10, "planned from the whole file");
    assert_eq!(serve.wait_run(a["run_id"].as_str().unwrap()).await["state"], "SUCCEEDED");

    // Written in place by another program, line by line. After each line the
    // watcher lists the bucket (a whole listing begun after the write: two
    // more polls), sees the file changing, and starts nothing.
    let path = bucket_dir.join("b.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..10 {
        writeln!(f, "row-{i}").unwrap();
        f.flush().unwrap();
        let before = s3_watch(&serve, "inbox").await["polls"].as_u64().unwrap_or(0);
        let watch = wait_for(&format!("two listings after line {i}"), || async {
            let w = s3_watch(&serve, "inbox").await;
            (w["polls"].as_u64().unwrap_or(0) >= before + 2).then_some(w)
        })
        .await;
        assert_eq!(watch["settling"], json!(["in/b.csv"]), "line {i}: the watcher waits on the growing file");
        assert!(
            started_for(&serve, "in/b.csv").await.is_none(),
            "a run started for a file still being written (line {i})"
        );
    }
    drop(f);
    let b = wait_for("a run for in/b.csv", || run_for(&serve, "in/b.csv")).await;
    assert_eq!(b["children"], 10, "a partial file was planned");

    // A temp name is never picked up; the rename into place is. The run of a
    // put made after it says the watcher has listed the temp file.
    std::fs::write(bucket_dir.join("c.csv.part"), lines(4)).unwrap();
    objects.put(&ObjectRef::new("inbox", "in/marker.csv"), lines(1)).await.unwrap();
    let marker = wait_for("a run for in/marker.csv", || run_for(&serve, "in/marker.csv")).await;
    assert!(serve.runs("inbox").await.iter().all(|r| !r["input"].as_str().unwrap_or("").contains("c.csv")));
    std::fs::rename(bucket_dir.join("c.csv.part"), bucket_dir.join("c.csv")).unwrap();
    let c = wait_for("a run for in/c.csv", || run_for(&serve, "in/c.csv")).await;
    assert_eq!(c["children"], 4);
    for r in [&b, &marker, &c] {
        serve.wait_run(r["run_id"].as_str().unwrap()).await;
    }
    assert!(serve.stop_with(libc::SIGTERM).success());

    // Put while the service is down: picked up when it is back; nothing else runs again.
    objects.put(&ObjectRef::new("inbox", "in/d.csv"), lines(2)).await.unwrap();
    let serve = Serve::start(&state, &[&spec], &[], &[]);
    let d = wait_for("a run for in/d.csv", || run_for(&serve, "in/d.csv")).await;
    serve.wait_run(d["run_id"].as_str().unwrap()).await;
    let runs = serve.runs("inbox").await;
    let mut inputs: Vec<&str> = runs.iter().map(|r| r["input"].as_str().unwrap()).collect();
    inputs.sort_unstable();
    assert_eq!(
        inputs,
        [
            "s3://inbox/in/a.csv",
            "s3://inbox/in/b.csv",
            "s3://inbox/in/c.csv",
            "s3://inbox/in/d.csv",
            "s3://inbox/in/marker.csv"
        ]
    );
    assert!(serve.stop().success());
}
