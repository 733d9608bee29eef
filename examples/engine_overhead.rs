//! Measures the local engine's overhead per array child.
//!
//! Submits A (N × `/bin/true`, default 10,000) and B (N_TO_N on A), waits for B,
//! and prints the wall time and the engine process's CPU time per child (user +
//! system of this process: scheduling, SQLite, events, and the parent's side of
//! spawning; the children's own CPU is reported apart), split by thread:
//! `batchfan-engine` is the scheduler (state, SQLite, events, reaping),
//! `batchfan-spawn-*` the spawner threads (log files, environment, clone).
//!
//! Then it spawns the same number of `/bin/true` directly, as cheaply as std
//! can (`posix_spawn`: log file, own process group, two threads; the engine's
//! own spawn is the same `clone(CLONE_VM | CLONE_VFORK)` plus the parent-death
//! signal), so the engine's cost beyond the process spawn is the difference.
//!
//! ```text
//! cargo run --release --example engine_overhead [-- N [PARENT_DIR]]
//! ```
//!
//! The state directory is a temporary directory in PARENT_DIR (default: the
//! system's temp dir). Creating each attempt's log file is part of the cost, and
//! on ext4 it depends on how many files were deleted nearby in the last minutes.

use std::{
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::Context;
use batchfan::{
    batch::{Batch, ContainerSpec, JobDependency, JobStatus, SubmitJob},
    engine::{EngineConfig, LocalEngine, ShutdownMode},
};

fn array(name: &str, size: u32, depends_on: Vec<JobDependency>) -> SubmitJob {
    SubmitJob {
        job_name: name.into(),
        job_queue: "local".into(),
        job_definition: "overhead".into(),
        array_size: Some(size),
        depends_on,
        container: ContainerSpec {
            image: String::new(),
            command: vec!["/bin/true".into()],
            environment: Default::default(),
            vcpus: 0.25,
            memory_mib: 16,
        },
        retry_strategy: Default::default(),
        timeout_seconds: None,
        tags: Default::default(),
    }
}

/// (this process's user+system, its reaped children's user+system) CPU in ms.
fn cpu_ms() -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<u64> = stat[stat.rfind(')').context("no ')' in /proc/self/stat")? + 2..]
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // USER_HZ is 100 on Linux: 10 ms per tick.
    Ok(((fields[0] + fields[1]) as f64 * 10.0, (fields[2] + fields[3]) as f64 * 10.0))
}

/// CPU ms of this process's live threads, summed by thread name.
fn thread_cpu_ms() -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
    let mut by_name = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
        let ticks: u64 =
            stat[close + 2..].split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum();
        *by_name.entry(name).or_insert(0.0) += ticks as f64 * 10.0;
    }
    Ok(by_name)
}

/// Spawns `count` `/bin/true` on two threads with std's cheapest spawn, each
/// with its own log file in `dir`; returns (this process's CPU ms, wall s).
fn baseline(count: u32, dir: &Path) -> anyhow::Result<(f64, f64)> {
    std::fs::create_dir_all(dir)?;
    let (cpu0, _) = cpu_ms()?;
    let start = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for i in (t..count).step_by(2) {
                        let log = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(dir.join(format!("{i}.attempt-1.log")))?;
                        let mut cmd = Command::new("/bin/true");
                        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).process_group(0);
                        cmd.spawn()?.wait()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a baseline thread panicked"))??;
        }
        Ok(())
    })?;
    let (cpu1, _) = cpu_ms()?;
    Ok((cpu1 - cpu0, start.elapsed().as_secs_f64()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let size: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse().context("the argument is the array size, e.g. 10000")?,
        None => 10_000,
    };
    let dir = match std::env::args().nth(2) {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let config = EngineConfig::new(dir.path());
    let vcpus = config.vcpus;
    let engine = LocalEngine::open(config).await?;
    let mut events = engine.subscribe();
    let (cpu0, children0) = cpu_ms()?;
    let start = Instant::now();
    let a = engine.submit_job(array("a", size, vec![])).await?.job_id;
    let b = engine.submit_job(array("b", size, vec![JobDependency::n_to_n(&a)])).await?.job_id;
    let submitted = start.elapsed();
    let mut seen = 0u64;
    while let Some(event) = events.recv().await {
        seen += 1;
        if event.job_id == b && event.status.is_terminal() {
            break;
        }
    }
    let wall = start.elapsed();
    let (cpu1, children1) = cpu_ms()?;
    let threads = thread_cpu_ms()?;
    let status = engine.describe_jobs(&[a.clone(), b.clone()]).await?;
    engine.shutdown(ShutdownMode::Drain).await;
    let children = 2.0 * f64::from(size);
    anyhow::ensure!(
        status.iter().all(|j| j.status == JobStatus::Succeeded),
        "not every job succeeded: {:?}",
        status.iter().map(|j| j.status).collect::<Vec<_>>()
    );
    println!("state directory:     {}", dir.path().display());
    println!("children:            {children} (2 arrays of {size}, N_TO_N), capacity {vcpus} vCPUs, 0.25 vCPU each");
    println!("submit both arrays:  {:.1} ms", submitted.as_secs_f64() * 1e3);
    println!(
        "wall time:           {:.2} s ({:.3} ms/child)",
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1e3 / children
    );
    println!("engine process CPU:  {:.0} ms ({:.3} ms/child)", cpu1 - cpu0, (cpu1 - cpu0) / children);
    println!(
        "children's own CPU:  {:.0} ms ({:.3} ms/child)",
        children1 - children0,
        (children1 - children0) / children
    );
    println!("events received:     {seen}");
    for (name, ms) in threads.iter().filter(|(name, _)| name.starts_with("batchfan")) {
        println!("  thread {name:<16} {ms:.0} ms CPU ({:.3} ms/child)", ms / children);
    }
    let (base_cpu, base_wall) = baseline(2 * size, &dir.path().join("baseline"))?;
    println!(
        "spawn baseline:      {base_cpu:.0} ms CPU ({:.3} ms/child), {base_wall:.2} s wall: {children} direct spawns",
        base_cpu / children
    );
    println!("engine beyond spawn: {:.3} ms/child of engine CPU", ((cpu1 - cpu0) - base_cpu) / children);
    Ok(())
}
