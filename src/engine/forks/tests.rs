//! Fork servers started from this very test binary: its ignored test
//! [`fork_server_helper`] is the job, serving when the engine asks it to.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fs::File,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use super::*;
use crate::engine::spawn::CHILD_STACK;

const HELPER: &str = "engine::forks::tests::fork_server_helper";
/// The file, in its working directory, where the forked child writes what it sees.
const REPORT: &str = "FORK_TEST_REPORT";
const REPORT_FILE: &str = "report";

/// In the engine test: the array index whose child holds more memory than its limit.
const HOG_INDEX: &str = "FORK_TEST_HOG_INDEX";

/// The job: in a forked child, reports its environment, directory and ids,
/// then exits 3 (the engine test's children: `FORK_TEST_EXIT`, or hold 256
/// MiB when their index is `FORK_TEST_HOG_INDEX`).
#[test]
#[ignore = "the program the fork-server tests start"]
fn fork_server_helper() {
    job::serve_if_asked();
    let Some(report) = std::env::var_os(REPORT) else { return };
    let mut lines: Vec<String> = std::env::vars().map(|(k, v)| format!("env {k}={v}")).collect();
    lines.push(format!("cwd {}", std::env::current_dir().unwrap().display()));
    #[allow(unsafe_code)]
    // SAFETY: plain id queries.
    let (pid, pgid, ppid) = unsafe { (libc::getpid(), libc::getpgid(0), libc::getppid()) };
    lines.push(format!("ids {pid} {pgid} {ppid}"));
    std::fs::write(report, lines.join("\n")).unwrap();
    println!("to stdout");
    let index = std::env::var("AWS_BATCH_JOB_ARRAY_INDEX").ok();
    if let Some(i) = &index {
        println!("index {i}");
    }
    if index.is_some() && index == std::env::var(HOG_INDEX).ok() {
        let held = vec![1u8; 256 << 20];
        std::thread::sleep(Duration::from_secs(30));
        drop(std::hint::black_box(held));
    }
    std::process::exit(std::env::var("FORK_TEST_EXIT").ok().and_then(|c| c.parse().ok()).unwrap_or(3));
}

struct Case {
    dir: tempfile::TempDir,
    servers: ForkServers,
    stack: Vec<u8>,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
            servers: ForkServers::new(true),
            stack: vec![0; CHILD_STACK],
        }
    }

    /// The helper as an attempt: its argv, `env` plus the report path, in a fresh directory.
    fn program(&self, name: &str, env: &[(&str, &str)]) -> Program {
        let exe = std::env::current_exe().unwrap();
        let argv: Vec<String> = [exe.to_str().unwrap(), "--exact", HELPER, "--ignored", "--nocapture"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cwd = self.dir.path().join(name);
        std::fs::create_dir_all(&cwd).unwrap();
        let mut vars: Vec<(OsString, OsString)> = env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        vars.push((REPORT.into(), REPORT_FILE.into()));
        Program::new(&exe, &argv, vars, &cwd).unwrap()
    }

    fn report(&self, name: &str) -> PathBuf {
        self.dir.path().join(name).join(REPORT_FILE)
    }

    fn out(&self, name: &str) -> File {
        File::create(self.dir.path().join(format!("{name}.out"))).unwrap()
    }

    fn start(&mut self, program: &Program, out: &File, cgroup: Option<&File>) -> Option<io::Result<u32>> {
        let null = File::open("/dev/null").unwrap();
        let fds = [null.as_fd(), out.as_fd(), out.as_fd()];
        self.servers.start(program, fds, cgroup.map(AsFd::as_fd), &mut self.stack)
    }
}

