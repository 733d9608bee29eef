//! The signed webhook through a Lambda Function URL: HTTP in, HTTP out.
//!
//! `POST /` (or `/{pipeline}`) with the headers of [`batchfan::trigger::webhook`]
//! answers `202 {"run_id": ...}`; a duplicate delivery id answers the same run
//! (the id is signed: a replay under a new id is a 401). Rejections: 400
//! (missing or malformed delivery id, malformed body, unknown parameter), 401
//! (unsigned, bad signature, outside the ±5 min window), 404 (no webhook on
//! this pipeline, other paths), 405 (not POST), 413 (body too large); 500/503
//! when the deployment or AWS fails. The body is only parsed after the
//! signature checks. Rejections are counted and logged at most once a minute
//! per environment with the count ([`batchfan::trigger::refusals`]), so a
//! flood of unsigned requests writes a line a minute, not a line a request.

use aws_lambda_events::{
    http::{header::CONTENT_TYPE, HeaderMap, HeaderValue},
    lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse},
};
use base64::Engine as _;
use batchfan::trigger::webhook::{self, WebhookError, WebhookRequest};
use serde_json::{json, Value};
use tracing::{error, info, warn};

use super::TriggerContext;
use crate::DispatchError;

/// Answers one Function URL request.
pub async fn handle(
    ctx: &TriggerContext,
    req: &LambdaFunctionUrlRequest,
    now_unix: i64,
) -> LambdaFunctionUrlResponse {
    let spec = &ctx.dispatcher.spec;
    let method = req.request_context.http.method.as_deref().unwrap_or("");
    let path = req.raw_path.as_deref().or(req.request_context.http.path.as_deref()).unwrap_or("/");
    let delivery = header(&req.headers, webhook::DELIVERY_HEADER);
    let reject = |status: u16, reason: &str, message: String| {
        let due = lock(&ctx.refusals).record(&spec.name, reason, chrono::Utc::now());
        if let Some(s) = due {
            warn!(count = s.count, total = s.total, detail = %s.detail, status, method, path, last_reason = %message, "webhook rejected {} request(s) since the last such line: no run (at most one line a minute)", s.count);
        }
        response(status, json!({ "error": message }))
    };
    let Some(hook) = spec.triggers.webhook.as_ref().filter(|w| w.enabled) else {
        return reject(
            404,
            "no-webhook",
            format!("pipeline {} has no webhook trigger: enable [triggers.webhook]", spec.name),
        );
    };
    if path != "/" && path.trim_matches('/') != spec.name {
        return reject(404, "wrong-path", format!("no such path {path:?}: POST to / or /{}", spec.name));
    }
    if !method.eq_ignore_ascii_case("POST") {
        let mut r =
            reject(405, "not-post", format!("method {method} is not allowed: POST the signed request"));
        r.headers.insert("allow", HeaderValue::from_static("POST"));
        return r;
    }
    let raw = req.body.as_deref().unwrap_or("");
    let body = if req.is_base64_encoded {
        match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(b) => b,
            Err(e) => {
                return reject(400, "bad-base64", format!("body is marked base64 but does not decode: {e}"))
            }
        }
    } else {
        raw.as_bytes().to_vec()
    };
    if body.len() > hook.max_body_bytes {
        let e = WebhookError::TooLarge { size: body.len(), limit: hook.max_body_bytes };
        return reject(e.status(), e.reason(), e.to_string());
    }
    let Some(secret) = &ctx.webhook_secret else {
        error!(
            "webhook secret is not configured: set BATCHFAN_WEBHOOK_SECRET_PARAMETER to an SSM SecureString"
        );
        return response(500, json!({ "error": "the webhook is not configured on the server" }));
    };
    let request = WebhookRequest {
        timestamp: header(&req.headers, webhook::TIMESTAMP_HEADER),
        signature: header(&req.headers, webhook::SIGNATURE_HEADER),
        delivery,
        body: &body,
    };
    let key = match secret.get().await {
        Ok(k) => k,
        Err(e) => {
            error!(error = %e, "cannot read the webhook secret");
            return response(503, json!({ "error": "the webhook secret is unavailable: retry later" }));
        }
    };
    let mut verified = webhook::verify(&key, &request, now_unix, hook.max_body_bytes);
    if matches!(verified, Err(WebhookError::BadSignature)) {
        // The secret may have been rotated since this environment read it.
        if let Ok(Some(fresh)) = secret.refresh().await {
            verified = webhook::verify(&fresh, &request, now_unix, hook.max_body_bytes);
        }
    }
    let delivery = match verified {
        Ok(d) => d,
        Err(e) => return reject(e.status(), e.reason(), e.to_string()),
    };
    let id = delivery.id.clone();
    match super::plan(ctx, delivery.into_trigger(&spec.name)).await {
        Ok(record) => {
            info!(run_id = %record.run_id, delivery = %id, "webhook accepted");
            response(
                202,
                json!({ "run_id": record.run_id, "pipeline": record.pipeline, "state": record.state, "delivery": id }),
            )
        }
        Err(e @ DispatchError::BadEvent(_)) => reject(400, "bad-params", e.to_string()),
        Err(DispatchError::Run(e)) if !e.retryable() => reject(400, "not-plannable", e.to_string()),
        Err(e) => {
            error!(error = %e, delivery = %id, "webhook not planned");
            response(503, json!({ "error": "the run could not be planned now: deliver again later" }))
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain counters: a panic elsewhere never leaves them half-updated.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn response(status: u16, body: Value) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = i64::from(status);
    r.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.body = Some(body.to_string());
    r
}
