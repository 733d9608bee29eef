//! Links the job binaries as position-dependent executables on Linux.
//!
//! A one-item job process is mostly start-up, and a position-independent
//! executable of this size (the job runtime links the AWS SDK) makes the
//! dynamic loader apply ~42,000 relocations and copy the pages they touch
//! at every start: 320 page faults against 140. Linked without PIE, a job
//! process starts in 1.9 ms instead of 2.3 ms (`perf stat -r 500`, this
//! repository's README, "Performance"), which is a fifth of FANOUT-10,000's
//! time with one process per item.
//!
//! The price is ASLR for the executable's own image (libraries and the heap
//! stay randomised). Set `BATCHFAN_JOBS_PIE=1` to keep PIE: the container
//! image does, since on AWS a job starts once per container, where 0.4 ms is
//! nothing.

fn main() {
    println!("cargo:rerun-if-env-changed=BATCHFAN_JOBS_PIE");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let pie = std::env::var_os("BATCHFAN_JOBS_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
