//! Example jobs for batchfan: the `orders` workload (seed 001) and the
//! FANOUT-N yardstick. The binaries in `src/bin` are thin over these modules.

pub mod fanout;
pub mod orders;

pub use mimalloc::MiMalloc;

/// Makes mimalloc the binary's allocator. The `orders` binaries use it: their
/// rows are many small strings and maps, where it is markedly faster than
/// the system allocator. The FANOUT binaries do not: a one-item child
/// allocates a few kilobytes and exits, and mimalloc's start-up (reserving
/// and committing its first arena, before `main`) and its exit cost such a
/// process more than all its allocations do with glibc's allocator (see the
/// README, "Performance").
#[macro_export]
macro_rules! mimalloc_allocator {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::MiMalloc = $crate::MiMalloc;
    };
}
