//! Trigger parsing shared by `batchfan serve` and the trigger Lambda: every
//! source is normalised into one [`crate::run::TriggerEvent`]; refused
//! webhook requests are counted ([`refusals`]) rather than shown one by one.

pub mod refusals;
pub mod webhook;
