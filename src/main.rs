//! The `batchfan` binary: see `batchfan --help`.

fn main() {
    std::process::exit(batchfan::cli::main());
}
