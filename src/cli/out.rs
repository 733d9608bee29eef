//! Data on stdout for a reader that may leave early (`batchfan status | head -1`).
//!
//! Rust ignores SIGPIPE, so writing to a pipe whose reader is gone fails with
//! `BrokenPipe` — and `println!` panics on it. Every command prints its data
//! through [`outln!`] / [`out!`] instead: a broken pipe means the reader has
//! what it wanted, so the rest is dropped without a word and the command ends
//! with its normal exit code. Any other write error (a full disk behind a
//! redirection) is kept and reported once by [`finish`] (exit 3).
//!
//! Diagnostics on stderr go through [`err_fmt`] (the `eprintln!` of the
//! command modules, see `cli/mod.rs`): `batchfan run ... 2>&1 | head -1`
//! closes stderr too, and a diagnostic nobody can read is dropped.

use std::{
    fmt,
    io::{self, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

/// Set once a write found the reader gone; later writes do nothing.
static READER_GONE: AtomicBool = AtomicBool::new(false);
/// The first write error other than a broken pipe.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Writes formatted data to stdout (see the module docs for errors).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    if READER_GONE.load(Ordering::Relaxed) {
        return;
    }
    let result = io::stdout().lock().write_fmt(args);
    if let Err(e) = result {
        record(e);
    }
}

/// Writes formatted diagnostics to stderr, dropping them when it cannot be
/// written (a reader that left, a closed descriptor): there is nowhere left to
/// report that, and `eprintln!` would panic.
pub fn err_fmt(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

fn record(e: io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        READER_GONE.store(true, Ordering::Relaxed);
        return;
    }
    if let Ok(mut failed) = FAILED.lock() {
        failed.get_or_insert_with(|| e.to_string());
    }
}

/// Flushes stdout; returns the first write error that was not a broken pipe.
pub fn finish() -> Option<String> {
    if !READER_GONE.load(Ordering::Relaxed) {
        if let Err(e) = io::stdout().lock().flush() {
            record(e);
        }
    }
    FAILED.lock().ok().and_then(|f| f.clone())
}

/// `println!` for data: quiet when the reader of stdout is gone.
macro_rules! outln {
    () => {
        $crate::cli::out::write_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for data: quiet when the reader of stdout is gone.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write_fmt(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};
