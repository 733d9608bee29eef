//! Fork servers: array children started by forking a process that has
//! already started, instead of an `execve` of the job binary per child.
//!
//! **Why.** On a virtual machine, a program linked with glibc spends about
//! 0.5 ms of CPU before `main`: glibc's start-up probes the CPU with some 80
//! `cpuid` instructions, and each one traps to the hypervisor (6 µs each on
//! the machine the benchmark runs on). Add the dynamic loader and the job
//! runtime's own set-up, and with one process per work item, starting the job
//! binary was half of what a child cost.
//!
//! **How.** A Rust job built on [`crate::runtime::run_job`] carries a marker
//! section ([`MARKER_SECTION`], checked in the ELF headers by [`elf`]). When
//! the engine starts the same program a second time — same binary (path,
//! inode, mtime), arguments, and environment apart from the per-attempt
//! variables — it starts it once more as a *fork server*: with
//! [`SERVER_FLAG`]`=1`, a socket as stdin, and the environment without
//! batchfan's pointers (`BATCHFAN_*`, `AWS_BATCH_*`, `HOME`, `TMPDIR`), so
//! that a binary which does not serve cannot do a run's work. After the
//! server's hello, each start of that program is a message: the attempt's
//! working directory and whole environment, with its stdin, stdout, stderr
//! and cgroup as descriptors. The server forks with `CLONE_PARENT` (the child
//! is the engine's child, reaped like any other), the child sets itself up as
//! [`super::spawn`] sets up a process before `execve` (see [`job`]) and the
//! job runs from [`crate::runtime::run_job`] on.
//!
//! **What a job sees.** Each child is still a process of its own: its own pid,
//! process group, working directory, environment, descriptors, cgroup and
//! memory (a copy of the server's, taken before any job code ran). Two things
//! differ from an exec: code in `main` before `run_job` ran once, in the
//! server, without batchfan's variables; and `/proc/PID/environ` shows the
//! server's environment (the process's own `environ` is the attempt's).
//!
//! **Failures.** A program without the marker, a server that does not say
//! hello within [`START_TIMEOUT`], a broken socket or a late answer: the
//! program is started with exec from then on, for the engine's life. A
//! failed fork falls back to exec for that one start. A child whose set-up
//! fails is reported as exec's failures are (`CannotStartContainerError`).
//! At most [`MAX_SERVERS`] run; one unused for [`IDLE_STOP`] is stopped, and
//! all of them die with the engine (their parent-death signal).
//! `BATCHFAN_FORK_SERVERS=off` in the engine's environment turns them off.

pub(crate) mod elf;
pub(crate) mod job;

use std::{
    collections::HashSet,
    ffi::{c_void, CString},
    io,
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
        unix::{ffi::OsStrExt, fs::MetadataExt},
    },
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use super::{
    spawn::{self, Program},
    sys,
};

/// The section a fork-server-capable binary carries ([`job`] defines it).
pub(crate) const MARKER_SECTION: &str = ".batchfan.fork_server";
/// Its contents, and the server's hello: the protocol's name and version.
pub(crate) const MARKER: &[u8; 24] = b"batchfan fork server v1\0";
/// Set to `1` in a fork server's environment.
pub(crate) const SERVER_FLAG: &str = "BATCHFAN_FORK_SERVER";
/// `off` in the engine's environment: every start is an exec.
pub(crate) const SWITCH: &str = "BATCHFAN_FORK_SERVERS";
/// Largest launch message: a bigger environment is started with exec.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// How long a new server may take to say hello.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to answer a launch.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most servers kept; the least recently used one is stopped for a new one.
const MAX_SERVERS: usize = 8;
/// A server unused this long is stopped (at the next start of any program).
const IDLE_STOP: Duration = Duration::from_secs(60);
/// Most programs remembered as started once (then forgotten all at once).
const MAX_SEEN: usize = 4096;

/// Variables that differ between attempts of one program, or point at a run:
/// not in a server's environment, nor in what identifies its program.
fn per_attempt(entry: &[u8]) -> bool {
    let name = entry.split(|&b| b == b'=').next().unwrap_or_default();
    name == b"HOME" || name == b"TMPDIR" || name.starts_with(b"AWS_BATCH_") || name.starts_with(b"BATCHFAN_")
}

