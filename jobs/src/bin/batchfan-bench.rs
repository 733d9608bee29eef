//! Benchmarks that print figures (never timed tests):
//! - `orders` end to end for generated inputs, phase by phase, beside the
//!   single-process baseline, with Order IDs in random order (as real exports
//!   have them) and ascending (`--ids`);
//! - FANOUT-N: wall time and engine overhead per task beside a plain loop;
//! - with `--isolation both`, each run also with the engine's isolation off
//!   (jobs inherit the engine's environment and directory, no memory
//!   watchdog or cgroup), to show what isolation costs per task.
//!
//! Beside each figure with a target (issue 15), the target and whether it is
//! met. The `orders` speed-up target is on the median of alternated runs
//! (`--runs`, default 3: pipeline, baseline, pipeline, baseline, ...), so
//! each run's line is followed by the medians' line, which carries the
//! verdict.
//!
//! `cargo build --release --workspace && target/release/batchfan-bench [--rows 100000,1000000,2000000] [--ids random|ascending|both] [--runs 3] [--fanout 1000,10000] [--isolation on|off|both] [--work DIR]`

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use serde_json::Value;

const USAGE: &str = "usage: batchfan-bench [--rows N,N,...] [--ids random|ascending|both] [--runs N] [--fanout N,N,...] [--isolation on|off|both] [--work DIR] [--specs DIR]
  --rows       orders input sizes (default 100000,1000000,2000000; \"\" for none)
  --ids        Order IDs of the generated inputs (default both)
  --runs       orders runs per size, each beside a baseline run, and their medians (default 3)
  --fanout     FANOUT sizes, each run packed and one item per child (default 1000,10000; \"\" for none)
  --isolation  the engine's job isolation (default on; both: each run twice)
  --work       where data and state go (default bench-data)
  --specs      where orders.toml and fanout.toml are (default jobs)";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
struct Options {
    rows: Vec<u64>,
    runs: usize,
    fanout: Vec<u64>,
    ids: &'static [&'static str],
    isolation: &'static [bool],
    work: PathBuf,
    specs: PathBuf,
}

/// Parses the arguments (without the program name); `Ok(None)` for `--help`.
/// An unknown flag, a flag without its value or a value that is not one of
/// the flag's is an error naming it.
fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        rows: vec![100_000, 1_000_000, 2_000_000],
        runs: 3,
        fanout: vec![1_000, 10_000],
        ids: &["random", "ascending"],
        isolation: &[true],
        work: PathBuf::from("bench-data"),
        specs: PathBuf::from("jobs"),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let known = ["--rows", "--runs", "--fanout", "--ids", "--isolation", "--work", "--specs"];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown argument {flag:?}: the flags are {}", known.join(", ")));
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rows" => o.rows = sizes(flag, value)?,
            "--runs" => {
                o.runs = match value.parse::<usize>() {
                    Ok(n) if (1..=99).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "--runs {value:?} is not a number of runs from 1 to 99: write e.g. --runs 3"
                        ))
                    }
                }
            }
            "--fanout" => o.fanout = sizes(flag, value)?,
            "--ids" => {
                o.ids = match value.as_str() {
                    "both" => &["random", "ascending"],
                    "random" => &["random"],
                    "ascending" => &["ascending"],
                    _ => return Err(format!("--ids {value:?} is not random, ascending or both")),
                }
            }
            "--isolation" => {
                o.isolation = match value.as_str() {
                    "on" => &[true],
                    "off" => &[false],
                    "both" => &[true, false],
                    _ => return Err(format!("--isolation {value:?} is not on, off or both")),
                }
            }
            "--work" => o.work = PathBuf::from(value),
            _ => o.specs = PathBuf::from(value),
        }
    }
    Ok(Some(o))
}

/// A comma-separated list of sizes (`_` allowed as a digit separator); empty: none.
fn sizes(flag: &str, value: &str) -> Result<Vec<u64>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| match x.replace('_', "").parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{flag} {x:?} is not a whole number of at least 1: write e.g. {flag} 1000000,2000000"
            )),
        })
        .collect()
}

