//! Memory and CPU limits by cgroup v2, where the engine may create cgroups.
//!
//! At open, the engine looks for the cgroup v2 group it runs in (the
//! `cgroup2` mount from `/proc/self/mountinfo` joined with the `0::` line of
//! `/proc/self/cgroup`). If that group offers the `memory` and `cpu`
//! controllers and the engine can create a child group in it with both
//! enabled, each attempt then runs in its own group
//! `{root}/batchfan-{pid}/{job}.{attempt}` with `memory.max` = the job's
//! `memory`, `memory.swap.max` = 0, `memory.oom.group` = 1 (the kernel kills
//! the whole container, as on AWS) and `cpu.max` = the job's `vcpus` as a
//! quota per 100 ms period. The child process moves itself into the group
//! before `execve` (see [`super::spawn`]), so nothing of the job runs
//! outside it. An attempt whose group records an `oom_kill` ends with exit
//! 137 and AWS's `OutOfMemoryError` reason, like the watchdog's.
//!
//! Otherwise (no cgroup v2, the controllers not delegated, no write access)
//! memory is enforced by the engine's watchdog ([`super::memory`]) and vCPUs
//! are not enforced; the engine says once, at open, which is in force.
//!
//! Every function takes the cgroup root as a parameter, so the selection and
//! the files written are tested against a directory standing in for it.

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
};

use super::state::{State, UnitIx};

/// The CPU period written to `cpu.max`, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts, in microseconds.
const CPU_MIN_QUOTA_US: u64 = 1_000;

/// Why cgroup v2 limits cannot be used on this host.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CgroupError {
    /// No `cgroup2` filesystem is mounted, or this process's group in it is unknown.
    #[error("no cgroup v2 group found for this process (no cgroup2 mount in /proc/self/mountinfo)")]
    NotMounted,
    /// The group does not offer a controller the limits need.
    #[error("cgroup v2 group {root} does not offer the {missing} controller (it offers: {offered})")]
    Missing { root: PathBuf, missing: &'static str, offered: String },
    /// A cgroup file or directory could not be read, written or made.
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io { action, path: path.to_path_buf(), source }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io_err("write", path))
}

/// The cgroup v2 group of this process, from `/proc/self/mountinfo` and `/proc/self/cgroup`.
pub(crate) fn own_group() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    group_of(&mountinfo, &cgroup)
}

/// Where `0::PATH` of `cgroup` lies under the `cgroup2` mount of `mountinfo`.
pub(crate) fn group_of(mountinfo: &str, cgroup: &str) -> Option<PathBuf> {
    let mount = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4))?
    })?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new(mount).join(path.trim_start_matches('/')))
}

/// The group one attempt runs in, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttemptGroup {
    pub dir: PathBuf,
    pub memory_mib: u64,
    /// The job's vCPUs in milli-vCPUs.
    pub mcpu: u64,
}

/// The engine's own group under a cgroup v2 root, in which each attempt gets a group.
#[derive(Debug)]
pub(crate) struct Cgroups {
    dir: PathBuf,
}

impl Cgroups {
    /// Creates `{root}/{name}` with the `memory` and `cpu` controllers enabled for
    /// its children, if `root` offers them and lets the engine write.
    pub(crate) fn open(root: &Path, name: &str) -> Result<Cgroups, CgroupError> {
        let controllers = root.join("cgroup.controllers");
        let offered = std::fs::read_to_string(&controllers).map_err(io_err("read", &controllers))?;
        for missing in ["memory", "cpu"] {
            if !offered.split_whitespace().any(|c| c == missing) {
                let offered = offered.trim().to_owned();
                return Err(CgroupError::Missing { root: root.to_path_buf(), missing, offered });
            }
        }
        let enable = |dir: &Path| -> Result<(), CgroupError> {
            let control = dir.join("cgroup.subtree_control");
            let now = std::fs::read_to_string(&control).map_err(io_err("read", &control))?;
            if ["memory", "cpu"].iter().all(|c| now.split_whitespace().any(|x| x == *c)) {
                return Ok(());
            }
            write(&control, "+memory +cpu")
        };
        enable(root)?;
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err("create", &dir)(e)),
            _ => {}
        }
        enable(&dir)?;
        Ok(Cgroups { dir })
    }

    /// The group of `attempt` of `job_id` (`parent:index` for children).
    pub(crate) fn attempt_dir(&self, job_id: &str, attempt: u32) -> PathBuf {
        self.dir.join(format!("{}.{attempt}", job_id.replace(':', ".")))
    }
}

