//! What makes an attempt's process look like a container: exactly the
//! environment a container would have, and a fresh private working directory.
//!
//! A job sees the container default `PATH` (with the engine's `path_prefix`
//! first, where batchfan's own job binaries are), `HOME` and `TMPDIR` in its
//! working directory, the host variables listed in `pass_env` (deliberately,
//! and logged), batchfan's pointers (`base_env`), the job's own environment
//! (definition and overrides), and the `AWS_BATCH_*` variables AWS documents
//! for a container job: `AWS_BATCH_CE_NAME`, `AWS_BATCH_JQ_NAME`,
//! `AWS_BATCH_JOB_ID`, `AWS_BATCH_JOB_ATTEMPT`, and for array children
//! `AWS_BATCH_JOB_ARRAY_INDEX` and `AWS_BATCH_JOB_ARRAY_SIZE`. (The
//! multi-node and EKS variables do not apply: the engine runs neither.)
//! Nothing else of the engine's environment reaches the job.
//!
//! Each attempt runs in `{state_dir}/work/{job}.{attempt}` (mode 0700),
//! created empty before the start and removed when the attempt ends, unless
//! the engine keeps working directories for debugging.

use std::{
    ffi::OsString,
    io,
    path::{Path, PathBuf},
};

use super::state::{State, UnitIx};
use crate::env;

/// Set (to anything) in the engine's environment, attempts run as before
/// isolation: with the engine's environment and working directory, no memory
/// limit. Only `batchfan-bench --isolation off` sets it, to measure what
/// isolation costs per task; it is not a user option.
pub(crate) const ISOLATION_OFF_FOR_BENCH: &str = "BATCHFAN_BENCH_ISOLATION_OFF";

/// The `PATH` of a container whose image sets none (Docker's default).
pub(crate) const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether `name` is a usable environment variable name.
pub(crate) fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `pass_env` variables set on this host (name, value), and the names that are not set.
pub(crate) fn resolve_pass_env(
    names: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut passed = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match lookup(name) {
            Some(value) => passed.push((name.clone(), value)),
            None => missing.push(name.clone()),
        }
    }
    (passed, missing)
}

/// Where `command[0]` is looked up, and the `PATH` jobs get: `path_prefix`, then
/// the host's `PATH` if `pass_env` passes it, else [`CONTAINER_PATH`].
pub(crate) fn search_path(path_prefix: &[PathBuf], passed: &[(String, String)]) -> (Vec<PathBuf>, OsString) {
    let base = passed.iter().find(|(k, _)| k == "PATH").map_or(CONTAINER_PATH, |(_, v)| v.as_str());
    let mut dirs = path_prefix.to_vec();
    dirs.extend(std::env::split_paths(base));
    let joined = std::env::join_paths(&dirs).unwrap_or_else(|_| OsString::from(base));
    (dirs, joined)
}

/// The working directory of `attempt` of `job_id` (`parent:index` for children).
pub(crate) fn workdir(state_dir: &Path, job_id: &str, attempt: u32) -> PathBuf {
    state_dir.join("work").join(format!("{}.{attempt}", job_id.replace(':', ".")))
}

/// Most empty working directories kept for re-use.
const POOL_MAX: usize = 64;

/// Empty working directories of ended attempts, renamed into `work/.free/` and
/// renamed out again for the next attempt: creating and removing a directory
/// allocates and frees a block each time, which costs milliseconds on a disk
/// mounted with `discard` — more than the engine's whole work per job. A
/// directory is re-used only when its attempt left it exactly as it was made
/// (an empty `tmp/` and nothing else, both still mode 0700), so every attempt
/// still starts empty and private.
#[derive(Debug)]
pub(crate) struct WorkdirPool {
    dir: PathBuf,
    free: std::sync::Mutex<Vec<PathBuf>>,
    next: std::sync::atomic::AtomicU64,
}

impl WorkdirPool {
    /// A pool under `{state_dir}/work/.free`.
    pub(crate) fn new(state_dir: &Path) -> Self {
        WorkdirPool {
            dir: state_dir.join("work").join(".free"),
            free: Default::default(),
            next: Default::default(),
        }
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `dir` a fresh, empty, private directory with an empty `tmp/` inside.
    pub(crate) fn prepare(&self, dir: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let pooled = self.free().pop();
        if let Some(pooled) = pooled {
            if std::fs::rename(&pooled, dir).is_ok() {
                return Ok(());
            }
            remove_workdir(&pooled);
        }
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.join("tmp"))
    }

    /// Puts an ended attempt's `dir` back in the pool if it is as it was made, else removes it.
    pub(crate) fn release(&self, dir: &Path) {
        let pristine = || -> io::Result<bool> {
            let mut entries = std::fs::read_dir(dir)?;
            let only_tmp =
                matches!(entries.next(), Some(Ok(e)) if e.file_name() == "tmp") && entries.next().is_none();
            // The same private modes, a real directory (not a link), nothing inside.
            let private = |p: &Path| -> io::Result<bool> {
                use std::os::unix::fs::PermissionsExt;
                let meta = std::fs::symlink_metadata(p)?;
                Ok(meta.is_dir() && meta.permissions().mode() & 0o7777 == 0o700)
            };
            let tmp = dir.join("tmp");
            Ok(only_tmp && private(dir)? && private(&tmp)? && std::fs::read_dir(&tmp)?.next().is_none())
        };
        if self.free().len() < POOL_MAX && pristine().unwrap_or(false) {
            let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let target = self.dir.join(n.to_string());
            let moved = std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::rename(dir, &target));
            if moved.is_ok() {
                self.free().push(target);
                return;
            }
        }
        remove_workdir(dir);
    }
}