/// The engine's benchmark-only switch (`engine::container::ISOLATION_OFF_FOR_BENCH`).
const ISOLATION_OFF: &str = "BATCHFAN_BENCH_ISOLATION_OFF";

/// `batchfan run --quiet --output json --state STATE`, with isolation on or off.
fn batchfan_run(bin: &Path, state: &Path, isolation: bool) -> Command {
    let mut cmd = Command::new(bin.join("batchfan"));
    cmd.args(["run", "--quiet", "--output", "json", "--state"]).arg(state);
    if isolation {
        cmd.env_remove(ISOLATION_OFF);
    } else {
        cmd.env(ISOLATION_OFF, "1");
    }
    cmd
}

fn run(cmd: &mut Command) -> Result<(String, f64), String> {
    settle();
    let t = Instant::now();
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), secs))
}

/// Writes back what the previous command left dirty in the page cache
/// before the next one is timed (not counted): otherwise the kernel's flusher
/// threads write the generated input or the last run's tables on the same
/// two cores during the next run, which then pays for its predecessor.
fn settle() {
    let _ = Command::new("sync").status();
}

/// A new state directory. FANOUT's are deleted only at the end: deleting
/// many files right before creating many makes ext4's inode allocation slow,
/// which would be charged to the next run. An `orders` pair deletes its own
/// (a few hundred files, but 0.6-1.2 GB of tables) before the next pair:
/// kept, they slowed every later run of the size (see `orders_pair`).
fn fresh(dir: &Path) -> PathBuf {
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("{}-{stamp}", dir.file_name().map_or("state".into(), |n| n.to_string_lossy()));
    dir.with_file_name(name)
}

