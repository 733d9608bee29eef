//! Owner-only files under the state directory: the commands that use it run
//! with umask 077, so every table, bucket object, log, `serve.json`, the bus
//! and the engine's files are created readable by their owner only (files
//! 0600, directories 0700) — and so are the files of the jobs they start,
//! which inherit it. The state directory itself is made 0700 when opened
//! ([`crate::backend::LocalBackend::open`]), which also covers files older
//! than this rule.

/// Makes every file and directory this process (and its children) creates from now on owner-only.
pub fn owner_only_files() {
    #[allow(unsafe_code)]
    // SAFETY: umask(2) takes an integer, touches no memory of ours and cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}