/// A server's answer to a launch: the child's pid (-1: no fork), and the
/// errno of the step that failed (0: started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    pub pid: libc::pid_t,
    pub errno: i32,
}

impl Reply {
    pub(crate) fn encode(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&self.pid.to_le_bytes());
        out[4..].copy_from_slice(&self.errno.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Reply> {
        let pid = i32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
        let errno = i32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
        (bytes.len() == 8).then_some(Reply { pid, errno })
    }
}

/// What identifies a program for a server: the same server starts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    path: CString,
    /// Device, inode, mtime (s, ns) and size of the binary: a rebuilt binary is another program.
    binary: (u64, u64, i64, i64, u64),
    argv: Vec<CString>,
    /// The environment without the per-attempt variables.
    env: Vec<CString>,
}

impl Key {
    fn of(program: &Program) -> io::Result<Key> {
        let meta = std::fs::metadata(Path::new(std::ffi::OsStr::from_bytes(program.path.as_bytes())))?;
        Ok(Key {
            path: program.path.clone(),
            binary: (meta.dev(), meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size()),
            argv: program.argv.clone(),
            env: program.envp.iter().filter(|e| !per_attempt(e.as_bytes())).cloned().collect(),
        })
    }
}

/// A running server: the engine's end of its socket.
#[derive(Debug)]
struct Server {
    socket: OwnedFd,
    pid: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        // No launch is in flight (we own the server): only the server is in its group.
        let _ = sys::signal_group(self.pid, libc::SIGKILL);
        let _ = sys::wait_blocking(self.pid);
    }
}

#[derive(Debug, Default)]
struct Registry {
    /// Programs started once by exec: the next start gets a server.
    seen: HashSet<Key>,
    /// Programs that are always started by exec.
    refused: HashSet<Key>,
    /// Running servers and when each was last used, least recently used first.
    servers: Vec<(Key, Arc<Mutex<Server>>, Instant)>,
}

/// The engine's fork servers, shared by the spawner threads.
#[derive(Debug)]
pub(crate) struct ForkServers {
    enabled: bool,
    registry: Mutex<Registry>,
    /// Processes started by a fork server.
    forked: AtomicU64,
    /// How long an unused server lives ([`IDLE_STOP`]).
    idle_stop: Duration,
}

/// How [`ForkServers::start`] went when it did not start the process.
enum Fallback {
    /// Start this one by exec; the server may serve the next.
    Once,
    /// The server failed: start this program by exec from now on.
    Always(String),
}

impl ForkServers {
    /// Fork servers on or off (`BATCHFAN_FORK_SERVERS=off`).
    pub(crate) fn new(enabled: bool) -> Self {
        ForkServers { enabled, registry: Mutex::default(), forked: AtomicU64::new(0), idle_stop: IDLE_STOP }
    }

    /// How many processes fork servers have started.
    pub(crate) fn forked(&self) -> u64 {
        self.forked.load(Ordering::Relaxed)
    }