/// Deletes the state directories the benchmark made.
fn tidy(work: &Path) {
    if let Ok(entries) = std::fs::read_dir(work) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("state-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Options { rows, runs, fanout, ids, isolation: modes, work, specs } = match parse_args(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let bin =
        std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
    let _ = std::fs::create_dir_all(&work);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores; binaries: {}", bin.display());
    tidy(&work);
    let result = orders(&bin, &work, &specs, &rows, runs, ids, modes)
        .and_then(|()| fanout_bench(&bin, &work, &specs, &fanout, modes));
    tidy(&work);
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Issue 15's targets for `orders` with Order IDs in random order: rows → (seconds, speed-up).
fn orders_target(rows: u64, ids: &str) -> Option<(f64, f64)> {
    match (rows, ids) {
        (1_000_000, "random") => Some((3.0, 1.5)),
        (2_000_000, "random") => Some((6.0, 1.6)),
        _ => None,
    }
}

/// The median of `xs` (the mean of the middle two for an even count); NaN when empty.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The verdict on `orders` medians: end to end `secs`, speed-up `speedup`.
fn orders_verdict(rows: u64, ids: &str, secs: f64, speedup: f64) -> String {
    orders_target(rows, ids).map_or(String::new(), |(t, x)| {
        let met = secs <= t && speedup >= x;
        format!("<= {t} s and >= {x}x: {}", if met { "met" } else { "NOT met" })
    })
}

/// One `orders` run beside one baseline run: (seconds, the run's JSON, baseline seconds).
fn orders_pair(
    bin: &Path,
    work: &Path,
    specs: &Path,
    data: &Path,
    n: u64,
    isolation: bool,
) -> Result<(f64, Value, f64), String> {
    let state = fresh(&work.join(format!("state-orders-{n}")));
    let (json, secs) =
        run(batchfan_run(bin, &state, isolation).arg(specs.join("orders.toml")).arg("--input").arg(data))?;
    let v: Value = serde_json::from_str(json.trim()).map_err(|e| format!("bad json {json}: {e}"))?;
    let items = v["items"].as_u64().unwrap_or(0);
    if items != n {
        return Err(format!("orders run processed {items} rows, expected {n}"));
    }
    let base_state = fresh(&work.join(format!("state-baseline-{n}")));
    let _ = std::fs::create_dir_all(&base_state);
    let (base_out, _) = run(Command::new(bin.join("orders-baseline")).arg(data).arg(&base_state))?;
    let base_secs: f64 = base_out.split_whitespace().nth(2).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    // Gone before the next pair: a run's 0.6-1.2 GB of tables left behind
    // made each later run of the same size slower, the baseline too.
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&base_state);
    Ok((secs, v, base_secs))
}

fn orders(
    bin: &Path,
    work: &Path,
    specs: &Path,
    rows: &[u64],
    runs: usize,
    ids: &[&str],
    modes: &[bool],
) -> Result<(), String> {
    if rows.is_empty() {
        return Ok(());
    }
    println!(
        "\norders end to end (embedded backend) vs single-process baseline, {runs} alternated run(s) each"
    );
    println!(
        "{:>9} {:>9} {:>9} {:>6} {:>8} {:>10} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8}  target (on the medians)",
        "rows",
        "order ids",
        "isolation",
        "run",
        "e2e s",
        "rows/s",
        "plan",
        "confirm",
        "aggr",
        "cleanup",
        "baseline",
        "speedup"
    );
    let cases =
        rows.iter().flat_map(|n| ids.iter().flat_map(move |i| modes.iter().map(move |m| (*n, *i, *m))));
    for (n, order, isolation) in cases {
        let data = work.join(format!("orders-{n}-{order}.csv"));
        if !data.exists() {
            let mut gen = Command::new(bin.join("orders-gen"));
            gen.args(["--rows", &n.to_string(), "--out"]).arg(&data);
            if order == "ascending" {
                gen.arg("--ascending");
            }
            run(&mut gen)?;
        }
        let mode = if isolation { "on" } else { "off" };
        let (mut e2e, mut bases, mut speedups) = (vec![], vec![], vec![]);
        for k in 1..=runs {
            let (secs, v, base_secs) = orders_pair(bin, work, specs, &data, n, isolation)?;
            let phase = |key: &str| {
                v["phases_ms"][key].as_f64().map_or("-".to_owned(), |ms| format!("{:.2}", ms / 1000.0))
            };
            println!(
                "{n:>9} {order:>9} {mode:>9} {:>6} {secs:>8.2} {:>10.0} {:>7} {:>8} {:>8} {:>8} {base_secs:>9.2} {:>7.2}x",
                format!("{k}/{runs}"),
                n as f64 / secs,
                phase("plan"),
                phase("stage:confirm"),
                phase("aggregation"),
                phase("cleanup"),
                base_secs / secs
            );
            e2e.push(secs);
            bases.push(base_secs);
            speedups.push(base_secs / secs);
        }
        let (secs, speedup) = (median(&e2e), median(&speedups));
        println!(
            "{n:>9} {order:>9} {mode:>9} {:>6} {secs:>8.2} {:>10.0} {:>7} {:>8} {:>8} {:>8} {:>9.2} {speedup:>7.2}x  {}",
            "median",
            n as f64 / secs,
            "",
            "",
            "",
            "",
            median(&bases),
            orders_verdict(n, order, secs, speedup)
        );
    }
    Ok(())
}

/// Issue 15's targets for FANOUT-N with one process per item: N → (seconds, ms of overhead per task).
fn fanout_target(n: u64, per_child: u64) -> Option<(f64, Option<f64>)> {
    match (n, per_child) {
        (10_000, 1) => Some((20.0, Some(1.0))),
        (1_000, 1) => Some((2.5, None)),
        _ => None,
    }
}

fn fanout_bench(bin: &Path, work: &Path, specs: &Path, sizes: &[u64], modes: &[bool]) -> Result<(), String> {
    if sizes.is_empty() {
        return Ok(());
    }
    println!("\nFANOUT-N (2N + 2 tasks) vs the same work in a plain loop");
    println!(
        "{:>7} {:>15} {:>9} {:>9} {:>9} {:>9} {:>16}  target",
        "N", "items/child", "isolation", "children", "wall s", "loop s", "overhead/task ms"
    );
    let runs = sizes.iter().flat_map(|n| [(n, 1u64), (n, 10)]);
    for ((&n, per_child), &isolation) in runs.flat_map(|r| modes.iter().map(move |m| (r, m))) {
        let state = fresh(&work.join(format!("state-fanout-{n}")));
        let (json, secs) = run(batchfan_run(bin, &state, isolation)
            .arg(specs.join("fanout.toml"))
            .args(["--param", &format!("count={n}")])
            .args(["--param", &format!("items_per_child={per_child}")]))?;
        let v: Value = serde_json::from_str(json.trim()).map_err(|e| format!("bad json {json}: {e}"))?;
        let output = v["output_path"].as_str().unwrap_or_default();
        let sum = std::fs::read_to_string(output).map_err(|e| format!("{output}: {e}"))?;
        let (loop_out, _) = run(Command::new(bin.join("fanout-loop")).arg(n.to_string()))?;
        let mut it = loop_out.split_whitespace();
        let loop_sum = it.next().unwrap_or_default();
        let loop_secs: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        if sum.trim() != loop_sum {
            return Err(format!("fanout sum {} differs from the loop's {loop_sum}", sum.trim()));
        }
        let overhead = (secs - loop_secs) * 1000.0 / (2 * n + 2) as f64;
        let children = v["children"].as_u64().unwrap_or(0);
        let mode = if isolation { "on" } else { "off" };
        let target = fanout_target(n, per_child).map_or(String::new(), |(t, per_task)| {
            let met = secs <= t && per_task.is_none_or(|ms| overhead <= ms);
            let per_task = per_task.map_or(String::new(), |ms| format!(" and <= {ms} ms/task"));
            format!("<= {t} s{per_task}: {}", if met { "met" } else { "NOT met" })
        });
        println!(
            "{n:>7} {per_child:>15} {mode:>9} {children:>9} {secs:>9.2} {loop_secs:>9.2} {overhead:>16.3}  {target}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_args(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_set_what_they_name_and_the_rest_keeps_its_default() {
        let o = parse(&[
            "--rows",
            "1_000_000, 2000000",
            "--fanout",
            "",
            "--ids",
            "random",
            "--isolation",
            "both",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((o.rows, o.fanout, o.runs), (vec![1_000_000, 2_000_000], vec![], 3));
        assert_eq!(parse(&["--runs", "5"]).unwrap().unwrap().runs, 5);
        assert_eq!((o.ids, o.isolation), (&["random"][..], &[true, false][..]));
        assert_eq!((o.work, o.specs), (PathBuf::from("bench-data"), PathBuf::from("jobs")));
        assert_eq!(parse(&["--help"]), Ok(None));
    }

    #[test]
    fn a_bad_argument_is_named_instead_of_ignored() {
        let err = |args: &[&str]| parse(args).unwrap_err();
        assert!(err(&["--row", "5"]).contains("unknown argument \"--row\""));
        assert!(err(&["--rows"]).contains("--rows needs a value"));
        assert!(err(&["--rows", "1M"]).contains("--rows \"1M\" is not a whole number"));
        assert!(err(&["--fanout", "0"]).contains("--fanout \"0\""));
        assert!(err(&["--ids", "sorted"]).contains("--ids \"sorted\""));
        assert!(err(&["--isolation", "yes"]).contains("--isolation \"yes\""));
        assert!(err(&["--runs", "0"]).contains("--runs \"0\" is not a number of runs from 1 to 99"));
        assert!(err(&["--runs", "three"]).contains("--runs \"three\""));
    }

    #[test]
    fn the_verdict_is_on_the_medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        // Runs at 1.2x, 1.7x and 1.55x: the median, 1.55x, meets 1.5x at 1M.
        let speedup = median(&[1.2, 1.7, 1.55]);
        assert_eq!(orders_verdict(1_000_000, "random", 2.0, speedup), "<= 3 s and >= 1.5x: met");
        assert_eq!(orders_verdict(2_000_000, "random", 5.0, speedup), "<= 6 s and >= 1.6x: NOT met");
        assert_eq!(orders_verdict(2_000_000, "random", 6.5, 1.7), "<= 6 s and >= 1.6x: NOT met");
        assert_eq!(orders_verdict(1_000_000, "ascending", 2.0, 1.7), "", "no target for ascending IDs");
    }
}
