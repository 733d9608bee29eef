//! The object watcher of `batchfan serve` stays in its bucket (issue 10,
//! finding 4) and shows a skipped entry once (finding 9).

use std::{ffi::OsStr, os::unix::ffi::OsStrExt};

use batchfan::objects::{dir::DirObjects, ObjectRef, Objects};
use serde_json::{json, Value};

use crate::serve_support::{sh_stage, wait_for, write_spec, Serve};

fn matching<'a>(notices: &'a [Value], text: &str) -> Vec<&'a Value> {
    notices.iter().filter(|n| n["message"].as_str().is_some_and(|m| m.contains(text))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_out_of_the_bucket_starts_nothing_and_odd_names_show_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "inbox",
        &format!(
            "name = \"inbox\"\n[triggers]\nmanual = true\n[triggers.s3]\nbucket = \"inbox\"\nprefix = \"in/\"\nsuffix = \".csv\"\nsettle_seconds = 0\n\
             [planner]\nstrategy = \"lines\"\nlines_per_item = 1\nheader = false\n\
             [[stages]]\nname = \"s\"\ncommand = {}\nvcpus = 0.25\nmemory = 64\n",
            sh_stage("true")
        ),
    );
    let state = dir.path().join("state");
    let in_dir = state.join("buckets/inbox/in");
    std::fs::create_dir_all(&in_dir).unwrap();
    std::fs::write(in_dir.join("old.csv"), "1\n").unwrap();
    // A file outside the bucket that the process can read.
    let outside = dir.path().join("private.csv");
    std::fs::write(&outside, "secret-1\nsecret-2\n").unwrap();

    let mut serve = Serve::start(&state, &[&spec], &[], &[]);
    wait_for("the baseline", || async {
        serve.get("/api/notices").await.to_string().contains("baseline").then_some(())
    })
    .await;
    std::os::unix::fs::symlink(&outside, in_dir.join("link.csv")).unwrap();
    std::fs::write(in_dir.join(OsStr::from_bytes(b"caf\xe9.csv")), "x\n").unwrap();
    // Real puts after them, one at a time: each run needs a new poll, so the
    // link and the odd name have been listed at least three times.
    let objects = DirObjects::new(state.join("buckets"));
    for i in 0..3 {
        let key = format!("in/real-{i}.csv");
        objects.put(&ObjectRef::new("inbox", &key), b"a\nb\n".to_vec()).await.unwrap();
        let uri = format!("s3://inbox/{key}");
        let run = wait_for(&format!("a run for {key}"), || async {
            serve.runs("inbox").await.into_iter().find(|r| r["input"].as_str() == Some(uri.as_str()))
        })
        .await;
        serve.wait_run(run["run_id"].as_str().unwrap()).await;
    }

    let runs = serve.runs("inbox").await;
    let mut inputs: Vec<&str> = runs.iter().filter_map(|r| r["input"].as_str()).collect();
    inputs.sort_unstable();
    assert_eq!(
        inputs,
        ["s3://inbox/in/real-0.csv", "s3://inbox/in/real-1.csv", "s3://inbox/in/real-2.csv"],
        "only the real files started runs"
    );

    let notices = serve.get("/api/notices").await;
    let notices = notices.as_array().unwrap();
    let link = matching(notices, "in/link.csv");
    assert_eq!(link.len(), 1, "one notice for the link: {notices:?}");
    assert!(link[0]["message"].as_str().unwrap().contains("symbolic link"), "{link:?}");
    let odd = matching(notices, "not utf-8");
    assert_eq!(odd.len(), 1, "one notice for the odd name: {notices:?}");

    // The same link as an explicit input is refused, naming it.
    let r = serve
        .client()
        .post(format!("{}/api/pipelines/inbox/runs", serve.url))
        .bearer_auth(&serve.token)
        .json(&json!({"request_id": "via-link", "input": "s3://inbox/in/link.csv"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("in/link.csv") && error.contains("link"), "names the link: {body}");
    assert_eq!(serve.runs("inbox").await.len(), 3, "no run through the link");

    assert!(serve.stop_with(libc::SIGTERM).success());
    let log = serve.log_text();
    let warns = |text: &str| log.lines().filter(|l| l.contains("WARN") && l.contains(text)).count();
    assert_eq!(warns("not utf-8"), 1, "{log}");
    assert_eq!(warns("in/link.csv"), 1, "{log}");
    assert!(!log.contains("secret-1"), "the linked file was never read");
}
