//! Starting a process the way `posix_spawn` does, with `clone(CLONE_VM |
//! CLONE_VFORK)`, plus what `posix_spawn` cannot: the parent-death signal.
//!
//! Why not fork (std's `Command` with `pre_exec`): a fork copies the engine's
//! page tables and write-protects all its memory, so every engine thread then
//! takes page faults, and the child pays to tear the copy down at exec. With
//! thousands of short jobs that was most of the engine's cost. Here the child
//! borrows the spawning thread's memory (that thread is suspended until the
//! child execs or exits) and runs only async-signal-safe system calls on its
//! own stack: reset signal handlers, move into the attempt's cgroup (when
//! cgroup v2 limits are in force: write `0`, "this process", to its
//! `cgroup.procs`), new process group, `PR_SET_PDEATHSIG`, working directory,
//! stdin/stdout/stderr, empty signal mask, `execve`.

use std::{
    ffi::{c_int, c_void, CString, OsString},
    io,
    os::{
        fd::{AsRawFd, BorrowedFd},
        unix::ffi::OsStringExt,
    },
    path::Path,
    sync::atomic::{AtomicI32, Ordering},
};

/// A program with its arguments and environment, ready for `execve`.
pub(crate) struct Program {
    pub(super) path: CString,
    pub(super) argv: Vec<CString>,
    pub(super) envp: Vec<CString>,
    pub(super) cwd: CString,
}

impl Program {
    /// `path` runs with `argv` (from `argv[0]`), exactly the environment `env`, in directory `cwd`.
    pub(crate) fn new(
        path: &Path,
        argv: &[String],
        env: Vec<(OsString, OsString)>,
        cwd: &Path,
    ) -> io::Result<Program> {
        let nul =
            |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} contains a NUL byte"));
        let path =
            CString::new(path.as_os_str().to_owned().into_vec()).map_err(|_| nul("the program path"))?;
        let argv = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| nul(&format!("argument {a:?}"))))
            .collect::<io::Result<_>>()?;
        let envp = env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend(v.into_vec());
                CString::new(kv).map_err(|_| nul("an environment variable"))
            })
            .collect::<io::Result<_>>()?;
        let cwd =
            CString::new(cwd.as_os_str().to_owned().into_vec()).map_err(|_| nul("the working directory"))?;
        Ok(Program { path, argv, envp, cwd })
    }

    /// The same program and arguments with environment `envp` (`NAME=value`
    /// entries), in directory `cwd`.
    pub(super) fn with_env(&self, envp: Vec<CString>, cwd: CString) -> Program {
        Program { path: self.path.clone(), argv: self.argv.clone(), envp, cwd }
    }
}

/// What the child needs; lives on the spawning thread's stack, which the child
/// shares until it execs.
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    fds: [c_int; 3],
    /// The attempt's `cgroup.procs`, open for writing, or -1.
    cgroup_procs: c_int,
    parent: libc::pid_t,
    /// The errno of the step that failed, written by the child.
    error: AtomicI32,
}

/// Stack for the child while it shares our memory; enough for a few system calls.
pub(crate) const CHILD_STACK: usize = 64 * 1024;