fn read_report(path: &Path) -> (BTreeMap<String, String>, String, [i32; 3]) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut env = BTreeMap::new();
    let (mut cwd, mut ids) = (String::new(), [0; 3]);
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("env ") {
            let (k, v) = kv.split_once('=').unwrap();
            env.insert(k.to_owned(), v.to_owned());
        } else if let Some(c) = line.strip_prefix("cwd ") {
            cwd = c.to_owned();
        } else if let Some(i) = line.strip_prefix("ids ") {
            let v: Vec<i32> = i.split(' ').map(|n| n.parse().unwrap()).collect();
            ids = [v[0], v[1], v[2]];
        }
    }
    (env, cwd, ids)
}

#[test]
fn the_second_start_forks_a_child_set_up_as_its_attempt() {
    let mut case = Case::new();
    let first = case.program("a", &[("ONLY", "this"), ("AWS_BATCH_JOB_ARRAY_INDEX", "0")]);
    assert!(case.start(&first, &case.out("a"), None).is_none(), "the first start is an exec");
    assert_eq!(case.servers.running(), 0);

    let second = case.program("b", &[("ONLY", "this"), ("AWS_BATCH_JOB_ARRAY_INDEX", "1")]);
    let out = case.out("b");
    let pid = case.start(&second, &out, None).expect("the second start forks").unwrap();
    assert_eq!(case.servers.running(), 1);
    let status = sys::wait_blocking(pid).unwrap();
    assert_eq!(libc::WEXITSTATUS(status), 3, "the engine reaps the child and sees its exit code");
    let (env, cwd, [child, group, parent]) = read_report(&case.report("b"));
    let expected: BTreeMap<String, String> = [
        ("ONLY", "this".to_string()),
        ("AWS_BATCH_JOB_ARRAY_INDEX", "1".to_string()),
        (REPORT, REPORT_FILE.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(env, expected, "exactly the attempt's environment, nothing of the server's");
    assert_eq!(Path::new(&cwd), case.dir.path().join("b"), "in the attempt's directory");
    assert_eq!(child as u32, pid);
    assert_eq!(group, child, "it leads its own process group");
    assert_eq!(parent as u32, std::process::id(), "its parent is the engine, not the server");
    let out = std::fs::read_to_string(case.dir.path().join("b.out")).unwrap();
    assert_eq!(out, "to stdout\nindex 1\n", "stdout is the attempt's log");

    // The same program again (another index, another directory): the same server.
    let third = case.program("c", &[("ONLY", "this"), ("AWS_BATCH_JOB_ARRAY_INDEX", "2")]);
    let pid = case.start(&third, &case.out("c"), None).unwrap().unwrap();
    sys::wait_blocking(pid).unwrap();
    assert_eq!(read_report(&case.report("c")).0["AWS_BATCH_JOB_ARRAY_INDEX"], "2");
    assert_eq!(case.servers.running(), 1);

    // Another environment is another program: started once by exec first.
    let other = case.program("d", &[("ONLY", "that")]);
    assert!(case.start(&other, &case.out("d"), None).is_none());
}

#[test]
fn the_child_moves_itself_into_the_given_cgroup() {
    let mut case = Case::new();
    let procs = File::create(case.dir.path().join("cgroup.procs")).unwrap();
    let program = case.program("a", &[]);
    assert!(case.start(&program, &case.out("a"), Some(&procs)).is_none());
    let pid = case.start(&program, &case.out("a"), Some(&procs)).unwrap().unwrap();
    sys::wait_blocking(pid).unwrap();
    assert_eq!(std::fs::read_to_string(case.dir.path().join("cgroup.procs")).unwrap(), "0");

    // A group that refuses the move: the start fails as an exec's would, nothing of the job runs.
    std::fs::remove_file(case.report("a")).unwrap();
    let refused = File::open(case.dir.path().join("cgroup.procs")).unwrap();
    let err = case.start(&program, &case.out("a"), Some(&refused)).unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    assert!(!case.report("a").exists(), "the job did not run");
    assert_eq!(case.servers.running(), 1, "the server keeps serving");
}

#[test]
fn a_missing_working_directory_fails_the_start() {
    let mut case = Case::new();
    let program = case.program("a", &[]);
    assert!(case.start(&program, &case.out("a"), None).is_none());
    let gone = program.with_env(program.envp.clone(), CString::new("/nonexistent/dir").unwrap());
    let err = case.start(&gone, &case.out("a"), None).unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn programs_without_the_marker_are_always_exec_d() {
    let mut case = Case::new();
    let sh = Program::new(Path::new("/bin/true"), &["true".into()], vec![], case.dir.path()).unwrap();
    let out = case.out("sh");
    assert!(case.start(&sh, &out, None).is_none());
    assert!(case.start(&sh, &out, None).is_none(), "no marker: no server");
    assert!(case.start(&sh, &out, None).is_none());
    assert_eq!(case.servers.running(), 0);
    let relative = Program::new(Path::new("true"), &["true".into()], vec![], case.dir.path()).unwrap();
    assert!(case.start(&relative, &out, None).is_none(), "relative paths are exec'd");
}

#[test]
fn switched_off_every_start_is_an_exec() {
    let mut case = Case::new();
    case.servers = ForkServers::new(false);
    let program = case.program("a", &[]);
    for _ in 0..3 {
        assert!(case.start(&program, &case.out("a"), None).is_none());
    }
    assert_eq!(case.servers.running(), 0);
}

#[test]
fn a_server_that_dies_falls_back_to_exec_for_good() {
    let mut case = Case::new();
    let program = case.program("a", &[]);
    assert!(case.start(&program, &case.out("a"), None).is_none());
    let pid = case.start(&program, &case.out("a"), None).unwrap().unwrap();
    sys::wait_blocking(pid).unwrap();
    let server = case.servers.registry().servers[0].1.lock().unwrap().pid;
    sys::signal_process(server, libc::SIGKILL).unwrap();
    assert!(case.start(&program, &case.out("a"), None).is_none(), "the dead server: exec");
    assert_eq!(case.servers.running(), 0, "and it was reaped");
    assert!(case.start(&program, &case.out("a"), None).is_none(), "exec from then on");
    assert_eq!(case.servers.running(), 0);
}

#[test]
fn a_server_dies_with_the_thread_that_started_it() {
    let case = std::sync::Arc::new(std::sync::Mutex::new(Case::new()));
    let program = case.lock().unwrap().program("a", &[]);
    let server = {
        let case = case.clone();
        std::thread::spawn(move || {
            let mut case = case.lock().unwrap();
            let out = case.out("a");
            assert!(case.start(&program, &out, None).is_none());
            let pid = case.start(&program, &out, None).unwrap().unwrap();
            sys::wait_blocking(pid).unwrap();
            let server = case.servers.registry().servers[0].1.lock().unwrap().pid;
            server
        })
        .join()
        .unwrap()
    };
    // The thread that spawned the server has exited: PR_SET_PDEATHSIG killed it.
    let status = sys::wait_blocking(server).unwrap();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
}

#[test]
fn an_idle_server_is_stopped_at_the_next_start() {
    let mut case = Case::new();
    case.servers.idle_stop = Duration::from_millis(200);
    let program = case.program("a", &[]);
    assert!(case.start(&program, &case.out("a"), None).is_none());
    let pid = case.start(&program, &case.out("a"), None).unwrap().unwrap();
    sys::wait_blocking(pid).unwrap();
    let server = case.servers.registry().servers[0].1.lock().unwrap().pid;
    std::thread::sleep(Duration::from_millis(300));
    let other = Program::new(Path::new("/bin/true"), &["true".into()], vec![], case.dir.path()).unwrap();
    assert!(case.start(&other, &case.out("b"), None).is_none());
    assert_eq!(case.servers.running(), 0, "the idle server was stopped");
    assert!(sys::proc_stat(server).is_none(), "and reaped");
}

/// Through the engine: an array's children after the first are forks, each
/// with its own index and directory, and a fork over its `memory` is killed
/// as AWS's OOM killer would.
#[tokio::test]
async fn the_engine_forks_array_children_that_keep_their_index_and_memory_limit() {
    use crate::batch::{Batch, ContainerSpec, JobStatus, SubmitJob};
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::engine::EngineConfig::new(dir.path().join("state"));
    (config.vcpus, config.memory_mib) = (4.0, 4096);
    let engine = crate::engine::LocalEngine::open(config).await.unwrap();
    let exe = std::env::current_exe().unwrap().display().to_string();
    let environment = [(REPORT, "report"), ("FORK_TEST_EXIT", "0"), (HOG_INDEX, "2")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let job = SubmitJob {
        job_name: "forked".into(),
        job_queue: "local".into(),
        job_definition: "d".into(),
        array_size: Some(3),
        depends_on: Vec::new(),
        container: ContainerSpec {
            image: String::new(),
            command: [exe.as_str(), "--exact", HELPER, "--ignored", "--nocapture"].map(String::from).to_vec(),
            environment,
            vcpus: 1.0,
            memory_mib: 64,
        },
        retry_strategy: Default::default(),
        timeout_seconds: None,
        tags: Default::default(),
    };
    let id = engine.submit_job(job).await.unwrap().job_id;
    let children: Vec<String> = (0..3).map(|i| format!("{id}:{i}")).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let jobs = engine.describe_jobs(&children).await.unwrap();
        if jobs.len() == 3 && jobs.iter().all(|j| j.status.is_terminal()) {
            break jobs;
        }
        assert!(std::time::Instant::now() < deadline, "children still running: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(engine.forked_starts(), 2, "the first child is exec'd, the other two forked");
    let statuses: Vec<JobStatus> = done.iter().map(|j| j.status).collect();
    assert_eq!(statuses, [JobStatus::Succeeded, JobStatus::Succeeded, JobStatus::Failed]);
    let oom = &done[2].attempts[0];
    assert_eq!(oom.exit_code, Some(137), "{oom:?}");
    assert_eq!(oom.reason.as_deref(), Some("OutOfMemoryError: Container killed due to memory usage"));
    for (i, child) in done.iter().enumerate().take(2) {
        let log = engine.log_path(&child.job_id, 1);
        // (The exec'd child's log also has libtest's header, printed before the test runs.)
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.ends_with(&format!("to stdout\nindex {i}\n")), "child {i}'s log: {text:?}");
    }
    engine.shutdown(crate::engine::ShutdownMode::Drain).await;
}

#[test]
fn messages_carry_descriptors_and_replies_round_trip() {
    let (a, b) = sys::socket_pair().unwrap();
    let file = tempfile::tempfile().unwrap();
    send_message(a.as_raw_fd(), b"hello\0world", &[file.as_raw_fd()]).unwrap();
    let mut buf = [0u8; 32];
    let (n, fds) = recv_message(b.as_raw_fd(), &mut buf).unwrap().unwrap();
    assert_eq!(&buf[..n], b"hello\0world");
    assert_eq!(fds.len(), 1);
    let reply = Reply { pid: 1234, errno: libc::ENOENT };
    assert_eq!(Reply::decode(&reply.encode()), Some(reply));
    assert_eq!(Reply::decode(&[1, 2, 3]), None);
    // Longer than the buffer: an error, never a cut message.
    send_message(a.as_raw_fd(), &[7u8; 64], &[]).unwrap();
    assert!(recv_message(b.as_raw_fd(), &mut buf).is_err());
    drop(a);
    assert!(recv_message(b.as_raw_fd(), &mut buf).unwrap().is_none(), "end of file");
}

#[test]
fn per_attempt_variables_stay_out_of_the_servers_environment() {
    assert!(per_attempt(b"HOME=/x") && per_attempt(b"TMPDIR=/x/tmp"));
    assert!(per_attempt(b"AWS_BATCH_JOB_ID=j:1") && per_attempt(b"BATCHFAN_RUN=r1"));
    assert!(!per_attempt(b"PATH=/bin") && !per_attempt(b"MALLOC_ARENA_MAX=2") && !per_attempt(b"HOMEDIR=/x"));
}
