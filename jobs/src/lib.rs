//! Example jobs for batchfan: the `orders` workload (seed 001) and the
//! FANOUT-N yardstick. The binaries in `src/bin` are thin over these modules.

pub mod fanout;
pub mod orders;
