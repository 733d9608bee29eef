//! Generates the `orders` sales CSV (seed 001's 14 columns, unique Order IDs).
//!
//! `orders-gen --rows N --out FILE [--seed S] [--malformed-every K] [--ascending]`
//!
//! Order IDs are in random order, as in real exports (seed 001's sample rows:
//! 669165933, 963881480, 341417157, …); `--ascending` writes them in long
//! ascending runs instead (the old shape: every table insert appends at the
//! end of the B-tree), for comparison.

batchfan_jobs::mimalloc_allocator!();

use std::{
    fs::File,
    io::{BufWriter, Write},
};

const REGIONS: [(&str, &[&str]); 5] = [
    ("Sub-Saharan Africa", &["South Africa", "Nigeria", "Kenya", "Ghana"]),
    ("Europe", &["France", "Germany", "Spain", "Poland", "Norway"]),
    ("Asia", &["India", "Japan", "Vietnam", "Mongolia"]),
    ("Central America and the Caribbean", &["Mexico", "Cuba", "Panama"]),
    ("North America", &["Canada", "United States of America", "Greenland"]),
];
const ITEMS: [(&str, f64, f64); 6] = [
    ("Fruits", 9.33, 6.92),
    ("Clothes", 109.28, 35.84),
    ("Cosmetics", 437.20, 263.33),
    ("Office Supplies", 651.21, 524.96),
    ("Snacks", 152.58, 97.44),
    ("Household", 668.27, 502.54),
];

/// Order IDs are `100_000_000 + slot`, with slots a bijection of the row
/// number onto `0..SLOTS`: unique for up to 900M rows.
const SLOTS: u64 = 900_000_000;

/// Ascending runs of ~113,000 rows (7919 is coprime with [`SLOTS`]).
fn ascending_slot(i: u64, seed: u64) -> u64 {
    (i.wrapping_mul(7919) % SLOTS + seed * 104_729) % SLOTS
}

/// A pseudo-random permutation: a 4-round Feistel network on 30 bits (a
/// bijection of `0..2^30`), walked until it lands below [`SLOTS`] (which keeps
/// it a bijection of `0..SLOTS`).
fn random_slot(i: u64, seed: u64) -> u64 {
    let round = |half: u64, k: u64| -> u64 {
        let mut z = half ^ (k << 15) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) & 0x7FFF
    };
    let mut x = i % SLOTS;
    loop {
        let (mut l, mut r) = (x >> 15, x & 0x7FFF);
        for k in 0..4 {
            (l, r) = (r, l ^ round(r, k));
        }
        x = (l << 15) | r;
        if x < SLOTS {
            return x;
        }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(rows) = arg(&args, "--rows").and_then(|v| v.parse::<u64>().ok()) else {
        eprintln!("usage: orders-gen --rows N --out FILE [--seed S] [--malformed-every K] [--ascending]");
        std::process::exit(2);
    };
    let out = arg(&args, "--out").unwrap_or_else(|| "orders.csv".into());
    let seed = arg(&args, "--seed").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
    let malformed = arg(&args, "--malformed-every").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ascending = args.iter().any(|a| a == "--ascending");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&out)?);
    writeln!(w, "{}", batchfan_jobs::orders::COLUMNS.join(","))?;
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..rows {
        if malformed > 0 && i % malformed == malformed - 1 {
            writeln!(w, "Europe,France,Fruits,Online,H,not-a-row")?;
            continue;
        }
        let r = next();
        let (region, countries) = REGIONS[(r % 5) as usize];
        let country = countries[((r >> 8) as usize) % countries.len()];
        let (item, price, cost) = ITEMS[((r >> 16) % 6) as usize];
        let channel = if (r >> 20) & 1 == 0 { "Online" } else { "Offline" };
        let priority = ["H", "M", "L", "C"][((r >> 21) % 4) as usize];
        let (m, d, y) = (1 + (r >> 24) % 12, 1 + (r >> 28) % 28, 2010 + (r >> 33) % 8);
        let order_id = 100_000_000 + if ascending { ascending_slot(i, seed) } else { random_slot(i, seed) };
        let units = 1 + (r >> 40) % 10_000;
        let revenue = units as f64 * price;
        let total_cost = units as f64 * cost;
        writeln!(
            w,
            "{region},{country},{item},{channel},{priority},{m}/{d}/{y},{order_id},{m}/{}/{y},{units},{price:.2},{cost:.2},{revenue:.2},{total_cost:.2},{:.2}",
            (d % 28) + 1,
            revenue - total_cost
        )?;
    }
    w.flush()
}