impl AttemptGroup {
    /// Creates the attempt's group with its limits; returns its `cgroup.procs`,
    /// open for writing (close-on-exec), for the child to move itself in.
    pub(crate) fn prepare(&self) -> Result<File, CgroupError> {
        let AttemptGroup { dir, memory_mib, mcpu } = self;
        let (dir, memory_mib, mcpu) = (dir.as_path(), *memory_mib, *mcpu);
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err("create", dir)(e)),
            _ => {}
        }
        write(&dir.join("memory.max"), &memory_mib.saturating_mul(1024 * 1024).to_string())?;
        // Absent without swap accounting: then there is no swap to forbid.
        match std::fs::write(dir.join("memory.swap.max"), "0") {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("write", &dir.join("memory.swap.max"))(e))
            }
            _ => {}
        }
        write(&dir.join("memory.oom.group"), "1")?;
        write(&dir.join("cpu.max"), &cpu_max(mcpu))?;
        let procs = dir.join("cgroup.procs");
        std::fs::OpenOptions::new().write(true).open(&procs).map_err(io_err("open", &procs))
    }
}

impl Cgroups {
    /// Removes the engine's group (empty once every attempt's group is removed).
    pub(crate) fn close(&self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `cpu.max` for `mcpu` milli-vCPUs: the quota per [`CPU_PERIOD_US`].
pub(crate) fn cpu_max(mcpu: u64) -> String {
    let quota = (mcpu.saturating_mul(CPU_PERIOD_US) / 1000).max(CPU_MIN_QUOTA_US);
    format!("{quota} {CPU_PERIOD_US}")
}

/// Whether the kernel killed a process of the group at `dir` for its memory
/// (`oom_kill` in `memory.events`).
pub(crate) fn oom_killed(dir: &Path) -> bool {
    let Ok(events) = std::fs::read_to_string(dir.join("memory.events")) else { return false };
    events
        .lines()
        .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim().parse::<u64>().unwrap_or(0) > 0))
}

/// Removes an ended attempt's group, killing what is left in it first (a
/// process the job left behind, as a container's end would); failures are logged.
pub(crate) fn remove(dir: &Path) {
    if std::fs::remove_dir(dir).is_ok() {
        return;
    }
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    tracing::warn!(dir = %dir.display(), "cannot remove an ended attempt's cgroup");
}

/// `e` and its sources, joined by `: `.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Which limits are in force, chosen once at open.
#[derive(Debug)]
pub(crate) enum Limits {
    /// Each attempt in its own cgroup v2 group: `memory.max` and `cpu.max`.
    Cgroup(Cgroups),
    /// The engine's memory watchdog; vCPUs not enforced. Holds why not cgroup.
    Watchdog(String),
}

impl Limits {
    /// cgroup v2 under `root` if the engine can use it there, else the watchdog.
    pub(crate) fn select(root: Option<&Path>, name: &str) -> Limits {
        let Some(root) = root else { return Limits::Watchdog(CgroupError::NotMounted.to_string()) };
        match Cgroups::open(root, name) {
            Ok(groups) => Limits::Cgroup(groups),
            Err(e) => Limits::Watchdog(with_sources(&e)),
        }
    }

    /// The one line the engine logs at open about memory and CPU.
    pub(crate) fn describe(&self) -> String {
        match self {
            Limits::Cgroup(groups) => format!(
                "memory: cgroup v2 memory.max (the kernel kills the job: exit 137, OutOfMemoryError), \
                 cpu: cgroup v2 cpu.max from vcpus; a group per attempt under {}",
                groups.dir.display()
            ),
            Limits::Watchdog(why) => format!(
                "memory: watchdog (the job's process group is killed, exit 137, OutOfMemoryError, when its \
                 resident memory exceeds the job's memory, checked every 100 ms), cpu: not enforced (vcpus \
                 only reserve capacity); no usable cgroup v2: {why}"
            ),
        }
    }

    /// The attempt groups, when cgroup v2 is in force.
    pub(crate) fn cgroups(&self) -> Option<&Cgroups> {
        match self {
            Limits::Cgroup(groups) => Some(groups),
            Limits::Watchdog(_) => None,
        }
    }
}

impl State {
    /// The cgroup of `attempt` of unit `u`, when cgroup v2 limits are in force.
    pub(crate) fn attempt_group(&self, u: UnitIx, job_id: &str, attempt: u32) -> Option<AttemptGroup> {
        let groups = self.settings.limits.cgroups().filter(|_| self.settings.isolation)?;
        let job = self.job_of(u);
        Some(AttemptGroup { dir: groups.attempt_dir(job_id, attempt), memory_mib: job.mem, mcpu: job.mcpu })
    }

    /// Removes the cgroup of unit `u`'s ended attempt; whether the kernel OOM-killed in it.
    pub(crate) fn end_cgroup(&self, u: UnitIx, attempt: u32) -> bool {
        let Some(group) = self.attempt_group(u, &self.unit_id(u), attempt) else { return false };
        let killed = oom_killed(&group.dir);
        remove(&group.dir);
        killed
    }
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