/// Starts `program` in its own process group with stdin, stdout and stderr
/// from `fds`, and SIGKILL as its parent-death signal (the calling thread is
/// its parent), in the cgroup whose `cgroup.procs` is `cgroup_procs` if given.
/// `stack` is scratch memory of at least [`CHILD_STACK`] bytes.
pub(crate) fn spawn(
    program: &Program,
    fds: [BorrowedFd<'_>; 3],
    cgroup_procs: Option<BorrowedFd<'_>>,
    stack: &mut [u8],
) -> io::Result<u32> {
    let argv: Vec<*const libc::c_char> =
        program.argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp: Vec<*const libc::c_char> =
        program.envp.iter().map(|e| e.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let args = ChildArgs {
        path: program.path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: program.cwd.as_ptr(),
        fds: fds.map(|fd| fd.as_raw_fd()),
        cgroup_procs: cgroup_procs.map_or(-1, |fd| fd.as_raw_fd()),
        parent: libc::pid_t::try_from(std::process::id()).unwrap_or(0),
        error: AtomicI32::new(0),
    };
    assert!(stack.len() >= CHILD_STACK, "child stack too small");
    // The stack grows down from its end, 16-byte aligned.
    let end = stack.as_mut_ptr().wrapping_add(stack.len());
    let top = end.wrapping_sub(end as usize % 16);
    #[allow(unsafe_code)]
    // SAFETY: every signal is blocked around clone so no handler of ours runs
    // in the child while it shares our memory (the child resets handlers before
    // unblocking). CLONE_VFORK suspends this thread until the child has exec'd
    // or exited, so `args`, `argv`, `envp`, `program` and `stack` outlive every
    // use the child makes of them; `child_main` never returns.
    let (pid, clone_error) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top.cast::<c_void>(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::addr_of!(args).cast_mut().cast::<c_void>(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        (pid, clone_error)
    };
    if pid == -1 {
        return Err(clone_error);
    }
    let pid = u32::try_from(pid).map_err(|_| io::Error::other(format!("clone returned pid {pid}")))?;
    match args.error.load(Ordering::SeqCst) {
        0 => Ok(pid),
        errno => {
            // It exited without exec: reap it now.
            let _ = super::sys::wait_blocking(pid);
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The child, sharing the parent's memory: only system calls, then `execve`.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    #[allow(unsafe_code)]
    // SAFETY: `arg` points at the parent's `ChildArgs`, alive while the parent
    // is suspended (CLONE_VFORK). Only async-signal-safe calls follow; nothing
    // allocates, locks or unwinds, and the function ends in execve or _exit.
    unsafe {
        let args = &*arg.cast::<ChildArgs>();
        let fail = || -> ! {
            let errno = *libc::__errno_location();
            args.error.store(if errno == 0 { libc::EINVAL } else { errno }, Ordering::SeqCst);
            libc::_exit(127)
        };
        // Handlers of the parent must not run here: reset them (exec would too).
        // SIGPIPE, which Rust ignores, goes back to its default as std does for children.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            let mut old: libc::sigaction = std::mem::zeroed();
            if sig == libc::SIGKILL
                || sig == libc::SIGSTOP
                || libc::sigaction(sig, std::ptr::null(), &mut old) != 0
            {
                continue;
            }
            if sig == libc::SIGPIPE
                || (old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN)
            {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        // Into the attempt's cgroup before anything of the job runs ("0": the writer).
        if args.cgroup_procs >= 0 && libc::write(args.cgroup_procs, b"0".as_ptr().cast::<c_void>(), 1) != 1 {
            fail();
        }
        if libc::setpgid(0, 0) != 0 {
            fail();
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            fail();
        }
        // If the parent died before prctl, nobody would kill us later.
        if libc::getppid() != args.parent {
            *libc::__errno_location() = libc::ESRCH;
            fail();
        }
        if libc::chdir(args.cwd) != 0 {
            fail();
        }
        for (target, &fd) in args.fds.iter().enumerate() {
            let target = target as c_int;
            let ok = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0) != -1
            } else {
                libc::dup2(fd, target) != -1
            };
            if !ok {
                fail();
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(args.path, args.argv, args.envp);
        fail()
    }
}

#[cfg(test)]
mod tests {
    use std::{fs::File, os::fd::AsFd};

    use super::*;
    use crate::engine::sys;

    fn run(argv: &[&str], env: Vec<(OsString, OsString)>, out: &File) -> io::Result<u32> {
        run_in(argv, env, out, Path::new("/"))
    }

    fn run_in(argv: &[&str], env: Vec<(OsString, OsString)>, out: &File, cwd: &Path) -> io::Result<u32> {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let program = Program::new(Path::new(&argv[0]), &argv, env, cwd)?;
        let null = File::open("/dev/null")?;
        spawn(&program, [null.as_fd(), out.as_fd(), out.as_fd()], None, &mut vec![0; CHILD_STACK])
    }

    #[test]
    fn runs_in_its_own_group_with_exactly_the_given_environment_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = File::create(dir.path().join("out")).unwrap();
        let env = vec![("ONLY".into(), "this".into())];
        let cwd = dir.path().join("cwd");
        std::fs::create_dir(&cwd).unwrap();
        let script = "echo $ONLY; env | wc -l; cat /proc/$$/stat; pwd -P";
        let pid = run_in(&["/bin/sh", "-c", script], env, &out, &cwd).unwrap();
        assert_eq!(sys::wait_blocking(pid).unwrap(), 0);
        let text = std::fs::read_to_string(dir.path().join("out")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "this");
        let stat = sys::parse_stat(lines[2]).unwrap();
        assert_eq!(stat.pgid, pid, "the child leads its own process group");
        assert!(lines[1].trim().parse::<u32>().unwrap() <= 3, "only ONLY (and what sh adds): {}", lines[1]);
        assert_eq!(Path::new(lines[3]), cwd.canonicalize().unwrap(), "it runs in the given directory");
    }

    #[test]
    fn the_child_moves_itself_into_the_given_cgroup_before_exec() {
        let dir = tempfile::tempdir().unwrap();
        // A file standing in for the attempt group's cgroup.procs.
        let procs = File::create(dir.path().join("cgroup.procs")).unwrap();
        let out = tempfile::tempfile().unwrap();
        let program = Program::new(Path::new("/bin/true"), &["true".into()], vec![], Path::new("/")).unwrap();
        let null = File::open("/dev/null").unwrap();
        let fds = [null.as_fd(), out.as_fd(), out.as_fd()];
        let pid = spawn(&program, fds, Some(procs.as_fd()), &mut vec![0; CHILD_STACK]).unwrap();
        assert_eq!(sys::wait_blocking(pid).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(dir.path().join("cgroup.procs")).unwrap(), "0");

        // A group that refuses the move: the start fails, nothing of the job runs.
        let refused = File::open(dir.path().join("cgroup.procs")).unwrap();
        let fds = [null.as_fd(), out.as_fd(), out.as_fd()];
        let err = spawn(&program, fds, Some(refused.as_fd()), &mut vec![0; CHILD_STACK]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    }

    #[test]
    fn a_missing_working_directory_is_an_error() {
        let out = tempfile::tempfile().unwrap();
        let err = run_in(&["/bin/true"], vec![], &out, Path::new("/nonexistent/dir")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn exec_errors_come_back_as_io_errors() {
        let out = tempfile::tempfile().unwrap();
        let err = run(&["/nonexistent/program"], vec![], &out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn the_child_dies_with_the_thread_that_spawned_it() {
        let out = tempfile::tempfile().unwrap();
        let spawner = std::thread::spawn(move || run(&["/bin/sleep", "30"], vec![], &out).unwrap());
        let pid = spawner.join().unwrap();
        // The spawning thread has exited: PR_SET_PDEATHSIG sends SIGKILL.
        let status = sys::wait_blocking(pid).unwrap();
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
    }
}
