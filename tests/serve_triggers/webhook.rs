//! The signed webhook of `batchfan serve`: answers, the signed delivery id
//! (issue 10, finding 2), and refusals that are counted, not shown one by one
//! (issue 10, finding 9).

use batchfan::trigger::webhook::{sign, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use chrono::Utc;
use serde_json::Value;

use crate::serve_support::{sh_stage, wait_for, write_spec, Serve};

/// (what, pipeline, headers, body, expected status).
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, Vec<u8>, u16);

struct Hook<'a> {
    serve: &'a Serve,
}

impl Hook<'_> {
    async fn post(&self, pipeline: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
        let mut req =
            self.serve.client().post(format!("{}/hooks/{pipeline}", self.serve.url)).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn signed(
        &self,
        pipeline: &str,
        secret: &[u8],
        ts: i64,
        delivery: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let t = ts.to_string();
        let headers = [
            (TIMESTAMP_HEADER, t.clone()),
            (SIGNATURE_HEADER, sign(secret, &t, delivery, body)),
            (DELIVERY_HEADER, delivery.to_owned()),
        ];
        self.post(pipeline, &headers, body).await
    }
}

fn base() -> String {
    format!(
        "[planner]\nstrategy = \"range\"\ncount = 2\n[[stages]]\nname = \"s\"\ncommand = {}\nvcpus = 0.25\nmemory = 64\n",
        sh_stage("true")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_accepts_signed_deliveries_once_and_rejects_everything_else_without_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = base();
    std::fs::write(dir.path().join("hook.secret"), "file-secret\n").unwrap();
    let hook = write_spec(
        dir.path(),
        "hook",
        &format!("name = \"hook\"\n[params]\nday = \"none\"\n[triggers.webhook]\nsecret_file = \"hook.secret\"\nmax_body_bytes = 256\n{base}"),
    );
    let env_hook = write_spec(
        dir.path(),
        "envhook",
        &format!("name = \"envhook\"\n[triggers.webhook]\nsecret_env = \"TEST_HOOK_SECRET\"\n{base}"),
    );
    let off = write_spec(
        dir.path(),
        "off",
        &format!("name = \"off\"\n[triggers.webhook]\nenabled = false\n{base}"),
    );
    let state = dir.path().join("state");
    let serve = Serve::start(&state, &[&hook, &env_hook, &off], &[], &[("TEST_HOOK_SECRET", "env-secret")]);
    let h = Hook { serve: &serve };
    let now = Utc::now().timestamp();
    let body = br#"{"params":{"day":"2026-11-23"}}"#;

    let (status, accepted) = h.signed("hook", b"file-secret", now, "d-1", body).await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let (status, replay) = h.signed("hook", b"file-secret", now + 1, "d-1", body).await;
    assert_eq!(
        (status, replay["run_id"].as_str()),
        (202, Some(run_id.as_str())),
        "a replayed delivery is the same run"
    );
    let (status, other) = h.signed("envhook", b"env-secret", now, "d-1", b"").await;
    assert_eq!(status, 202, "{other}");

    // Issue 10, finding 2: the captured request resent under 20 new delivery ids.
    let t = now.to_string();
    let good = sign(b"file-secret", &t, "d-1", body);
    for i in 0..20 {
        let headers = [
            (TIMESTAMP_HEADER, t.clone()),
            (SIGNATURE_HEADER, good.clone()),
            (DELIVERY_HEADER, format!("replay-{i}")),
        ];
        let (status, reply) = h.post("hook", &headers, body).await;
        assert_eq!(status, 401, "replay {i}: {reply}");
        assert!(reply["error"].as_str().unwrap().contains("{delivery id}"), "{reply}");
    }

    let cases: Vec<Case<'_>> = vec![
        (
            "no signature",
            "hook",
            vec![(TIMESTAMP_HEADER, t.clone()), (DELIVERY_HEADER, "d-2".into())],
            body.to_vec(),
            401,
        ),
        (
            "no delivery id",
            "hook",
            vec![(TIMESTAMP_HEADER, t.clone()), (SIGNATURE_HEADER, good.clone())],
            body.to_vec(),
            400,
        ),
        (
            "wrong secret",
            "hook",
            vec![
                (TIMESTAMP_HEADER, t.clone()),
                (SIGNATURE_HEADER, sign(b"guess", &t, "d-3", body)),
                (DELIVERY_HEADER, "d-3".into()),
            ],
            body.to_vec(),
            401,
        ),
        (
            "tampered body",
            "hook",
            vec![
                (TIMESTAMP_HEADER, t.clone()),
                (SIGNATURE_HEADER, good.clone()),
                (DELIVERY_HEADER, "d-1".into()),
            ],
            br#"{"params":{"day":"1999-01-01"}}"#.to_vec(),
            401,
        ),
        ("over the size limit", "hook", vec![(DELIVERY_HEADER, "d-5".into())], vec![b' '; 257], 413),
        ("unknown pipeline", "nope", vec![], b"".to_vec(), 404),
        ("disabled webhook", "off", vec![], b"".to_vec(), 404),
    ];
    for (what, pipeline, headers, body, want) in cases {
        let (status, reply) = h.post(pipeline, &headers, &body).await;
        assert_eq!(status, want, "{what}: {reply}");
        assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {reply}");
        if what == "no delivery id" {
            assert!(reply["error"].as_str().unwrap().contains(DELIVERY_HEADER), "{reply}");
        }
    }
    let stale = now - 600;
    let (status, reply) = h.signed("hook", b"file-secret", stale, "d-6", body).await;
    assert_eq!(status, 401, "stale: {reply}");
    assert!(reply["error"].as_str().unwrap().contains("away from this server's clock"), "{reply}");
    let (status, reply) = h.signed("hook", b"file-secret", now, "d-7", br#"{"params":{"nope":"1"}}"#).await;
    assert_eq!(status, 400, "unknown parameter: {reply}");
    let (status, _) = h.signed("hook", b"file-secret", now, "d-8", b"not json").await;
    assert_eq!(status, 400, "signed but not JSON");

    // Only the accepted deliveries made runs.
    let runs = serve.runs("hook").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["key"], "webhook:d-1");
    let done = serve.wait_run(&run_id).await;
    assert_eq!(done["state"], "SUCCEEDED");
    assert_eq!(done["params"]["day"], "2026-11-23");
    assert_eq!(serve.runs("envhook").await.len(), 1);
    assert!(serve.runs("off").await.is_empty());
    assert!(serve.stop().success());
}

