//! The signed webhook, identical for `batchfan serve` and the Lambda Function URL.
//!
//! A sender signs `"{timestamp}.{delivery id}.{body}"` with HMAC-SHA256 under
//! the pipeline's secret and sends three headers:
//!
//! | header | value |
//! | --- | --- |
//! | `X-Batchfan-Timestamp` | Unix seconds when the request was signed |
//! | `X-Batchfan-Delivery` | a unique id per delivery (1..=200 visible ASCII characters, no `.`): the idempotency key |
//! | `X-Batchfan-Signature` | `sha256=` + lowercase hex of the HMAC |
//!
//! The delivery id is signed, so a captured request cannot be resent under a
//! new id: a replay within the window carries the same id and answers the
//! same run (no new run), and a replay with another id no longer verifies.
//! The id has no `.`, and the timestamp is digits, so the signed string splits
//! one way only. A signature verified once is therefore accepted at most once
//! within the window, whatever the other headers say.
//!
//! The body is optional JSON: `{"params": {"k": "v"}, "input": "s3://bucket/key"}`.
//! [`verify`] checks size first, then the delivery id's shape, then the
//! signature (constant-time), then the replay window, and only then parses the
//! body, so an unsigned request never has its body interpreted.
//!
//! ```
//! use batchfan::trigger::webhook::{sign, verify, WebhookRequest, DEFAULT_MAX_BODY};
//! let sig = sign(b"s3cret", "1700000000", "d-1", b"");
//! let req = WebhookRequest { timestamp: Some("1700000000"), signature: Some(&sig), delivery: Some("d-1"), body: b"" };
//! assert_eq!(verify(b"s3cret", &req, 1_700_000_030, DEFAULT_MAX_BODY).unwrap().id, "d-1");
//! let replayed = WebhookRequest { delivery: Some("d-2"), ..req };
//! assert!(verify(b"s3cret", &replayed, 1_700_000_030, DEFAULT_MAX_BODY).is_err());
//! ```

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::objects::ObjectRef;
use crate::run::{TriggerEvent, TriggerSource};

/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Batchfan-Timestamp";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Batchfan-Signature";
/// Header carrying the delivery id (idempotency key, part of the signed string).
pub const DELIVERY_HEADER: &str = "X-Batchfan-Delivery";
/// Largest accepted body by default (256 KiB, as an SNS message).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;
/// Largest accepted clock difference between signer and receiver.
pub const REPLAY_WINDOW_SECS: i64 = 5 * 60;
/// Longest accepted delivery id.
pub const MAX_DELIVERY_ID: usize = 200;

/// What arrived: header values (if present) and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub delivery: Option<&'a str>,
    pub body: &'a [u8],
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub params: BTreeMap<String, String>,
    pub input: Option<ObjectRef>,
}

impl Delivery {
    /// The trigger this delivery starts; the delivery id is the idempotency key.
    pub fn into_trigger(self, pipeline: &str) -> TriggerEvent {
        TriggerEvent {
            pipeline: pipeline.to_string(),
            source: TriggerSource::Webhook,
            idempotency_key: format!("webhook:{}", self.id),
            input: self.input,
            params: self.params,
        }
    }
}

/// Why a webhook request was rejected. [`WebhookError::status`] is the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The body is over the pipeline's `max_body_bytes`.
    #[error("body is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The timestamp or signature header is missing.
    #[error("missing header {0}: sign the request as the README's webhook section shows")]
    MissingHeader(&'static str),
    /// The timestamp is not Unix seconds.
    #[error("{TIMESTAMP_HEADER} {0:?} is not Unix seconds")]
    BadTimestamp(String),
    /// Signed more than [`REPLAY_WINDOW_SECS`] away from now.
    #[error("timestamp is {skew_secs} s away from this server's clock (window ±{REPLAY_WINDOW_SECS} s): re-sign the request now")]
    Stale { skew_secs: i64 },
    /// The HMAC does not match.
    #[error("signature does not match: sign \"{{timestamp}}.{{delivery id}}.{{body}}\" with HMAC-SHA256 under the pipeline's secret, send sha256=<hex>")]
    BadSignature,
    /// The delivery id header is missing.
    #[error("missing header {DELIVERY_HEADER}: send a unique id per delivery (a uuid), signed as \"{{timestamp}}.{{delivery id}}.{{body}}\"")]
    MissingDelivery,
    /// The delivery id is not a valid id.
    #[error("{DELIVERY_HEADER} {0:?} must be 1..={MAX_DELIVERY_ID} visible ASCII characters other than '.': send a unique id per delivery (a uuid)")]
    BadDelivery(String),
    /// The (signed) body is not the expected JSON.
    #[error("body is not valid: {0} (expected {{\"params\": {{\"k\": \"v\"}}, \"input\": \"s3://bucket/key\"}}, both optional)")]
    BadBody(String),
}

