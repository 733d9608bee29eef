//! Runs attempts as processes: `command[0]` looked up in `path_prefix` + the
//! container `PATH`, exactly the container's environment (nothing of the
//! engine's), a fresh working directory, stdout and stderr into a pipe the
//! engine copies to the attempt's log file ([`super::output`]), each process in its own process group and killed if the
//! thread that spawned it dies (see [`super::spawn`] and [`super::container`]). Two long-lived spawner threads do the spawning, so the
//! scheduler never waits on exec; the scheduler itself reaps the processes.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    io,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::fs::PermissionsExt,
    },
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::mpsc::UnboundedSender;

use super::{
    cgroup::AttemptGroup,
    scheduler::Input,
    spawn::{self, Program},
    state::{Settings, UnitIx},
    sys,
};

/// What the scheduler asks to start.
#[derive(Debug)]
pub(crate) struct Launch {
    pub unit: UnitIx,
    pub token: u64,
    pub command: Vec<String>,
    /// The whole environment, in order of precedence (a later entry wins).
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    /// The attempt's working directory, created empty before the start.
    pub workdir: PathBuf,
    /// The attempt's cgroup, when cgroup v2 limits are in force.
    pub cgroup: Option<AttemptGroup>,
}

/// How a start went.
#[derive(Debug)]
pub(crate) enum Spawned {
    Started {
        unit: UnitIx,
        token: u64,
        pid: u32,
        pid_start: Option<u64>,
        /// The read end of the process's stdout and stderr, and its log file
        /// (see [`super::output`]); the scheduler takes it.
        output: Option<(OwnedFd, PathBuf)>,
    },
    /// The process could not start; `reason` is `CannotStartContainerError: ...`.
    Failed { unit: UnitIx, token: u64, reason: String },
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
    pub(crate) fn from_status(status: io::Result<ExitStatus>) -> Self {
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

/// How many threads spawn processes; each waits while its child execs.
const SPAWNER_THREADS: usize = 2;

/// A pool of long-lived spawner threads. Processes get the parent-death signal
/// of the thread that spawned them, so the threads live as long as the engine.
pub(crate) struct Executor {
    queue: std::sync::mpsc::Sender<Launch>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Executor {
    /// Starts the spawner threads; each start is reported to `inputs`.
    pub(crate) fn start(settings: Arc<Settings>, inputs: UnboundedSender<Input>) -> io::Result<Executor> {
        let (queue, launches) = std::sync::mpsc::channel::<Launch>();
        let launches = Arc::new(Mutex::new(launches));
        let spawner = Arc::new(Spawner { settings, inputs });
        let threads = (0..SPAWNER_THREADS)
            .map(|i| {
                let (spawner, launches) = (spawner.clone(), launches.clone());
                std::thread::Builder::new()
                    .name(format!("batchfan-spawn-{i}"))
                    .spawn(move || spawner.serve(&launches))
            })
            .collect::<io::Result<_>>()?;
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
}

impl Spawner {
    fn serve(&self, launches: &Mutex<std::sync::mpsc::Receiver<Launch>>) {
        let mut stack = vec![0u8; spawn::CHILD_STACK];
        loop {
            let next = launches.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(launch) = next else { return };
            self.spawn(launch, &mut stack);
        }
    }

    /// Starts `launch` and reports how that went.
    fn spawn(&self, launch: Launch, stack: &mut [u8]) {
        let (unit, token) = (launch.unit, launch.token);
        let (spawned, pid) = match self.try_spawn(&launch, stack) {
            Ok((pid, output)) => {
                let pid_start = sys::proc_stat(pid).map(|st| st.start_time);
                let output = Some((output, launch.log.clone()));
                (Spawned::Started { unit, token, pid, pid_start, output }, Some(pid))
            }
            Err(reason) => (Spawned::Failed { unit, token, reason }, None),
        };
        if let (Err(_), Some(pid)) = (self.inputs.send(Input::Spawned(spawned)), pid) {
            // The engine is gone: nothing may run unsupervised.
            let _ = sys::signal_group(pid, libc::SIGKILL);
        }
    }

    /// Starts `launch`: its pid, and the read end of its output pipe.
    fn try_spawn(&self, launch: &Launch, stack: &mut [u8]) -> Result<(u32, OwnedFd), String> {
        let name = &launch.command[0];
        let cannot_start = |e: &dyn std::fmt::Display| {
            format!("CannotStartContainerError: cannot run command {name:?}: {e}")
        };
        let path = self.resolve(name)?;
        let (output, input) = sys::pipe().map_err(|e| cannot_start(&e))?;
        let stdout = above_stdio(std::fs::File::from(input)).map_err(|e| cannot_start(&e))?;
        let stderr = stdout.try_clone().map_err(|e| cannot_start(&e))?;
        let stdin = std::fs::File::open("/dev/null").and_then(above_stdio).map_err(|e| cannot_start(&e))?;
        if self.settings.isolation {
            self.settings.workdirs.prepare(&launch.workdir).map_err(|e| {
                format!(
                    "CannotStartContainerError: cannot create working directory {}: {e}",
                    launch.workdir.display()
                )
            })?;
        }
        let procs = launch.cgroup.as_ref().map(AttemptGroup::prepare).transpose().map_err(|e| {
            let e: &dyn std::error::Error = &e;
            let source = e.source().map(|s| format!(": {s}")).unwrap_or_default();
            format!("CannotStartContainerError: cannot set the attempt's limits: {e}{source}")
        })?;
        let env: BTreeMap<OsString, OsString> =
            launch.env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect();
        let program = Program::new(&path, &launch.command, env.into_iter().collect(), &launch.workdir)
            .map_err(|e| cannot_start(&e))?;
        let fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
        let procs = procs.as_ref().map(AsFd::as_fd);
        let started = match self.settings.forks.start(&program, fds, procs, stack) {
            Some(started) => started,
            None => spawn::spawn(&program, fds, procs, stack),
        };
        let pid = started.map_err(|e| {
            format!("CannotStartContainerError: cannot run command {name:?} ({}): {e}", path.display())
        })?;
        Ok((pid, output))
    }

    /// Looks `name` up like a shell: as a path when it has a '/', else in `path_dirs`.
    fn resolve(&self, name: &str) -> Result<PathBuf, String> {
        if name.contains('/') {
            return Ok(PathBuf::from(name));
        }
        self.settings.path_dirs.iter().map(|dir| dir.join(name)).find(|p| is_executable(p)).ok_or_else(|| {
            format!(
                "CannotStartContainerError: command {name:?} not found in the engine's path_prefix and the \
                 container PATH ({}): No such file or directory (os error 2); give its full path, or pass the \
                 host's PATH with pass_env",
                self.settings.child_path.to_string_lossy()
            )
        })
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `file`, moved above fds 0-2 if it sits there, so the child's redirections cannot clobber it.
fn above_stdio(file: std::fs::File) -> io::Result<std::fs::File> {
    if file.as_raw_fd() > 2 {
        Ok(file)
    } else {
        // try_clone duplicates to the lowest free fd >= 3.
        file.try_clone()
    }
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
