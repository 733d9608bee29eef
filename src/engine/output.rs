//! An attempt's stdout and stderr: a pipe the engine reads, as a container
//! runtime reads a container's, appending what comes to the attempt's log
//! file — created only when the first bytes arrive. An attempt that prints
//! nothing has no log file (readers take a missing log as an empty one), so
//! a one-item child costs the filesystem no new file: on a disk that must
//! look past recently deleted inodes to allocate one (ext4 without a
//! journal, after a run's state was removed), creating it took longer than
//! the child's own work.
//!
//! The engine records an attempt's end only once its pipe is drained (every
//! writer, the attempt's processes, has closed it), or [`DRAIN_WAIT`] after
//! its main process exited if a process outside the attempt's group still
//! holds it: so its log is complete when its status says it ended.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{io::AsyncReadExt, sync::mpsc::UnboundedSender};

use super::scheduler::Input;

/// How long an exited attempt waits for its output pipe to close.
pub(crate) const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Copies what comes out of `output` (the read end of process `pid`'s pipe)
/// to the log file `log`, creating it at the first bytes; then tells the
/// scheduler the pipe is drained.
pub(crate) async fn pump(output: OwnedFd, log: PathBuf, pid: u32, done: UnboundedSender<Input>) {
    let mut file: Option<File> = None;
    let mut failed = false;
    match tokio::net::unix::pipe::Receiver::from_owned_fd(output) {
        Ok(mut pipe) => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match pipe.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(log = %log.display(), error = %e, "cannot read a job's output");
                        break;
                    }
                };
                if failed {
                    continue;
                }
                if let Err(e) = append(&mut file, &log, &buf[..n]) {
                    // Keep draining, so the job never blocks on a full pipe.
                    tracing::warn!(log = %log.display(), error = %e, "cannot write a job's log; dropping its output");
                    failed = true;
                }
            }
        }
        Err(e) => tracing::warn!(log = %log.display(), error = %e, "cannot read a job's output"),
    }
    let _ = done.send(Input::Drained(pid));
}

fn append(file: &mut Option<File>, log: &Path, bytes: &[u8]) -> io::Result<()> {
    if file.is_none() {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        *file = Some(OpenOptions::new().create(true).append(true).open(log)?);
    }
    match file {
        Some(f) => f.write_all(bytes),
        None => Ok(()),
    }
}
