//! Trigger parsing shared by `batchfan serve` and the trigger Lambda: every
//! source is normalised into one [`crate::run::TriggerEvent`].

pub mod webhook;