    /// Whether the engine's environment turns fork servers off.
    pub(crate) fn switched_off() -> bool {
        std::env::var_os(SWITCH).is_some_and(|v| v == "off")
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `program` through a fork server, as [`spawn::spawn`] would start
    /// it: `None` when it must be started by exec instead. `stack` is what
    /// `spawn` needs to start a server.
    pub(crate) fn start(
        &self,
        program: &Program,
        fds: [BorrowedFd<'_>; 3],
        cgroup_procs: Option<BorrowedFd<'_>>,
        stack: &mut [u8],
    ) -> Option<io::Result<u32>> {
        if !self.enabled || !program.path.as_bytes().starts_with(b"/") {
            return None;
        }
        let key = Key::of(program).ok()?;
        let server = self.server_for(&key, program, stack)?;
        let outcome = {
            let server = server.lock().unwrap_or_else(PoisonError::into_inner);
            launch(&server, program, fds, cgroup_procs)
        };
        match outcome {
            Ok(started) => {
                if started.is_ok() {
                    self.forked.fetch_add(1, Ordering::Relaxed);
                }
                Some(started)
            }
            Err(Fallback::Once) => None,
            Err(Fallback::Always(why)) => {
                tracing::warn!(program = %program.path.to_string_lossy(), %why, "fork server failed; starting this program with exec from now on");
                self.refuse(&key);
                None
            }
        }
    }

    /// The running server for `key`, starting one on the program's second start.
    fn server_for(&self, key: &Key, program: &Program, stack: &mut [u8]) -> Option<Arc<Mutex<Server>>> {
        let mut registry = self.registry();
        let now = Instant::now();
        registry.servers.retain(|(_, _, used)| now.duration_since(*used) < self.idle_stop);
        if registry.refused.contains(key) {
            return None;
        }
        if let Some(i) = registry.servers.iter().position(|(k, _, _)| k == key) {
            let (key, server, _) = registry.servers.remove(i);
            registry.servers.push((key, server.clone(), now));
            return Some(server);
        }
        if registry.seen.len() >= MAX_SEEN {
            registry.seen.clear();
        }
        if registry.seen.insert(key.clone()) {
            return None;
        }
        let started = if elf::has_marker(Path::new(std::ffi::OsStr::from_bytes(key.path.as_bytes()))) {
            start_server(key, program, stack)
        } else {
            Err("the program has no fork-server marker (it is not a batchfan Rust job)".into())
        };
        match started {
            Ok(server) => {
                let server = Arc::new(Mutex::new(server));
                if registry.servers.len() >= MAX_SERVERS {
                    registry.servers.remove(0);
                }
                registry.servers.push((key.clone(), server.clone(), now));
                Some(server)
            }
            Err(why) => {
                tracing::debug!(program = %key.path.to_string_lossy(), %why, "no fork server; starting with exec");
                registry.refused.insert(key.clone());
                None
            }
        }
    }

    fn refuse(&self, key: &Key) {
        let mut registry = self.registry();
        registry.servers.retain(|(k, _, _)| k != key);
        registry.refused.insert(key.clone());
    }

    /// How many servers run (for tests).
    #[cfg(test)]
    fn running(&self) -> usize {
        self.registry().servers.len()
    }
}

/// Starts the program of `key` as a fork server and waits for its hello.
fn start_server(key: &Key, program: &Program, stack: &mut [u8]) -> Result<Server, String> {
    let (ours, theirs) = sys::socket_pair().map_err(|e| format!("socketpair: {e}"))?;
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let mut env = key.env.clone();
    env.push(CString::new(format!("{SERVER_FLAG}=1")).unwrap_or_default());
    let cwd = CString::new("/").unwrap_or_default();
    let server_program = program.with_env(env, cwd);
    let fds = [theirs.as_fd(), null.as_fd(), null.as_fd()];
    let pid = spawn::spawn(&server_program, fds, None, stack).map_err(|e| format!("cannot start it: {e}"))?;
    drop(theirs);
    let server = Server { socket: ours, pid };
    set_timeout(&server.socket, START_TIMEOUT).map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    let mut hello = [0u8; 64];
    match recv_message(server.socket.as_raw_fd(), &mut hello) {
        Ok(Some((n, fds))) if hello[..n] == MARKER[..] && fds.is_empty() => {}
        Ok(Some(_)) => return Err("it answered something other than the hello".into()),
        Ok(None) => return Err("it exited before its hello".into()),
        Err(e) => return Err(format!("no hello: {e}")),
    }
    set_timeout(&server.socket, REPLY_TIMEOUT).map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    Ok(server)
}

/// Asks `server` to start `program` with `fds` (and the cgroup's `cgroup.procs`).
fn launch(
    server: &Server,
    program: &Program,
    fds: [BorrowedFd<'_>; 3],
    cgroup_procs: Option<BorrowedFd<'_>>,
) -> Result<io::Result<u32>, Fallback> {
    let mut message = program.cwd.as_bytes().to_vec();
    message.push(0);
    for entry in &program.envp {
        message.extend_from_slice(entry.as_bytes());
        message.push(0);
    }
    if message.len() > MAX_MESSAGE {
        return Err(Fallback::Once);
    }
    let mut send_fds: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    send_fds.extend(cgroup_procs.map(|fd| fd.as_raw_fd()));
    send_message(server.socket.as_raw_fd(), &message, &send_fds)
        .map_err(|e| Fallback::Always(format!("cannot send it a launch: {e}")))?;
    let mut answer = [0u8; 16];
    let reply = match recv_message(server.socket.as_raw_fd(), &mut answer) {
        Ok(Some((n, fds))) if fds.is_empty() => Reply::decode(&answer[..n]),
        Ok(Some(_)) => None,
        Ok(None) => return Err(Fallback::Always("it exited".into())),
        Err(e) => return Err(Fallback::Always(format!("no answer: {e}"))),
    };
    let Some(reply) = reply else {
        return Err(Fallback::Always("it answered something other than a pid".into()));
    };
    match (u32::try_from(reply.pid), reply.errno) {
        (Ok(pid), 0) if pid > 1 => Ok(Ok(pid)),
        (Ok(pid), errno) if pid > 1 => {
            // The child's set-up failed and it exited: it is ours to reap.
            let _ = sys::wait_blocking(pid);
            Ok(Err(io::Error::from_raw_os_error(errno)))
        }
        // Out of processes or memory for now: exec may fare no better, but try.
        (_, libc::EAGAIN | libc::ENOMEM) => Err(Fallback::Once),
        // The fork is refused here (a sandbox without CLONE_PARENT, say): for good.
        (_, errno) => {
            Err(Fallback::Always(format!("it cannot fork: {}", io::Error::from_raw_os_error(errno))))
        }
    }
}

fn set_timeout(socket: &OwnedFd, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
    };
    #[allow(unsafe_code)]
    // SAFETY: setsockopt reads one timeval of `tv`.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::addr_of!(tv).cast::<c_void>(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Most descriptors one message carries (stdin, stdout, stderr, cgroup).
const MAX_FDS: usize = 4;

/// Control-message space for [`MAX_FDS`] descriptors, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct FdSpace([u8; 64]);

/// Sends `bytes` as one message with `fds` attached.
pub(crate) fn send_message(socket: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS, "at most {MAX_FDS} descriptors per message");
    let mut iov = libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast::<c_void>(), iov_len: bytes.len() };
    let mut space = FdSpace([0; 64]);
    #[allow(unsafe_code)]
    // SAFETY: the message header points at `iov` (over `bytes`) and at
    // `space`, large enough for MAX_FDS descriptors (CMSG_SPACE(16) = 32 <= 64);
    // all of them outlive the sendmsg call, which only reads them.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let fd_bytes = std::mem::size_of_val(fds) as u32;
            msg.msg_control = space.0.as_mut_ptr().cast::<c_void>();
            msg.msg_controllen = libc::CMSG_SPACE(fd_bytes) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), fds.len());
        }
        libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL)
    };
    match n {
        -1 => Err(io::Error::last_os_error()),
        n if n as usize == bytes.len() => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::WriteZero, "short send")),
    }
}

/// Receives one message into `buf` and the descriptors attached to it
/// (close-on-exec); `None` at end of file. A message longer than `buf` is an
/// error (its descriptors are closed).
pub(crate) fn recv_message(socket: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, Vec<OwnedFd>)>> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast::<c_void>(), iov_len: buf.len() };
    let mut space = FdSpace([0; 64]);
    loop {
        #[allow(unsafe_code)]
        // SAFETY: the header points at `iov` (over `buf`) and at `space`, both
        // alive across the call; recvmsg writes at most their lengths. Each
        // SCM_RIGHTS descriptor the kernel installed is ours to own, once.
        let (n, flags, fds) = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = space.0.as_mut_ptr().cast::<c_void>();
            msg.msg_controllen = space.0.len();
            let n = libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC);
            let mut fds = Vec::new();
            if n >= 0 {
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                        let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                        let count =
                            ((*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                        for i in 0..count {
                            fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                        }
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
            }
            (n, msg.msg_flags, fds)
        };
        if n == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a message longer than expected"));
        }
        // A zero-length message never comes from our peers: end of file.
        return Ok((n > 0).then_some((n as usize, fds)));
    }
}

#[cfg(test)]
mod tests;
