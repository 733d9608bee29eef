//! The few system calls std does not wrap (signals to process groups,
//! waiting for one child) and what the engine reads from `/proc`.
//!
//! Each `unsafe` block is one plain libc call with no pointers handed over.

use std::{io, path::Path};

/// A pipe: (read end, write end), both close-on-exec.
pub(crate) fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as std::ffi::c_int; 2];
    #[allow(unsafe_code)]
    // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])))
    }
}

/// A connected pair of Unix sockets that keep message boundaries
/// (`SOCK_SEQPACKET`), both close-on-exec.
pub(crate) fn socket_pair() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as std::ffi::c_int; 2];
    #[allow(unsafe_code)]
    // SAFETY: socketpair writes two descriptors into `fds`, which we then own.
    unsafe {
        if libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok((std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])))
    }
}

/// Sends `signal` to every process in process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    let pgid = checked_pid(pgid)?;
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes two integers and touches no memory of ours; `pgid`
    // is > 1, so this never addresses every process (-1) or our own group (0).
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to process `pid`.
pub(crate) fn signal_process(pid: u32, signal: i32) -> io::Result<()> {
    let pid = checked_pid(pid)?;
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes two integers and touches no memory of ours; `pid` > 1.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn checked_pid(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 1 => Ok(p),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to signal pid {pid}"))),
    }
}

/// Reaps child `pid` if it has exited: its raw wait status, or `None` while it runs.
pub(crate) fn try_reap(pid: u32) -> io::Result<Option<i32>> {
    let pid = checked_pid(pid)?;
    let mut status = 0;
    #[allow(unsafe_code)]
    // SAFETY: waitpid(2) writes one int into `status`, which lives across the call.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    match rc {
        0 => Ok(None),
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(Some(status)),
    }
}

/// Waits for child `pid` to exit and reaps it.
pub(crate) fn wait_blocking(pid: u32) -> io::Result<i32> {
    let pid = checked_pid(pid)?;
    let mut status = 0;
    loop {
        #[allow(unsafe_code)]
        // SAFETY: waitpid(2) writes one int into `status`, which lives across the call.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc != -1 {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Single-letter state (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// Process group id.
    pub pgid: u32,
    /// Start time in clock ticks after boot: with the pid, identifies the process.
    pub start_time: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist.
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/PID/stat` line; the command name may hold spaces and ')'.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the line, pgrp field 5, starttime field 22, rss field 24.
    Some(ProcStat {
        state: *fields.first()?.as_bytes().first()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
        rss_pages: fields.get(21)?.parse().ok()?,
    })
}

/// Whether `pid` is still the process that started at `start_time` and has not exited.
pub(crate) fn alive(pid: u32, start_time: u64) -> bool {
    proc_stat(pid).is_some_and(|st| st.start_time == start_time && st.state != b'Z' && st.state != b'X')
}

/// The value of `name` in `/proc/PID/environ`, if readable.
pub(crate) fn environ_var(pid: u32, name: &str) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    bytes.split(|b| *b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        String::from_utf8(value.to_vec()).ok()
    })
}

/// Every pid in `/proc`.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// The size of a memory page in bytes (4096 when the system does not say).
pub(crate) fn page_size() -> u64 {
    #[allow(unsafe_code)]
    // SAFETY: sysconf(3) takes an integer and touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// `MemTotal` from `/proc/meminfo`, in MiB.
pub(crate) fn mem_total_mib() -> Option<u64> {
    let text = std::fs::read_to_string(Path::new("/proc/meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let st = parse_stat(line).unwrap();
        assert_eq!(st, ProcStat { state: b'S', pgid: 4242, start_time: 987654, rss_pages: 10 });
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let st = proc_stat(me).unwrap();
        assert!(alive(me, st.start_time));
        assert!(!alive(me, st.start_time + 1), "another start time is another process");
        assert!(environ_var(me, "BATCHFAN_SURELY_UNSET_VAR").is_none());
        assert!(all_pids().contains(&me));
    }

    #[test]
    fn refuses_to_signal_everyone() {
        assert!(signal_group(1, 0).is_err());
        assert!(signal_group(0, 0).is_err());
        assert!(signal_process(u32::MAX, 0).is_err());
    }
}
