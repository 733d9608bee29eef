//! How many units per child, children per shard and shards a run gets.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Most shards per stage batchfan plans (4,000,000 children at 10,000 per shard);
/// past that, items per child is raised.
pub const MAX_SHARDS: u64 = 400;

/// The shape of a run's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizing {
    /// Planner units in the run.
    pub units: u64,
    /// Units per child.
    pub items_per_child: u64,
    /// Children per stage (0 for an empty input: the run has no stage jobs).
    pub children: u64,
    /// Children per shard (the last shard may have fewer).
    pub shard_size: u64,
    /// Shards per stage.
    pub shards: u64,
}

impl Sizing {
    /// Sizes `units` with at least `items_per_child` units per child and at most
    /// `max_array_size` children per array.
    pub fn new(units: u64, items_per_child: u64, max_array_size: u32) -> Sizing {
        let max_array = u64::from(max_array_size.max(1));
        let mut per = items_per_child.max(1);
        if units.div_ceil(per) > max_array * MAX_SHARDS {
            per = units.div_ceil(max_array * MAX_SHARDS);
        }
        let children = units.div_ceil(per);
        let shards = children.div_ceil(max_array);
        // Spread children evenly so no shard is a lone 1-child job when avoidable.
        let shard_size = if shards == 0 { 0 } else { children.div_ceil(shards) };
        Sizing { units, items_per_child: per, children, shard_size, shards }
    }

    /// Global child indexes of shard `j`.
    pub fn shard_range(&self, j: u64) -> Range<u64> {
        let start = (j * self.shard_size).min(self.children);
        let end = ((j + 1) * self.shard_size).min(self.children);
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_runs_are_one_shard() {
        let s = Sizing::new(10, 1, 10_000);
        assert_eq!((s.children, s.shards, s.shard_size), (10, 1, 10));
        assert_eq!(s.shard_range(0), 0..10);
    }

    #[test]
    fn empty_input_has_no_children() {
        let s = Sizing::new(0, 1, 10_000);
        assert_eq!((s.children, s.shards), (0, 0));
    }

    #[test]
    fn past_ten_thousand_children_shards_evenly() {
        let s = Sizing::new(25_000, 1, 10_000);
        assert_eq!((s.children, s.shards, s.shard_size), (25_000, 3, 8_334));
        assert_eq!(s.shard_range(2), 16_668..25_000);
        let total: u64 = (0..s.shards).map(|j| s.shard_range(j).count() as u64).sum();
        assert_eq!(total, 25_000);
    }

    #[test]
    fn huge_runs_pack_more_items_per_child() {
        let s = Sizing::new(1_000_000_000, 1, 10_000);
        assert!(s.shards <= MAX_SHARDS);
        assert!(s.shard_size <= 10_000);
        assert!(s.items_per_child * s.children >= s.units);
    }
}
