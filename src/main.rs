//! The `batchfan` binary: see `batchfan --help`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(batchfan::cli::main());
}
