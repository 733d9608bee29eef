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
