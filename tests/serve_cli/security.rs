//! Issue 10, findings 3 and 5, on the real binary: the login (the URL serve
//! prints sets an HttpOnly, SameSite=Strict cookie; nothing works without it
//! but `/healthz` and the signed webhook), the security headers on every
//! response, the inputs the Run button and the API may name (`--allow-input`),
//! and owner-only files under the state directory.

use std::{os::unix::fs::PermissionsExt, path::Path};

use serde_json::{json, Value};

use super::{json_out, serve_support::batchfan, spec, Serve};

const HEADERS: [(&str, &str); 3] =
    [("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"), ("referrer-policy", "same-origin")];

/// Asserts the four security headers of a response (finding 5: nothing could frame the pages).
fn assert_headers(what: &str, r: &reqwest::Response) {
    for (name, value) in HEADERS {
        assert_eq!(r.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{what}: {name}");
    }
    let csp = r.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    for part in ["frame-ancestors 'none'", "default-src 'self'", "script-src 'self'"] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: CSP {csp:?} allows inline script");
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=csrf value=\"").expect("a csrf field") + "name=csrf value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_login_url_nothing_works_and_every_response_has_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ok = spec(dir.path(), "ok", 2, "true", "");
    let state = dir.path().join("state");
    let serve = Serve::start(&state, &[&ok], &[], &[]);
    let login = serve.login_url.clone().unwrap();
    assert_eq!(login, format!("{}/login?token={}", serve.url, serve.token), "stdout prints the login URL");
    let client = no_redirects();
    let port = serve.url.rsplit(':').next().unwrap().to_owned();

    // No cookie, a wrong cookie, a wrong bearer token: 401 everywhere, and no run.
    let get = |path: &str, header: Option<(&'static str, String)>| {
        let mut req = client.get(format!("{}{path}", serve.url));
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        req.send()
    };
    let wrong_cookie = Some(("Cookie", format!("batchfan-{port}=0123456789abcdef")));
    let wrong_bearer = Some(("Authorization", "Bearer 0123456789abcdef".to_owned()));
    for (path, header) in [
        ("/", None),
        ("/", wrong_cookie.clone()),
        ("/fragments/home", None),
        ("/static/live.js", None),
        ("/api/runs", None),
        ("/api/runs", wrong_bearer.clone()),
        ("/api/service", wrong_cookie.clone()),
        ("/login?token=0123456789abcdef", None),
    ] {
        let r = get(path, header.clone()).await.unwrap();
        let what = format!("GET {path} with {header:?}");
        assert_eq!(r.status().as_u16(), 401, "{what}");
        assert_headers(&what, &r);
        assert!(r.headers().get("set-cookie").is_none(), "{what} set a cookie");
        let body = r.text().await.unwrap();
        assert!(!body.contains(&serve.token) && !body.contains("name=csrf"), "{what} shows a secret: {body}");
        if path.starts_with("/api/") {
            assert!(body.contains("Bearer") && body.contains("serve.json"), "{what}: {body}");
        } else {
            assert!(body.contains("serve.json") && body.contains("/login?token="), "{what}: {body}");
        }
    }
    let press = client
        .post(format!("{}/pipelines/ok/run", serve.url))
        .header("Origin", serve.url.clone())
        .form(&[("csrf", "guess"), ("request_id", "no-login")])
        .send()
        .await
        .unwrap();
    assert_eq!(press.status().as_u16(), 401);
    let api = client
        .post(format!("{}/api/pipelines/ok/runs", serve.url))
        .json(&json!({"request_id": "no-login"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    assert!(serve.runs("ok").await.is_empty(), "a request without the login made a run");

    // The login URL: an HttpOnly, SameSite=Strict cookie for this port, and a redirect that drops the token.
    let r = client.get(&login).send().await.unwrap();
    assert_headers("login", &r);
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/"));
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    assert_eq!(attrs[0], format!("batchfan-{port}={}", serve.token), "{set}");
    for a in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&a), "cookie {set:?} lacks {a}");
    }
    let cookie = attrs[0].to_owned();
    let home = client.get(&serve.url).header("Cookie", &cookie).send().await.unwrap();
    assert_headers("home", &home);
    assert_eq!(home.status().as_u16(), 200);
    let home = home.text().await.unwrap();
    assert!(home.contains("data-pipeline=\"ok\""), "{home}");
    assert!(
        home.contains("<script src=\"/static/live.js\">") && !home.contains("<script>"),
        "no inline script"
    );
    let r = client
        .post(format!("{}/pipelines/ok/run", serve.url))
        .header("Cookie", &cookie)
        .header("Origin", serve.url.clone())
        .form(&[("csrf", csrf_of(&home)), ("request_id", "logged-in".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let run_id = r.headers()["location"].to_str().unwrap().trim_start_matches("/runs/").to_owned();
    assert_eq!(serve.wait_run(&run_id).await["state"], "SUCCEEDED");
    // The login page's form takes the token too.
    let r =
        client.post(format!("{}/login", serve.url)).form(&[("token", &serve.token)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);

    // Every other kind of response carries the headers too: static files, errors, the webhook, healthz.
    let js = get("/static/live.js", Some(("Cookie", cookie.clone()))).await.unwrap();
    assert_headers("live.js", &js);
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    let missing = get("/runs/nosuch", Some(("Cookie", cookie.clone()))).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_headers("404", &missing);
    let rebound = get("/", Some(("Host", "evil.example".into()))).await.unwrap();
    assert_eq!(rebound.status().as_u16(), 421);
    assert_headers("421", &rebound);
    let hook = client.post(format!("{}/hooks/ok", serve.url)).body("{}").send().await.unwrap();
    assert_eq!(hook.status().as_u16(), 404, "the webhook needs no login (it is signed), but ok has none");
    assert_headers("webhook", &hook);
    let health = get("/healthz", None).await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "healthz needs no login");
    assert_headers("healthz", &health);
    assert_eq!(serve.runs("ok").await.len(), 1);
    assert!(serve.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_needs_no_token_and_only_listens_on_a_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let ok = spec(dir.path(), "ok", 2, "true", "");
    let state = dir.path().join("state");
    let serve = Serve::start(&state, &[&ok], &["--no-auth"], &[]);
    assert!(serve.login_url.is_none());
    let client = no_redirects();
    let home = client.get(&serve.url).send().await.unwrap();
    assert_eq!(home.status().as_u16(), 200);
    assert_headers("home with --no-auth", &home);
    let r = client
        .post(format!("{}/api/pipelines/ok/runs", serve.url))
        .json(&json!({"request_id": "open-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let run_id = r.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_owned();
    assert_eq!(serve.wait_run(&run_id).await["state"], "SUCCEEDED");
    assert!(serve.stop().success());

    let out = batchfan(
        &[
            "serve",
            ok.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--no-auth",
            "--listen",
            "0.0.0.0:0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-auth on 0.0.0.0:0") && err.contains("listen on 127.0.0.1"), "{err}");
}

/// A pipeline that reads its input's lines, one child per line.
fn lines_spec(dir: &Path) -> std::path::PathBuf {
    super::serve_support::write_spec(
        dir,
        "lines",
        &format!(
            "name = \"lines\"\n[planner]\nstrategy = \"lines\"\nlines_per_item = 1\nheader = false\n\
             [[stages]]\nname = \"work\"\ncommand = {}\nvcpus = 1\nmemory = 64\n",
            super::serve_support::sh_stage("true")
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_button_and_the_api_take_only_bucket_objects_and_files_under_allow_input() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::write(inbox.join("in.csv"), "a\nb\nc\n").unwrap();
    std::fs::write(dir.path().join("secret.csv"), "s1\ns2\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.csv"), inbox.join("link.csv")).unwrap();
    let spec = lines_spec(dir.path());
    let state = dir.path().join("state");
    let serve = Serve::start(&state, &[&spec], &["--allow-input", inbox.to_str().unwrap()], &[]);
    let cookie = serve.login().await;
    let (_, home) = serve.page(&cookie, "/").await;
    let csrf = csrf_of(&home);
    let client = no_redirects();
    let press = |input: String, id: &'static str| {
        client
            .post(format!("{}/pipelines/lines/run", serve.url))
            .header("Cookie", cookie.clone())
            .header("Origin", serve.url.clone())
            .form(&[("csrf", csrf.clone()), ("request_id", id.into()), ("input", input)])
            .send()
    };
    let base = dir.path().display().to_string();
    for (input, id) in [
        ("/etc/shadow".to_owned(), "p1"),
        (format!("{base}/secret.csv"), "p2"),
        (format!("{base}/inbox/link.csv"), "p3"),
        (format!("{base}/inbox/../secret.csv"), "p4"),
    ] {
        let r = press(input.clone(), id).await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{input}");
        let body = r.text().await.unwrap();
        assert!(body.contains(&input) && body.contains("--allow-input"), "{input}: {body}");
    }
    let api = api_run(&serve, "a1", "/etc/shadow").await;
    assert_eq!(api.status().as_u16(), 403);
    let err = api.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(err.contains("\"/etc/shadow\"") && err.contains("--allow-input DIR"), "{err}");
    assert!(serve.runs("lines").await.is_empty(), "a refused input made a run");
    assert!(!state.join("buckets/batchfan-inputs").exists(), "a refused input was linked into the state");

    // A file under --allow-input, and an object of the local buckets, are taken.
    let r = press(format!("{base}/inbox/in.csv"), "p5").await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let run_id = r.headers()["location"].to_str().unwrap().trim_start_matches("/runs/").to_owned();
    let done = serve.wait_run(&run_id).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!(done["stages"][0]["children"].as_array().unwrap().len(), 3, "its 3 lines: {done}");
    std::fs::create_dir_all(state.join("buckets/in-bucket")).unwrap();
    std::fs::write(state.join("buckets/in-bucket/two.csv"), "x\ny\n").unwrap();
    let r = api_run(&serve, "a2", "s3://in-bucket/two.csv").await;
    assert_eq!(r.status().as_u16(), 202);
    let run_id = r.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_owned();
    assert_eq!(serve.wait_run(&run_id).await["state"], "SUCCEEDED");
    // The same request id with another input does not answer that run as if it were this one.
    std::fs::write(state.join("buckets/in-bucket/three.csv"), "x\ny\nz\n").unwrap();
    let r = api_run(&serve, "a2", "s3://in-bucket/three.csv").await;
    assert_eq!(r.status().as_u16(), 409);
    let err = r.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(err.contains("s3://in-bucket/two.csv") && err.contains("s3://in-bucket/three.csv"), "{err}");

    // `batchfan trigger` is the user's own command: any file of theirs, imported by the CLI.
    let out = batchfan(
        &[
            "trigger",
            "lines",
            "--state",
            state.to_str().unwrap(),
            "--input",
            &format!("{base}/secret.csv"),
            "--wait",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("started by batchfan serve"));
    let done = json_out(&out);
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert!(done["input"].as_str().unwrap().starts_with("s3://batchfan-inputs/"), "{done}");
    assert_eq!(serve.runs("lines").await.len(), 3);
    assert!(serve.stop().success());
}

/// `POST /api/pipelines/lines/runs` with the bearer token.
async fn api_run(serve: &Serve, request_id: &str, input: &str) -> reqwest::Response {
    serve
        .client()
        .post(format!("{}/api/pipelines/lines/runs", serve.url))
        .bearer_auth(&serve.token)
        .json(&json!({"request_id": request_id, "input": input}))
        .send()
        .await
        .unwrap()
}

/// Every file and directory under `root`, with its mode.
fn walk(root: &Path, out: &mut Vec<(std::path::PathBuf, u32, bool)>) {
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        out.push((entry.path(), meta.permissions().mode() & 0o777, meta.is_dir()));
        if meta.is_dir() {
            walk(&entry.path(), out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_batchfan_writes_under_the_state_directory_are_the_owners_only() {
    let dir = tempfile::tempdir().unwrap();
    // Each child writes a reject line (gathered into rejects.csv) and a world-readable output.
    let script = "d=\"$BATCHFAN_STATE_DIR/buckets/$BATCHFAN_BUCKET/runs/$BATCHFAN_PIPELINE/$BATCHFAN_RUN/rejects/work\"; \
         mkdir -p \"$d\" && echo \"$AWS_BATCH_JOB_ARRAY_INDEX,bad row\" > \"$d/$AWS_BATCH_JOB_ARRAY_INDEX\" && \
         echo out > \"$BATCHFAN_OUTPUT_FILE\" && chmod 644 \"$BATCHFAN_OUTPUT_FILE\" && echo 'a log line' >&2";
    let modes = spec(dir.path(), "modes", 2, script, "");
    let state = dir.path().join("state");
    // A state directory from before this rule, readable by everyone.
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let serve = Serve::start(&state, &[&modes], &[], &[]);
    let r = serve
        .client()
        .post(format!("{}/api/pipelines/modes/runs", serve.url))
        .bearer_auth(&serve.token)
        .json(&json!({"request_id": "m1"}))
        .send()
        .await
        .unwrap();
    let run_id = r.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_owned();
    let done = serve.wait_run(&run_id).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}\n{}", serve.log_text());

    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700, "the state directory");
    let mut entries = Vec::new();
    walk(&state, &mut entries);
    let loose: Vec<String> = entries
        .iter()
        .filter(|(_, mode, _)| mode & 0o077 != 0)
        .map(|(p, mode, _)| format!("{} {mode:o}", p.display()))
        .collect();
    assert!(loose.is_empty(), "readable by others: {loose:#?}");
    let names: Vec<String> = entries.iter().map(|(p, _, _)| p.display().to_string()).collect();
    let rejects = names.iter().find(|n| n.ends_with(&format!("{run_id}/rejects.csv"))).expect("rejects.csv");
    assert_eq!(std::fs::read_to_string(rejects).unwrap().lines().count(), 2, "one reject per child");
    for expected in ["/serve.json", "/engine.sqlite", "/bus.sqlite", ".log", &format!("{run_id}/output")] {
        assert!(names.iter().any(|n| n.ends_with(expected)), "no {expected} checked among {names:#?}");
    }
    assert!(names.iter().any(|n| n.contains("/tables/")), "no table file checked");
    assert!(serve.stop().success());
}
