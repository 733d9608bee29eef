//! Cost of the `lines` planner's record scan (`LineSplitter`, `memchr2` on
//! `"` and `\n`) over 120 MB in 8 MiB chunks, as `plan_lines` feeds it,
//! against a bare newline count (`memchr_iter`), for inputs shaped like users'
//! files: no quotes, a quoted field in every row, and a quoted field with a
//! newline in 1 row in 100.
//!
//! ```text
//! cargo run --release --example plan_lines -- [rounds, default 5]
//! ```
//!
//! Prints the best of the rounds for each input (the machine is shared).

use std::time::{Duration, Instant};

use batchfan::plan::lines::{LineSplitter, CHUNK_BYTES};

const TARGET: usize = 120_000_000;

/// ~120 MB of 120-byte orders-like rows; `quote(i)` gives row i's Country.
fn input(country: impl Fn(usize) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(TARGET + 1024);
    let mut i = 0;
    while out.len() < TARGET {
        let row = format!(
            "Sub-Saharan Africa,{},Fruits,Offline,M,7/27/2012,{},7/28/2012,1593,9.33,6.92,14862.69,11023.56,3839.13\n",
            country(i),
            100_000_000 + i * 7919 % 900_000_000
        );
        out.extend_from_slice(row.as_bytes());
        i += 1;
    }
    out
}

fn best(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut result = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        result = std::hint::black_box(f());
        best = best.min(t.elapsed());
    }
    (best, result)
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(5);
    let inputs = [
        ("no quotes", input(|_| "South Africa".into())),
        ("a quoted field in every row", input(|_| "\"Africa, South\"".into())),
        (
            "a quoted newline in 1 row in 100",
            input(|i| if i % 100 == 0 { "\"South\nAfrica\"".into() } else { "South Africa".into() }),
        ),
    ];
    let chunk = CHUNK_BYTES as usize;
    println!(
        "{:<34} {:>8} {:>14} {:>10} {:>14} {:>10}",
        "input (120 MB)", "units", "record scan", "MB/s", "newline count", "MB/s"
    );
    for (name, data) in &inputs {
        let (scan, units) = best(rounds, || {
            let mut s = LineSplitter::new(30_000, true);
            for c in data.chunks(chunk) {
                s.feed(c);
            }
            s.finish().map_or(0, |u| u.len())
        });
        let (count, _) =
            best(rounds, || data.chunks(chunk).map(|c| memchr::memchr_iter(b'\n', c).count()).sum());
        let mbs = |d: Duration| data.len() as f64 / 1e6 / d.as_secs_f64();
        println!(
            "{name:<34} {units:>8} {:>11.1} ms {:>10.0} {:>11.1} ms {:>10.0}",
            scan.as_secs_f64() * 1e3,
            mbs(scan),
            count.as_secs_f64() * 1e3,
            mbs(count)
        );
    }
    Ok(())
}