/// Issue 10, finding 9: 250 unsigned posts pushed every real notice off the
/// status page and wrote 250 WARN lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_posts_are_counted_not_shown_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), "file-secret").unwrap();
    let spec = write_spec(
        dir.path(),
        "noisy",
        &format!(
            "name = \"noisy\"\n[triggers.webhook]\nsecret_file = \"hook.secret\"\n\
             [triggers.s3]\nbucket = \"inbox\"\nprefix = \"in/\"\nsuffix = \".csv\"\n{}",
            base()
        ),
    );
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("buckets/inbox/in")).unwrap();
    std::fs::write(state.join("buckets/inbox/in/old.csv"), "1\n").unwrap();
    let mut serve = Serve::start(&state, &[&spec], &[], &[]);
    // A real notice: the watcher's baseline.
    wait_for("the baseline notice", || async {
        serve.get("/api/notices").await.to_string().contains("baseline").then_some(())
    })
    .await;
    let h = Hook { serve: &serve };
    let now = Utc::now().timestamp().to_string();
    for i in 0..250 {
        let headers = [(TIMESTAMP_HEADER, now.clone()), (DELIVERY_HEADER, format!("noise-{i}"))];
        let (status, _) = h.post("noisy", &headers, b"{}").await;
        assert_eq!(status, 401, "post {i}");
    }

    let notices = serve.get("/api/notices").await;
    let notices = notices.as_array().expect("notices");
    assert!(notices.iter().any(|n| n["message"].as_str().unwrap().contains("baseline")), "{notices:?}");
    assert!(notices.iter().all(|n| n["source"] != "webhook"), "a refusal became a notice: {notices:?}");
    let service = serve.get("/api/service").await;
    let refused = &service["refused_webhooks"];
    assert_eq!(refused["total"], 250, "{service}");
    assert_eq!(refused["by_reason"][0]["reason"], "unsigned", "{service}");
    assert_eq!(refused["by_reason"][0]["count"], 250, "{service}");
    let cookie = serve.login().await;
    let (status, page) = serve.page(&cookie, "/fragments/home").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("baseline"), "the real notice is still on the page");
    assert!(page.contains("refused webhook requests: 250, last at "), "{page}");

    assert!(serve.stop_with(libc::SIGTERM).success());
    let log = serve.log_text();
    let warns: Vec<&str> = log.lines().filter(|l| l.contains("WARN") && l.contains("webhook")).collect();
    assert!(
        (1..=2).contains(&warns.len()),
        "{} WARN lines about refusals:\n{}",
        warns.len(),
        warns.join("\n")
    );
    assert!(warns[0].contains("count=1"), "the first refusal is logged with its count: {}", warns[0]);
}
