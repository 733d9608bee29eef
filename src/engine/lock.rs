//! `{state_dir}/engine.lock`: an exclusive `flock` so two engines never share a
//! state directory. The file records the holder's pid for the error message.
//!
//! A process that forks (any thread spawning a child) briefly shares every open
//! file with the child until it execs, so a lock just released by this process
//! can look held for a moment. Engines open in this process are therefore also
//! tracked here, and a lock that names this process but belongs to no open
//! engine is waited for briefly.

use std::{
    collections::BTreeSet,
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use super::EngineError;

/// State directories of the engines open in this process.
static OPEN_HERE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
/// How long a lock left by a fork of this process is waited for.
const FORK_WAIT: Duration = Duration::from_secs(2);

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
    key: PathBuf,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        OPEN_HERE.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}

impl StateLock {
    /// Takes the lock on `state_dir` (which must exist) without waiting for another engine.
    pub(crate) fn acquire(state_dir: &Path) -> Result<StateLock, EngineError> {
        let path = state_dir.join("engine.lock");
        let io_err = |action, source| EngineError::Io { action, path: path.clone(), source };
        let key = state_dir.canonicalize().map_err(|e| io_err("resolve the state directory of", e))?;
        let me = std::process::id().to_string();
        let locked = |pid: String| EngineError::Locked { dir: state_dir.to_path_buf(), pid };
        let mut open_here = OPEN_HERE.lock().unwrap_or_else(PoisonError::into_inner);
        if open_here.contains(&key) {
            return Err(locked(me));
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err("open the lock file", e))?;
        let since = Instant::now();
        // std's exclusive lock is flock(2) on Linux, as flock(1) takes it.
        while let Err(e) = file.try_lock() {
            if let TryLockError::Error(e) = e {
                return Err(io_err("lock", e));
            }
            let mut holder = String::new();
            file.seek(SeekFrom::Start(0)).map_err(|e| io_err("read the lock file", e))?;
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim().to_string();
            if !waits_for(&holder, &me, since.elapsed()) {
                return Err(locked(if holder.is_empty() { "unknown".into() } else { holder }));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        file.set_len(0).map_err(|e| io_err("write the lock file", e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io_err("write the lock file", e))?;
        writeln!(file, "{me}").map_err(|e| io_err("write the lock file", e))?;
        open_here.insert(key.clone());
        Ok(StateLock { _file: file, key })
    }
}

/// Whether a lock held by `holder` is waited for, `waited` into the wait: only
/// this process's own (a fork's brief copy of it), and only for [`FORK_WAIT`].
fn waits_for(holder: &str, me: &str, waited: Duration) -> bool {
    holder == me && waited <= FORK_WAIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder_and_first_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert!(msg.contains("use another --state directory"), "{msg}");
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_lock_held_by_another_process_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("engine.lock"), "4242\n").unwrap();
        // --no-fork: flock execs sleep itself, so the guard's kill ends the holder
        // (a forked sleep would outlive the test, holding its output open).
        let holder = std::process::Command::new("flock")
            .arg("--no-fork")
            .arg(dir.path().join("engine.lock"))
            .args(["sleep", "10"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let _holder = Guard(holder);
        let started = Instant::now();
        let err = loop {
            match StateLock::acquire(dir.path()) {
                Err(e) => break e,
                // flock(1) may not hold it yet: undo and try again.
                Ok(lock) => {
                    drop(lock);
                    std::fs::write(dir.path().join("engine.lock"), "4242\n").unwrap();
                }
            }
            assert!(started.elapsed() < Duration::from_secs(10), "flock never took the lock");
        };
        assert!(err.to_string().contains("process 4242"), "{err}");
    }

    #[test]
    fn only_this_process_s_own_lock_is_waited_for_and_only_briefly() {
        assert!(!waits_for("4242", "17", Duration::ZERO), "another process's lock is refused at once");
        assert!(!waits_for("", "17", Duration::ZERO), "an unnamed holder is refused at once");
        assert!(waits_for("17", "17", Duration::ZERO), "a fork's copy of this process's lock is waited for");
        assert!(!waits_for("17", "17", FORK_WAIT + Duration::from_millis(1)), "but not past FORK_WAIT");
    }

    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
