//! The job side of a fork server: what a job binary does when the engine
//! starts it with [`super::SERVER_FLAG`] set, before any job code runs.
//!
//! The server answers each launch message by forking a child with
//! `CLONE_PARENT` (so the child is the engine's, which reaps it as any
//! process it spawned), waits until the child has set itself up, and replies
//! with the child's pid and, if a step failed, its errno. The child sets itself
//! up as [`crate::engine::spawn`] sets up a child before `execve` — cgroup, own
//! process group, parent-death signal, working directory, stdin/stdout/stderr,
//! exactly the attempt's environment — and returns, so that the job runs.

use std::{
    ffi::{c_int, c_void, OsStr, OsString},
    io,
    os::{
        fd::{AsRawFd, OwnedFd, RawFd},
        unix::ffi::{OsStrExt, OsStringExt},
    },
};

use super::{Reply, MARKER, MAX_MESSAGE, SERVER_FLAG};

/// The marker the engine looks for: only binaries that link this module carry it.
#[allow(unsafe_code)] // A section of its own, read only by the engine's ELF check.
#[link_section = ".batchfan.fork_server"]
static MARKER_IN_BINARY: [u8; MARKER.len()] = *MARKER;

/// Keeps the marker section in the binary (the linker drops unreferenced sections).
pub(crate) fn keep_marker() {
    std::hint::black_box(&MARKER_IN_BINARY);
}

/// If the engine started this process as a fork server, serves until the
/// engine hangs up and exits; returns only in a forked child, set up as its
/// attempt, or when this process is not a fork server.
pub fn serve_if_asked() {
    keep_marker();
    if std::env::var_os(SERVER_FLAG).as_deref() != Some(OsStr::new("1")) {
        return;
    }
    if let Err(e) = serve() {
        // The engine sees the socket close and starts this program with exec.
        eprintln!("batchfan fork server: {e}");
        std::process::exit(crate::env::EXIT_RETRYABLE);
    }
}

/// One launch: the attempt's directory, environment and descriptors.
struct Launch {
    cwd: OsString,
    env: Vec<(OsString, OsString)>,
    /// stdin, stdout, stderr.
    stdio: [OwnedFd; 3],
    /// The attempt's `cgroup.procs`, open for writing.
    cgroup: Option<OwnedFd>,
}

/// The server loop; returns `Ok` only in a forked child.
fn serve() -> io::Result<()> {
    // The engine's end of the socket is our stdin.
    const SOCKET: RawFd = 0;
    #[allow(unsafe_code)]
    // SAFETY: getppid takes no arguments.
    let parent = unsafe { libc::getppid() };
    let tid = tid_address();
    let robust = robust_list();
    send(SOCKET, MARKER)?;
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    loop {
        let Some((len, fds)) = super::recv_message(SOCKET, &mut buf)? else {
            // The engine hung up: nothing more to start.
            std::process::exit(0);
        };
        let launch = match parse(&buf[..len], fds) {
            Ok(launch) => launch,
            Err(errno) => {
                send(SOCKET, &Reply { pid: -1, errno }.encode())?;
                continue;
            }
        };
        let (status_read, status_write) = crate::engine::sys::pipe()?;
        match fork_child(tid, robust)? {
            0 => {
                drop(status_read);
                match set_up(launch, parent) {
                    Ok(()) => {
                        // Closing our end tells the server we are set up.
                        drop(status_write);
                        return Ok(());
                    }
                    Err(errno) => {
                        let _ = write_all(status_write.as_raw_fd(), &errno.to_le_bytes());
                        #[allow(unsafe_code)]
                        // SAFETY: _exit ends this process at once; nothing of ours runs after it.
                        unsafe {
                            libc::_exit(127)
                        }
                    }
                }
            }
            pid => {
                drop(status_write);
                drop(launch);
                let mut errno = [0u8; 4];
                let n = read_full(status_read.as_raw_fd(), &mut errno)?;
                let errno = if n == errno.len() { i32::from_le_bytes(errno) } else { 0 };
                send(SOCKET, &Reply { pid, errno }.encode())?;
            }
        }
    }
}

fn parse(message: &[u8], fds: Vec<OwnedFd>) -> Result<Launch, i32> {
    if message.len() > MAX_MESSAGE {
        return Err(libc::EMSGSIZE);
    }
    let mut fds = fds.into_iter();
    let (Some(stdin), Some(stdout), Some(stderr)) = (fds.next(), fds.next(), fds.next()) else {
        return Err(libc::EINVAL);
    };
    let cgroup = fds.next();
    if fds.next().is_some() {
        return Err(libc::EINVAL);
    }
    let mut parts = message.split(|&b| b == 0);
    let cwd = parts.next().filter(|c| !c.is_empty()).ok_or(libc::EINVAL)?;
    let mut env = Vec::new();
    for entry in parts.filter(|e| !e.is_empty()) {
        let eq = entry.iter().position(|&b| b == b'=').filter(|&i| i > 0).ok_or(libc::EINVAL)?;
        env.push((
            OsStr::from_bytes(&entry[..eq]).to_owned(),
            OsStr::from_bytes(&entry[eq + 1..]).to_owned(),
        ));
    }
    Ok(Launch { cwd: OsStr::from_bytes(cwd).to_owned(), env, stdio: [stdin, stdout, stderr], cgroup })
}

