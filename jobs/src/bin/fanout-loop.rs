//! FANOUT-N as a plain loop in one process: the baseline for engine overhead.
//! Prints `sum seconds`.

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let t = std::time::Instant::now();
    let sum = batchfan_jobs::fanout::plain_loop(n);
    println!("{sum} {:.3}", t.elapsed().as_secs_f64());
}
