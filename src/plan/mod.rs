//! The planner: sizes the work of a run and packs it into one [`WorkItem`]
//! per array child.
//!
//! A strategy ([`crate::spec::Planner`]) turns the run's input into *units*
//! (JSON values: a byte range of lines, an object key, a number); [`Sizing`]
//! decides how many units go in one child and how many shards (arrays of at
//! most `max_array_size` children) a stage needs; [`pack`] makes the work items.

pub mod csv;
pub mod lines;
pub mod sizing;
pub mod strategies;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::sizing::Sizing;

/// The work of one array child: the units it processes, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Global child index across shards (0-based).
    pub index: u64,
    pub units: Vec<Value>,
}

/// A line-range unit of the `lines` planner: bytes `start..end` of the input,
/// whose first line is line number `line` (1-based, counting the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRange {
    pub start: u64,
    pub end: u64,
    pub line: u64,
}

/// Errors of planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The run's input object does not exist.
    #[error("input {0} does not exist: check the uri, or upload the file first")]
    MissingInput(String),
    /// The strategy needs an input and none was given.
    #[error("planner '{0}' needs an input: pass --input URI")]
    NoInput(String),
    /// The custom planner command failed or printed something that is not JSON.
    #[error("custom planner: {0}")]
    Custom(String),
    /// A quoted field runs to the end of the input.
    #[error(
        "the quoted field opened on line {line} is never closed: close it with a \", and write a quote inside a field as \"\""
    )]
    UnterminatedQuote {
        /// Line (1-based, counting the header) the quoted field starts on.
        line: u64,
    },
    /// `header = true` with `columns`, and the first row is data.
    #[error(
        "the file has no header row: its first row is data ({first}): add the header row ({expected}), or set header = false"
    )]
    NoHeader {
        /// The first row, as found.
        first: String,
        /// The expected columns, comma-separated.
        expected: String,
    },
    /// `header = true` with `columns`, and the header row names other columns.
    #[error("the header row does not match the expected columns ({detail}): expected {expected}, found {found}: fix the header row")]
    Header {
        /// The expected columns, comma-separated.
        expected: String,
        /// The header row, as found.
        found: String,
        /// The first difference.
        detail: String,
    },
    /// A parameter value is not usable.
    #[error("{0}")]
    Invalid(String),
    /// The object store failed.
    #[error(transparent)]
    Port(#[from] crate::error::PortError),
}

/// A `range` run's work items are computed, not stored: child `index` of a
/// run of `units` units packed `per` to a child gets what [`pack`] gives it
/// from `0..units`; `None` past the last child.
pub fn range_item(units: u64, per: u64, index: u64) -> Option<WorkItem> {
    let per = per.max(1);
    let start = index.checked_mul(per).filter(|s| *s < units)?;
    let end = start.saturating_add(per).min(units);
    Some(WorkItem { index, units: (start..end).map(Value::from).collect() })
}

/// What the submitter puts in a `range` run's [`crate::env::RANGE`]: `{units}:{per}`.
pub fn range_pointer(sizing: &Sizing) -> String {
    format!("{}:{}", sizing.units, sizing.items_per_child)
}

/// Reads a [`range_pointer`] back as `(units, per)`.
pub fn parse_range_pointer(text: &str) -> Option<(u64, u64)> {
    let (units, per) = text.split_once(':')?;
    Some((units.parse().ok()?, per.parse().ok().filter(|p| *p >= 1)?))
}

/// Packs units into work items of `sizing.items_per_child` units each.
pub fn pack(units: Vec<Value>, sizing: &Sizing) -> Vec<WorkItem> {
    let per = sizing.items_per_child.max(1) as usize;
    let mut items = Vec::with_capacity(units.len().div_ceil(per));
    let mut it = units.into_iter().peekable();
    let mut index = 0;
    while it.peek().is_some() {
        items.push(WorkItem { index, units: it.by_ref().take(per).collect() });
        index += 1;
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_item_is_what_packing_the_range_gives_that_child() {
        for (units, per) in [(0, 1), (1, 1), (10, 3), (1000, 10), (25_001, 7)] {
            let sizing = Sizing::new(units, per, 10_000);
            let packed = pack((0..units).map(Value::from).collect(), &sizing);
            let (u, p) = parse_range_pointer(&range_pointer(&sizing)).expect("a range pointer reads back");
            for item in &packed {
                assert_eq!(
                    range_item(u, p, item.index).as_ref(),
                    Some(item),
                    "{units} units, {per} per child"
                );
            }
            assert_eq!(range_item(u, p, packed.len() as u64), None, "past the last child");
        }
        assert_eq!(range_item(10, 5, u64::MAX), None, "no overflow");
        assert_eq!(parse_range_pointer("10:0"), None);
        assert_eq!(parse_range_pointer("x:1"), None);
        assert_eq!(parse_range_pointer("10"), None);
    }
}
