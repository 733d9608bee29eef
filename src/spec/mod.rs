//! Pipeline specs: one TOML file per pipeline, parsed with positions so every
//! problem is reported as `file:line:col: message (fix)`.

mod model;
pub mod parse;
pub mod validate;

pub use self::{
    model::*,
    parse::{load, load_str, SpecError, SpecErrors},
};
