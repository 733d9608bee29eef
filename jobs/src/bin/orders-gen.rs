//! Generates the `orders` sales CSV (seed 001's 14 columns, unique Order IDs).
//!
//! `orders-gen --rows N --out FILE [--seed S] [--malformed-every K]`

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

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(rows) = arg(&args, "--rows").and_then(|v| v.parse::<u64>().ok()) else {
        eprintln!("usage: orders-gen --rows N --out FILE [--seed S] [--malformed-every K]");
        std::process::exit(2);
    };
    let out = arg(&args, "--out").unwrap_or_else(|| "orders.csv".into());
    let seed = arg(&args, "--seed").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
    let malformed = arg(&args, "--malformed-every").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
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
        // A bijection on 0..900M (7919 is coprime with it): Order IDs are unique.
        let order_id = 100_000_000 + (i.wrapping_mul(7919) + seed * 104_729) % 900_000_000;
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