impl WebhookError {
    /// The HTTP status code for this rejection.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::TooLarge { .. } => 413,
            WebhookError::MissingHeader(_)
            | WebhookError::BadTimestamp(_)
            | WebhookError::Stale { .. }
            | WebhookError::BadSignature => 401,
            WebhookError::MissingDelivery | WebhookError::BadDelivery(_) | WebhookError::BadBody(_) => 400,
        }
    }

    /// A short stable name of the reason, for counting refusals.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::TooLarge { .. } => "too-large",
            WebhookError::MissingHeader(_) => "unsigned",
            WebhookError::BadTimestamp(_) => "bad-timestamp",
            WebhookError::Stale { .. } => "stale",
            WebhookError::BadSignature => "bad-signature",
            WebhookError::MissingDelivery | WebhookError::BadDelivery(_) => "bad-delivery-id",
            WebhookError::BadBody(_) => "bad-body",
        }
    }
}

/// `sha256=<hex>` of `"{timestamp}.{delivery}.{body}"` under `secret`.
pub fn sign(secret: &[u8], timestamp: &str, delivery: &str, body: &[u8]) -> String {
    let mac = signed_string(secret, timestamp, delivery, body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn signed_string(secret: &[u8], timestamp: &str, delivery: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(delivery.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks a delivery id's shape: 1..=[`MAX_DELIVERY_ID`] visible ASCII characters, no `.`.
pub fn check_delivery_id(id: &str) -> Result<(), WebhookError> {
    if id.is_empty() || id.len() > MAX_DELIVERY_ID || !id.bytes().all(|b| b.is_ascii_graphic() && b != b'.') {
        return Err(WebhookError::BadDelivery(id.chars().take(MAX_DELIVERY_ID + 1).collect()));
    }
    Ok(())
}

/// Checks a request against `secret` at time `now_unix` (seconds).
pub fn verify(
    secret: &[u8],
    request: &WebhookRequest<'_>,
    now_unix: i64,
    max_body: usize,
) -> Result<Delivery, WebhookError> {
    if request.body.len() > max_body {
        return Err(WebhookError::TooLarge { size: request.body.len(), limit: max_body });
    }
    let id = request.delivery.ok_or(WebhookError::MissingDelivery)?.trim();
    check_delivery_id(id)?;
    let timestamp = request.timestamp.ok_or(WebhookError::MissingHeader(TIMESTAMP_HEADER))?.trim();
    let signature = request.signature.ok_or(WebhookError::MissingHeader(SIGNATURE_HEADER))?.trim();
    let given = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(WebhookError::BadSignature)?;
    signed_string(secret, timestamp, id, request.body)
        .verify_slice(&given)
        .map_err(|_| WebhookError::BadSignature)?;
    let signed_at: i64 = timestamp.parse().map_err(|_| WebhookError::BadTimestamp(timestamp.to_string()))?;
    let skew_secs = now_unix.saturating_sub(signed_at);
    if skew_secs.abs() > REPLAY_WINDOW_SECS {
        return Err(WebhookError::Stale { skew_secs });
    }
    let body = parse_body(request.body)?;
    let input = match body.input {
        Some(uri) => {
            Some(uri.parse::<ObjectRef>().map_err(|e| WebhookError::BadBody(format!("input {uri:?}: {e}")))?)
        }
        None => None,
    };
    Ok(Delivery { id: id.to_string(), params: body.params, input })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    input: Option<String>,
}

fn parse_body(body: &[u8]) -> Result<Body, WebhookError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Body::default());
    }
    serde_json::from_slice(body).map_err(|e| WebhookError::BadBody(e.to_string()))
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
