//! Runs attempts as processes: `command[0]` looked up in `path_prefix` + `PATH`,
//! stdout and stderr appended to the attempt's log file, each process in its
//! own process group and killed if the thread that spawned it dies. A few
//! long-lived spawner threads do the spawning (so the scheduler never waits on
//! fork/exec); a task per process (not a thread) waits for it and reports the
//! exit to the scheduler, always after its start.

use std::{
    fs::OpenOptions,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::mpsc::UnboundedSender;

use super::{
    scheduler::Input,
    state::{Settings, UnitIx},
    sys,
};

/// What the scheduler asks to start.
#[derive(Debug)]
pub(crate) struct Launch {
    pub unit: UnitIx,
    pub token: u64,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// How a start went.
#[derive(Debug)]
pub(crate) enum Spawned {
    Started {
        unit: UnitIx,
        token: u64,
        pid: u32,
        pid_start: Option<u64>,
    },
    /// The process could not start; `reason` is `CannotStartContainerError: ...`.
    Failed {
        unit: UnitIx,
        token: u64,
        reason: String,
    },
}

/// How an attempt's process ended, as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitReport {
    /// The exit code, or 128 + signal when killed by a signal.
    pub exit_code: Option<i32>,
    /// `Signal N` when killed by a signal.
    pub reason: Option<String>,
}

impl ExitReport {
    pub(crate) fn from_status(status: std::io::Result<ExitStatus>) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match status {
            Ok(st) => match (st.code(), st.signal()) {
                (Some(code), _) => ExitReport { exit_code: Some(code), reason: None },
                (None, Some(sig)) => {
                    ExitReport { exit_code: Some(128 + sig), reason: Some(format!("Signal {sig}")) }
                }
                (None, None) => {
                    ExitReport { exit_code: None, reason: Some(format!("unknown exit status {st}")) }
                }
            },
            Err(e) => {
                ExitReport { exit_code: None, reason: Some(format!("cannot wait for the process: {e}")) }
            }
        }
    }
}

/// How many threads spawn processes. Each blocks in fork/exec while its child
/// starts, so several overlap that wait.
const SPAWNER_THREADS: usize = 2;

/// A pool of long-lived spawner threads. Processes get the parent-death signal
/// of the thread that spawned them, so the threads live as long as the engine.
pub(crate) struct Executor {
    queue: std::sync::mpsc::Sender<Launch>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Executor {
    /// Starts the spawner threads; results and exits go to `inputs`, and the
    /// tasks that wait for processes run on `runtime`.
    pub(crate) fn start(
        settings: Arc<Settings>,
        inputs: UnboundedSender<Input>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Executor> {
        let (queue, launches) = std::sync::mpsc::channel::<Launch>();
        let launches = Arc::new(Mutex::new(launches));
        let spawner = Arc::new(Spawner { settings, inputs, runtime });
        let threads = (0..SPAWNER_THREADS)
            .map(|i| {
                let (spawner, launches) = (spawner.clone(), launches.clone());
                std::thread::Builder::new()
                    .name(format!("batchfan-spawn-{i}"))
                    .spawn(move || spawner.serve(&launches))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Executor { queue, threads })
    }

    /// Queues `launch`; its [`Spawned`] result arrives as [`Input::Spawned`].
    pub(crate) fn launch(&self, launch: Launch) {
        // The threads outlive every sender of this queue: this cannot fail.
        let _ = self.queue.send(launch);
    }

    /// Stops the threads once they are idle.
    pub(crate) fn stop(self) {
        drop(self.queue);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

struct Spawner {
    settings: Arc<Settings>,
    inputs: UnboundedSender<Input>,
    runtime: tokio::runtime::Handle,
}

impl Spawner {
    fn serve(&self, launches: &Mutex<std::sync::mpsc::Receiver<Launch>>) {
        let _runtime = self.runtime.enter();
        loop {
            let next = launches.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(launch) = next else { return };
            self.spawn(launch);
        }
    }

    /// Starts `launch` and reports it; the exit is reported after the start.
    fn spawn(&self, launch: Launch) {
        let (unit, token) = (launch.unit, launch.token);
        let mut child = match self.try_spawn(launch) {
            Ok(child) => child,
            Err(reason) => {
                let _ = self.inputs.send(Input::Spawned(Spawned::Failed { unit, token, reason }));
                return;
            }
        };
        let Some(pid) = child.id() else { return };
        let pid_start = sys::proc_stat(pid).map(|st| st.start_time);
        if self.inputs.send(Input::Spawned(Spawned::Started { unit, token, pid, pid_start })).is_err() {
            // The engine is gone: nothing may run unsupervised.
            let _ = sys::signal_group(pid, libc::SIGKILL);
        }
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            // The container is gone when its main process is: so is the rest of its group.
            let _ = sys::signal_group(pid, libc::SIGKILL);
            let _ = inputs.send(Input::Exited { unit, token, report: ExitReport::from_status(status) });
        });
    }

    fn try_spawn(&self, launch: Launch) -> Result<tokio::process::Child, String> {
        let name = &launch.command[0];
        let program = self.resolve(name)?;
        let log = open_log(&launch.log).map_err(|e| {
            format!("CannotStartContainerError: cannot open log file {}: {e}", launch.log.display())
        })?;
        let log_err =
            log.try_clone().map_err(|e| format!("CannotStartContainerError: cannot share log file: {e}"))?;
        let mut cmd = std::process::Command::new(&program);
        cmd.args(&launch.command[1..])
            .env("PATH", &self.settings.child_path)
            // A plain job has no index, even when the engine itself runs as an array child.
            .env_remove(crate::env::AWS_BATCH_JOB_ARRAY_INDEX)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        sys::die_with_parent(&mut cmd);
        tokio::process::Command::from(cmd).spawn().map_err(|e| {
            format!("CannotStartContainerError: cannot run command {name:?} ({}): {e}", program.display())
        })
    }

    /// Looks `name` up like a shell: as a path when it has a '/', else in `path_dirs`.
    fn resolve(&self, name: &str) -> Result<PathBuf, String> {
        if name.contains('/') {
            return Ok(PathBuf::from(name));
        }
        self.settings.path_dirs.iter().map(|dir| dir.join(name)).find(|p| is_executable(p)).ok_or_else(|| {
            format!(
                "CannotStartContainerError: command {name:?} not found in the engine's path_prefix and PATH: \
                 No such file or directory (os error 2)"
            )
        })
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reports_follow_aws() {
        use std::os::unix::process::ExitStatusExt;
        let code = ExitReport::from_status(Ok(ExitStatus::from_raw(3 << 8)));
        assert_eq!(code, ExitReport { exit_code: Some(3), reason: None });
        let killed = ExitReport::from_status(Ok(ExitStatus::from_raw(libc::SIGKILL)));
        assert_eq!(killed, ExitReport { exit_code: Some(137), reason: Some("Signal 9".into()) });
    }
}