/// Removes `dir` (an ended attempt's working directory); a failure is logged, not fatal.
pub(crate) fn remove_workdir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a job's working directory"),
    }
}

impl State {
    /// The working directory of `attempt` of `job_id`: its own, or the engine's
    /// when isolation is off for the benchmark.
    pub(crate) fn attempt_workdir(&self, job_id: &str, attempt: u32) -> PathBuf {
        match self.settings.isolation {
            true => workdir(&self.settings.state_dir, job_id, attempt),
            false => std::env::current_dir().unwrap_or_else(|_| self.settings.state_dir.clone()),
        }
    }

    /// The environment of attempt `attempt` of unit `u`, in order of precedence
    /// (a later entry wins): container defaults, passed host variables, batchfan's
    /// pointers, the job's environment, then the `AWS_BATCH_*` variables.
    pub(crate) fn container_env(
        &self,
        u: UnitIx,
        job_id: String,
        attempt: u32,
        dir: &Path,
    ) -> Vec<(String, String)> {
        let job = self.job_of(u);
        let s = &self.settings;
        let own = |(k, v): (&String, &String)| (k.clone(), v.clone());
        let mut vars = match s.isolation {
            true => vec![
                ("PATH".to_owned(), s.child_path.to_string_lossy().into_owned()),
                ("HOME".to_owned(), dir.display().to_string()),
                ("TMPDIR".to_owned(), dir.join("tmp").display().to_string()),
            ],
            // The benchmark's "before isolation": the engine's whole environment.
            false => std::env::vars().collect(),
        };
        vars.extend(s.passed_env.iter().filter(|(k, _)| k != "PATH").cloned());
        vars.extend(s.base_env.iter().map(own));
        vars.extend(job.request.container.environment.iter().map(own));
        vars.push((env::AWS_BATCH_JOB_ID.into(), job_id));
        if let Some(size) = job.size {
            vars.push((env::AWS_BATCH_JOB_ARRAY_INDEX.into(), self.unit(u).index.to_string()));
            vars.push((env::AWS_BATCH_JOB_ARRAY_SIZE.into(), size.to_string()));
        }
        vars.push((env::AWS_BATCH_JOB_ATTEMPT.into(), attempt.to_string()));
        // Placed by a capacity pool: the job's own queue and environment; else the engine's names.
        let (jq, ce) = match self.pools.placed_on(u) {
            Some(ce) => (job.queue.as_str(), ce),
            None => (s.queue_name.as_str(), s.ce_name.as_str()),
        };
        vars.push((env::AWS_BATCH_JQ_NAME.into(), jq.to_string()));
        vars.push((env::AWS_BATCH_CE_NAME.into(), ce.to_string()));
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passing() {
        assert!(is_env_name("AWS_PROFILE") && is_env_name("_x1"));
        assert!(!is_env_name("1X") && !is_env_name("A-B") && !is_env_name(""));
        let names = ["SET".to_string(), "UNSET".to_string()];
        let (passed, missing) = resolve_pass_env(&names, |n| (n == "SET").then(|| "v".to_string()));
        assert_eq!(passed, [("SET".to_string(), "v".to_string())]);
        assert_eq!(missing, ["UNSET"]);
    }

    #[test]
    fn path_is_the_container_default_unless_passed() {
        let prefix = [PathBuf::from("/opt/batchfan")];
        let (dirs, path) = search_path(&prefix, &[]);
        assert_eq!(path, OsString::from(format!("/opt/batchfan:{CONTAINER_PATH}")));
        assert_eq!(dirs[0], prefix[0]);
        let (_, path) = search_path(&prefix, &[("PATH".into(), "/host/bin".into())]);
        assert_eq!(path, OsString::from("/opt/batchfan:/host/bin"));
    }

    #[test]
    fn workdirs_are_fresh_and_per_attempt() {
        let state = tempfile::tempdir().unwrap();
        let dir = workdir(state.path(), "job:3", 2);
        assert_eq!(dir, state.path().join("work/job.3.2"));
        let pool = WorkdirPool::new(state.path());
        pool.prepare(&dir).unwrap();
        std::fs::write(dir.join("left-over"), "x").unwrap();
        pool.prepare(&dir).unwrap();
        assert!(!dir.join("left-over").exists(), "a re-used attempt directory starts empty");
        assert!(dir.join("tmp").is_dir());
        pool.release(&dir);
        assert!(!dir.exists());
        assert_eq!(pool.free().len(), 1, "an untouched directory is kept for re-use");
        let next = workdir(state.path(), "job:4", 1);
        pool.prepare(&next).unwrap();
        assert!(next.join("tmp").is_dir() && pool.free().is_empty());
        std::fs::write(next.join("tmp").join("scratch"), "x").unwrap();
        pool.release(&next);
        assert!(!next.exists() && pool.free().is_empty(), "a used one is removed, never re-used");
    }
}
