//! Example jobs for batchfan: the `orders` workload (seed 001) and the
//! FANOUT-N yardstick. The binaries in `src/bin` are thin over these modules.

pub mod fanout;
pub mod orders;

/// Every job binary allocates through mimalloc: the orders rows are many
/// small strings and maps, where it is markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