/// The child's steps before the job runs, in `spawn`'s order; the errno of the one that failed.
fn set_up(launch: Launch, parent: libc::pid_t) -> Result<(), i32> {
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL);
    let cwd = std::ffi::CString::new(launch.cwd.into_vec()).map_err(|_| libc::EINVAL)?;
    #[allow(unsafe_code)]
    // SAFETY: plain system calls on integers and on `cwd`, a NUL-terminated
    // string that outlives the call; this process is single-threaded.
    unsafe {
        // Into the attempt's cgroup before anything of the job runs ("0": the writer).
        if let Some(cgroup) = &launch.cgroup {
            if libc::write(cgroup.as_raw_fd(), b"0".as_ptr().cast::<c_void>(), 1) != 1 {
                return Err(errno());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return Err(errno());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(errno());
        }
        // If the engine died before prctl, nobody would kill us later.
        if libc::getppid() != parent {
            return Err(libc::ESRCH);
        }
        if libc::chdir(cwd.as_ptr()) != 0 {
            return Err(errno());
        }
        // The server's socket (stdin) and /dev/null (stdout, stderr) are replaced.
        for (target, fd) in launch.stdio.iter().enumerate() {
            if libc::dup2(fd.as_raw_fd(), target as c_int) == -1 {
                return Err(errno());
            }
        }
    }
    drop(launch.stdio);
    drop(launch.cgroup);
    // Exactly the attempt's environment. Single-threaded: nothing reads it meanwhile.
    for (name, _) in std::env::vars_os().collect::<Vec<_>>() {
        std::env::remove_var(name);
    }
    for (name, value) in launch.env {
        std::env::set_var(name, value);
    }
    Ok(())
}

/// Where glibc keeps this thread's kernel thread id, if it is where glibc
/// 2.x on x86-64 keeps it (`struct pthread`'s `tid`, at 0x2d0): the child
/// gets its own id written there, as glibc's own `fork` does.
fn tid_address() -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    {
        const TID_OFFSET: usize = 0x2d0;
        #[allow(unsafe_code)]
        // SAFETY: pthread_self is this thread's `struct pthread`, which is
        // larger than TID_OFFSET + 4 bytes in every glibc; the value is only
        // read, and used only if it is this thread's id.
        unsafe {
            let at = libc::pthread_self() as usize + TID_OFFSET;
            let tid = std::ptr::read_volatile(at as *const libc::pid_t);
            (tid == libc::gettid()).then_some(at)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_env = "gnu")))]
    None
}

/// This thread's robust futex list, which the kernel does not give a child.
fn robust_list() -> Option<(usize, usize)> {
    let mut head: *mut c_void = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    #[allow(unsafe_code)]
    // SAFETY: get_robust_list writes one pointer and one size into our locals.
    let rc = unsafe { libc::syscall(libc::SYS_get_robust_list, 0, &mut head, &mut len) };
    (rc == 0 && !head.is_null()).then_some((head as usize, len))
}

/// Forks with `CLONE_PARENT`: the child's parent is the engine. 0 in the child.
fn fork_child(tid: Option<usize>, robust: Option<(usize, usize)>) -> io::Result<libc::pid_t> {
    let mut flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    if tid.is_some() {
        flags |= (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as libc::c_ulong;
    }
    #[allow(unsafe_code)]
    // SAFETY: a fork (no CLONE_VM, no new stack): the child runs on a copy of
    // this single-threaded process's memory. The child-tid pointer, when given,
    // is this thread's own tid field (see `tid_address`); x86-64's argument
    // order is flags, stack, parent tid, child tid, tls.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, tid.unwrap_or(0), 0usize) };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        if let Some((head, len)) = robust {
            #[allow(unsafe_code)]
            // SAFETY: re-registers the same (empty) list head the server had, as glibc's fork does.
            unsafe {
                libc::syscall(libc::SYS_set_robust_list, head, len);
            }
        }
    }
    Ok(pid as libc::pid_t)
}

fn send(fd: RawFd, bytes: &[u8]) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: send reads `bytes.len()` bytes of `bytes`.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast::<c_void>(), bytes.len(), libc::MSG_NOSIGNAL) };
    match n {
        -1 => Err(io::Error::last_os_error()),
        n if n as usize == bytes.len() => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::WriteZero, "short send")),
    }
}

fn write_all(fd: RawFd, bytes: &[u8]) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: write reads `bytes.len()` bytes of `bytes`.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast::<c_void>(), bytes.len()) };
    if n as usize == bytes.len() {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads until `buf` is full or end of file; how many bytes were read.
fn read_full(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        #[allow(unsafe_code)]
        // SAFETY: read writes at most `buf.len() - done` bytes into `buf[done..]`.
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast::<c_void>(), buf.len() - done) };
        match n {
            0 => break,
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            n => done += n as usize,
        }
    }
    Ok(done)
}
