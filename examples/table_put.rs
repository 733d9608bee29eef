//! Throughput of the SQLite table's `put_batch` (and, for scale, single `put`s).
//!
//! ```text
//! cargo run --release --example table_put -- [items per batch, default 30000] [rounds, default 10]
//! ```
//!
//! Every batch holds fresh items with 15 string attributes (a typical work
//! item) under its own partition key. All batches are built first, then
//! written back to back, so the figure includes everything `put_batch` does
//! with the items it is given (checking, encoding, inserting, committing,
//! freeing them). It prints items/s per batch and sustained over all batches,
//! and the CPU time the process spent per item meanwhile (all threads, the
//! background checkpoints included), which is steadier than wall time on a
//! busy machine.

use std::time::Instant;

use batchfan::table::{sqlite::SqliteTable, Condition, Item, Key, Table};

fn batch(round: usize, n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| {
            let mut item = Item::new(Key::new(format!("run#bench-{round}"), format!("item#{i:06}")));
            for a in 0..15 {
                item = item.with(&format!("attr_{a:02}"), format!("value-{i:06}-{a:02}"));
            }
            item
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let dir = tempfile::tempdir()?;
    let table = SqliteTable::open(dir.path())?;
    table.put("Bench", Item::new(Key::new("warm", "up")), Condition::None).await?;

    let batches: Vec<_> = (0..rounds).map(|round| batch(round, n)).collect();
    let mut rates = Vec::new();
    let cpu_start = cpu_seconds();
    let all = Instant::now();
    for (round, items) in batches.into_iter().enumerate() {
        let start = Instant::now();
        table.put_batch("Bench", items).await?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        rates.push(rate);
        println!("put_batch {round}: {n} items in {:?}: {rate:.0} items/s", start.elapsed());
    }
    let sustained = (n * rounds) as f64 / all.elapsed().as_secs_f64();
    let cpu_us = (cpu_seconds() - cpu_start) * 1e6 / (n * rounds) as f64;
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let best = rates[rates.len() - 1];
    println!(
        "put_batch of {n}: sustained {sustained:.0} items/s, median {median:.0}, best {best:.0}; cpu {cpu_us:.2} us/item"
    );

    let singles = batch(rounds, 2_000);
    let count = singles.len();
    let start = Instant::now();
    for item in singles {
        table.put("Bench", item, Condition::None).await?;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    println!("single put: {count} items in {:?}: {rate:.0} puts/s", start.elapsed());
    Ok(())
}

/// CPU time of this process so far (user + system, all threads), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
