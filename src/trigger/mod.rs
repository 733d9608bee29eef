//! Trigger parsing shared by `batchfan serve` and the trigger Lambda: every
//! source is normalised into one [`crate::run::TriggerEvent`]; refused
//! webhook requests are counted ([`refusals`]) rather than shown one by one.

pub mod cron;
pub mod refusals;
pub mod request_id;
pub mod webhook;

pub use self::request_id::{check_request_id, RequestIdError, MAX_REQUEST_ID, REQUEST_ID_CHARS};
