//! The single-process baseline for `orders`: the same work as the pipeline
//! (parse, ConfirmationId, Orders table rows in the same SQLite table store,
//! output lines in input order, rejects) in one thread, in one process. It
//! writes the rows in chunks of [`orders::WRITE_ROWS`] (50,000), one
//! `put_rows` each, as a child writes its range (30,000 rows in the spec) in
//! one.
//!
//! `orders-baseline INPUT STATE_DIR` prints `rows rejected seconds`.

batchfan_jobs::mimalloc_allocator!();

use std::time::Instant;

use batchfan::table::{sqlite::SqliteTable, Table};
use batchfan_jobs::orders::{self, Processed};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(state)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: orders-baseline INPUT STATE_DIR");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let code = rt.block_on(async {
        let t = Instant::now();
        let table = match SqliteTable::open(&std::path::Path::new(state).join("tables")) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        let text = match std::fs::read_to_string(input) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {input}: {e}");
                return 1;
            }
        };
        let body = batchfan::plan::csv::record_end(text.as_bytes()).map_or("", |(n, _)| &text[n..]);
        let mut out = Processed::default();
        for (chunk, first_line) in orders::record_chunks(body, 2, orders::WRITE_ROWS) {
            orders::process("baseline", chunk, first_line, &mut out);
            if let Err(e) = table.put_rows(orders::DEFAULT_TABLE, out.take_rows()).await {
                eprintln!("error: {e}");
                return 1;
            }
        }
        let out_path = std::path::Path::new(state).join("baseline-output.csv");
        if let Err(e) = std::fs::write(&out_path, out.output.as_bytes()) {
            eprintln!("error: {e}");
            return 1;
        }
        println!("{} {} {:.3}", out.rows, out.rejected, t.elapsed().as_secs_f64());
        0
    });
    std::process::exit(code);
}
