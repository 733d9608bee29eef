//! The signed webhook, identical for `batchfan serve` and the Lambda Function URL.
//!
//! A sender signs `"{timestamp}.{body}"` with HMAC-SHA256 under the pipeline's
//! secret and sends three headers:
//!
//! | header | value |
//! | --- | --- |
//! | `X-Batchfan-Timestamp` | Unix seconds when the request was signed |
//! | `X-Batchfan-Signature` | `sha256=` + lowercase hex of the HMAC |
//! | `X-Batchfan-Delivery` | a unique id per delivery: the idempotency key |
//!
//! The body is optional JSON: `{"params": {"k": "v"}, "input": "s3://bucket/key"}`.
//! [`verify`] checks size first, then the signature (constant-time), then the
//! replay window, and only then parses the body, so an unsigned request never
//! has its body interpreted.

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
/// Header carrying the delivery id (idempotency key).
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
    #[error("body is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("missing header {0}: sign the request as the README's webhook section shows")]
    MissingHeader(&'static str),
    #[error("{TIMESTAMP_HEADER} {0:?} is not Unix seconds")]
    BadTimestamp(String),
    #[error("timestamp is {skew_secs} s away from this server's clock (window ±{REPLAY_WINDOW_SECS} s): re-sign the request now")]
    Stale { skew_secs: i64 },
    #[error("signature does not match: sign \"{{timestamp}}.{{body}}\" with HMAC-SHA256 under the pipeline's secret, send sha256=<hex>")]
    BadSignature,
    #[error("{DELIVERY_HEADER} {0:?} must be 1..={MAX_DELIVERY_ID} visible ASCII characters")]
    BadDelivery(String),
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
            WebhookError::BadDelivery(_) | WebhookError::BadBody(_) => 400,
        }
    }
}

/// `sha256=<hex>` of `"{timestamp}.{body}"` under `secret`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
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
    let timestamp = request.timestamp.ok_or(WebhookError::MissingHeader(TIMESTAMP_HEADER))?.trim();
    let signature = request.signature.ok_or(WebhookError::MissingHeader(SIGNATURE_HEADER))?.trim();
    let given = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(WebhookError::BadSignature)?;
    let mut mac = mac(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(request.body);
    mac.verify_slice(&given).map_err(|_| WebhookError::BadSignature)?;
    let signed_at: i64 = timestamp.parse().map_err(|_| WebhookError::BadTimestamp(timestamp.to_string()))?;
    let skew_secs = now_unix.saturating_sub(signed_at);
    if skew_secs.abs() > REPLAY_WINDOW_SECS {
        return Err(WebhookError::Stale { skew_secs });
    }
    let id = request.delivery.ok_or(WebhookError::MissingHeader(DELIVERY_HEADER))?.trim();
    if id.is_empty() || id.len() > MAX_DELIVERY_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebhookError::BadDelivery(id.chars().take(MAX_DELIVERY_ID + 1).collect()));
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
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";
    const NOW: i64 = 1_700_000_000;

    fn request<'a>(ts: &'a str, sig: &'a str, body: &'a [u8]) -> WebhookRequest<'a> {
        WebhookRequest { timestamp: Some(ts), signature: Some(sig), delivery: Some("d-1"), body }
    }

    #[test]
    fn accepts_a_signed_request_and_reads_its_body() {
        let body = br#"{"params":{"day":"2026-11-23"},"input":"s3://inbox/orders.csv"}"#;
        let sig = sign(SECRET, "1700000000", body);
        let d = verify(SECRET, &request("1700000000", &sig, body), NOW + 10, DEFAULT_MAX_BODY).unwrap();
        assert_eq!(d.id, "d-1");
        assert_eq!(d.params["day"], "2026-11-23");
        assert_eq!(d.input.unwrap().to_string(), "s3://inbox/orders.csv");
        let t = verify(SECRET, &request("1700000000", &sig, body), NOW, DEFAULT_MAX_BODY)
            .unwrap()
            .into_trigger("orders");
        assert_eq!(t.idempotency_key, "webhook:d-1");
        assert_eq!(t.source, TriggerSource::Webhook);
    }

    #[test]
    fn an_empty_body_is_a_run_without_params() {
        let sig = sign(SECRET, "1700000000", b"");
        let d = verify(SECRET, &request("1700000000", &sig, b""), NOW, DEFAULT_MAX_BODY).unwrap();
        assert!(d.params.is_empty() && d.input.is_none());
    }

    #[test]
    fn rejects_wrong_secret_tampered_body_and_missing_headers() {
        let sig = sign(b"other", "1700000000", b"{}");
        assert_eq!(
            verify(SECRET, &request("1700000000", &sig, b"{}"), NOW, 1024),
            Err(WebhookError::BadSignature)
        );
        let sig = sign(SECRET, "1700000000", b"{}");
        assert_eq!(
            verify(SECRET, &request("1700000000", &sig, b"{ }"), NOW, 1024),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, &request("1700000001", &sig, b"{}"), NOW, 1024),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, &request("1700000000", "sha256=zz", b"{}"), NOW, 1024),
            Err(WebhookError::BadSignature)
        );
        let mut r = request("1700000000", &sig, b"{}");
        r.signature = None;
        let e = verify(SECRET, &r, NOW, 1024).unwrap_err();
        assert_eq!((e.status(), e), (401, WebhookError::MissingHeader(SIGNATURE_HEADER)));
        let mut r = request("1700000000", &sig, b"{}");
        r.delivery = None;
        assert_eq!(verify(SECRET, &r, NOW, 1024), Err(WebhookError::MissingHeader(DELIVERY_HEADER)));
    }

    #[test]
    fn rejects_stale_and_future_timestamps_outside_five_minutes() {
        let sig = sign(SECRET, "1700000000", b"");
        assert!(verify(SECRET, &request("1700000000", &sig, b""), NOW + 300, 1024).is_ok());
        let e = verify(SECRET, &request("1700000000", &sig, b""), NOW + 301, 1024).unwrap_err();
        assert_eq!((e.status(), e), (401, WebhookError::Stale { skew_secs: 301 }));
        assert_eq!(
            verify(SECRET, &request("1700000000", &sig, b""), NOW - 301, 1024),
            Err(WebhookError::Stale { skew_secs: -301 })
        );
        let sig = sign(SECRET, "soon", b"");
        assert_eq!(
            verify(SECRET, &request("soon", &sig, b""), NOW, 1024),
            Err(WebhookError::BadTimestamp("soon".into()))
        );
    }

    #[test]
    fn rejects_oversized_bodies_before_anything_else() {
        let body = vec![b' '; 1025];
        let e = verify(
            SECRET,
            &WebhookRequest { timestamp: None, signature: None, delivery: None, body: &body },
            NOW,
            1024,
        )
        .unwrap_err();
        assert_eq!((e.status(), e), (413, WebhookError::TooLarge { size: 1025, limit: 1024 }));
    }

    #[test]
    fn rejects_a_signed_but_malformed_body_or_delivery_id_with_400() {
        let sig = sign(SECRET, "1700000000", b"{\"param\":1}");
        let e = verify(SECRET, &request("1700000000", &sig, b"{\"param\":1}"), NOW, 1024).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("unknown field"), "{e}");
        let sig = sign(SECRET, "1700000000", b"");
        let mut r = request("1700000000", &sig, b"");
        r.delivery = Some("has space");
        assert_eq!(verify(SECRET, &r, NOW, 1024).unwrap_err().status(), 400);
    }
}
