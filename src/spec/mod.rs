//! Pipeline specs: one TOML file per pipeline, parsed with positions so every
//! problem is reported as `file:line:col: message (fix)`.
//!
//! ```
//! let text = r#"
//! name = "orders"
//! [planner]
//! strategy = "range"
//! count = 10
//! [[stages]]
//! name = "confirm"
//! command = ["orders-confirm"]
//! "#;
//! let spec = batchfan::spec::load_str(text, "orders.toml", std::path::Path::new(".")).unwrap();
//! assert_eq!(spec.job_queue, "batchfan-orders");
//! let err = batchfan::spec::load_str("name = 1", "x.toml", std::path::Path::new(".")).unwrap_err();
//! // Every problem is reported, one per line, in text order.
//! assert!(err.to_string().lines().any(|l| l.starts_with("x.toml:1:8: name in the top level must be a string")));
//! ```

mod jobs;
mod model;
pub mod overrides;
pub mod parse;
mod platform;
mod reader;
mod sections;
mod stages;
mod suggest;
mod triggers;
pub mod validate;

pub use self::{
    jobs::{DEFAULT_ATTEMPTS, DEFAULT_IMAGE, DEFAULT_MEMORY_MIB, DEFAULT_VCPUS},
    model::*,
    parse::{load, load_str, SpecError, SpecErrors},
    platform::{Compute, LocalSettings},
    sections::{DEFAULT_LINES_PER_ITEM, DEFAULT_TABLE},
    stages::{DEFAULT_AGGREGATION_COMMAND, DEFAULT_CLEANUP_COMMAND},
    triggers::DEFAULT_MAX_BODY_BYTES,
};
