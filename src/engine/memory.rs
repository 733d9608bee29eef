//! The `memory` limit of a job, enforced as a container's would be: when the
//! resident memory of an attempt's process group goes over the job's
//! `memory`, the whole group is killed with SIGKILL, and the attempt ends
//! with exit code 137 and AWS's reason `OutOfMemoryError: Container killed
//! due to memory usage` (which the retry rules see as `onReason`).
//!
//! This is the fallback: where the engine can create cgroup v2 groups with
//! the memory controller, the kernel enforces `memory.max` instead (see
//! [`super::cgroup`]) and no sweep runs.
//!
//! How: while attempts run, one sweep every [`SWEEP_EVERY`] reads
//! `/proc/*/stat` once to find each attempt's process group, and sums what
//! its processes hold that the kernel cannot reclaim: anonymous and shared
//! memory (`RssAnon` + `RssShmem` of `/proc/PID/status`). Pages of mapped
//! files (the program itself, libraries, a read-only data file) are
//! reclaimable and never make a container's OOM killer fire, so they do not
//! count: a 160 MiB debug binary counted by its resident pages went over a
//! 64 MiB limit while holding 3 MiB of its own. Not
//! `RLIMIT_AS`/`RLIMIT_DATA`: they limit address space
//! rather than memory (allocators that reserve address space fail at once,
//! and a program over the limit sees a failed allocation and exits its own
//! way, not with AWS's 137). What differs from a cgroup: memory is sampled
//! (a spike shorter than a sweep is not seen), page cache is not counted,
//! and a process that leaves its process group is not followed. With the
//! watchdog, vCPUs are
//! not enforced: `vcpus` only reserves capacity.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::{
    state::{State, Stop, Timer, TimerKind},
    sys,
};

/// How often running attempts' memory is measured.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// `attempts[].container.reason` of an attempt killed for its memory, as AWS writes it.
pub(crate) const OUT_OF_MEMORY: &str = "OutOfMemoryError: Container killed due to memory usage";

/// Unreclaimable resident bytes per process group, for the groups in
/// `groups`, from one pass over `/proc`.
pub(crate) fn group_usage(groups: &HashMap<u32, u64>) -> HashMap<u32, u64> {
    let page = sys::page_size();
    let mut usage: HashMap<u32, u64> = HashMap::new();
    for pid in sys::all_pids() {
        let Some(stat) = sys::proc_stat(pid) else { continue };
        if groups.contains_key(&stat.pgid) && stat.state != b'Z' {
            // A process gone between the two reads holds nothing; one whose status
            // cannot be parsed is counted by all its resident pages.
            let held = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
                Ok(status) => unreclaimable(&status).unwrap_or(stat.rss_pages * page),
                Err(_) => 0,
            };
            *usage.entry(stat.pgid).or_default() += held;
        }
    }
    usage
}

/// `RssAnon` + `RssShmem` of a `/proc/PID/status` text, in bytes.
fn unreclaimable(status: &str) -> Option<u64> {
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        line[field.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((kib("RssAnon:")? + kib("RssShmem:")?) * 1024)
}

impl State {
    /// Schedules the next sweep unless one is pending.
    /// Not needed when cgroup v2 limits are in force (the kernel enforces them).
    pub(crate) fn arm_memory_sweep(&mut self) {
        let watchdog = self.settings.isolation && self.settings.limits.cgroups().is_none();
        if watchdog && !self.memory_sweep_armed {
            self.memory_sweep_armed = true;
            let at = Instant::now() + SWEEP_EVERY;
            self.add_timer(Timer { at, unit: 0, token: 0, kind: TimerKind::MemorySweep });
        }
    }

    /// Measures every running attempt and kills those over their job's memory;
    /// re-arms while any attempt runs.
    pub(crate) fn sweep_memory(&mut self) {
        self.memory_sweep_armed = false;
        let mut limits: HashMap<u32, u64> = HashMap::new();
        let mut units = HashMap::new();
        for &u in &self.active {
            let Some(run) = self.unit(u).run.as_deref() else { continue };
            let Some(pid) = run.pid.filter(|_| run.stop != Some(Stop::OutOfMemory)) else { continue };
            limits.insert(pid, self.job_of(u).mem.saturating_mul(1024 * 1024));
            units.insert(pid, u);
        }
        if limits.is_empty() {
            return;
        }
        for (pgid, used) in group_usage(&limits) {
            let limit = limits[&pgid];
            if used > limit {
                let u = units[&pgid];
                tracing::warn!(
                    job_id = %self.unit_id(u),
                    used_mib = used / (1024 * 1024),
                    limit_mib = limit / (1024 * 1024),
                    "job over its memory: killed"
                );
                if let Some(run) = self.unit_mut(u).run.as_deref_mut() {
                    // The OOM killer wins over a pending timeout or terminate: it is what ends the process.
                    run.stop = Some(Stop::OutOfMemory);
                }
                let _ = sys::signal_group(pgid, libc::SIGKILL);
            }
        }
        self.arm_memory_sweep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_process_group() {
        let me = std::process::id();
        let own_group = sys::proc_stat(me).unwrap().pgid;
        let usage = group_usage(&HashMap::from([(own_group, 0)]));
        assert!(usage[&own_group] > 1024 * 1024, "this test process holds more than 1 MiB: {usage:?}");
        assert!(group_usage(&HashMap::from([(u32::MAX, 0)])).is_empty());
    }

    // Regression: `batchfan job exec` of a debug build (a 160 MiB binary) was
    // killed under `memory = 64` for the binary's own resident pages.
    #[test]
    fn pages_of_a_mapped_file_do_not_count_and_anonymous_memory_does() {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, vec![7u8; 96 << 20]).unwrap();
        let script = "import mmap, sys\n\
             f = open(sys.argv[1], 'rb')\n\
             m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n\
             total = sum(m[i] for i in range(0, len(m), 4096))\n\
             held = bytearray(int(sys.argv[2]) << 20)\n\
             print(total, flush=True)\n\
             sys.stdin.read()\n";
        let measure = |anon_mib: u64| {
            let mut child = std::process::Command::new("python3")
                .args(["-c", script, data.to_str().unwrap(), &anon_mib.to_string()])
                .process_group(0)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3 runs");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            assert_eq!(line.trim(), (96u64 * 256 * 7).to_string(), "every page of the file was read");
            let pid = child.id();
            let resident = sys::proc_stat(pid).unwrap().rss_pages * sys::page_size();
            let held = group_usage(&HashMap::from([(pid, 0)]))[&pid];
            drop(child.stdin.take());
            child.wait().unwrap();
            (resident >> 20, held >> 20)
        };
        let (resident, held) = measure(0);
        assert!(resident >= 96, "the file's pages are resident: {resident} MiB");
        assert!(held < 32, "but they are not held: {held} MiB");
        let (_, held) = measure(64);
        assert!((64..96).contains(&held), "64 MiB of anonymous memory is: {held} MiB");
    }
}
