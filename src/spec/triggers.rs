//! The `[triggers]` section: manual runs, cron, S3 puts, webhook.

use std::path::PathBuf;

use super::{
    reader::{Reader, Tab},
    validate, CatchUpPolicy, CronTrigger, OverlapPolicy, S3Trigger, SecretSource, Triggers, WebhookTrigger,
};
use crate::objects::{check_bucket, ObjectRef};

/// Webhook body limit when not set.
pub const DEFAULT_MAX_BODY_BYTES: usize = 262_144;
/// How long a file dropped into a watched bucket must stay unchanged before it starts a run.
pub const DEFAULT_SETTLE_SECS: u64 = 2;
/// Longest settle time.
pub const MAX_SETTLE_SECS: i64 = 3600;

const SECRET_KEYS: [&str; 4] = ["secret_env", "secret_file", "secret_ssm", "secret_secretsmanager"];

/// Reads `[triggers]` (absent: manual runs only).
pub(crate) fn read_triggers(r: &mut Reader<'_>, root: &Tab<'_>) -> Triggers {
    let mut triggers = Triggers { manual: true, ..Triggers::default() };
    let Some(t) = r.table(root, "triggers") else { return triggers };
    r.check_keys(&t, &["manual", "cron", "s3", "webhook"]);
    if let Some(m) = r.boolean(&t, "manual") {
        triggers.manual = m.v;
    }
    triggers.cron = r.table(&t, "cron").and_then(|c| read_cron(r, &c));
    triggers.s3 = r.table(&t, "s3").and_then(|s| read_s3(r, &s));
    triggers.webhook = r.table(&t, "webhook").and_then(|w| read_webhook(r, &w));
    triggers
}

fn read_cron(r: &mut Reader<'_>, t: &Tab<'_>) -> Option<CronTrigger> {
    r.check_keys(t, &["schedule", "timezone", "overlap", "catch_up", "input"]);
    let schedule = r.string(t, "schedule");
    if t.get("schedule").is_none() {
        r.missing(t, "schedule", "\"0 0 2 * * *\" (sec min hour day month weekday)");
    }
    if let Some(s) = &schedule {
        if let Err(m) = validate::cron(&s.v) {
            r.error(&s.span, m);
        }
    }
    let timezone = r.string(t, "timezone").map_or_else(
        || "UTC".to_owned(),
        |tz| {
            if let Err(m) = validate::timezone(&tz.v) {
                r.error(&tz.span, m);
            }
            tz.v
        },
    );
    let overlap = match r.choice(t, "overlap", &["skip", "queue", "allow"], false).map(|c| c.v) {
        Some(1) => OverlapPolicy::Queue,
        Some(2) => OverlapPolicy::Allow,
        _ => OverlapPolicy::Skip,
    };
    let catch_up = match r.choice(t, "catch_up", &["none", "latest"], false).map(|c| c.v) {
        Some(1) => CatchUpPolicy::Latest,
        _ => CatchUpPolicy::None,
    };
    let input = r.string(t, "input").map(|i| {
        if let Err(m) = i.v.parse::<ObjectRef>() {
            r.error(&i.span, format!("input: {m}"));
        }
        i.v
    });
    Some(CronTrigger { schedule: schedule?.v, timezone, overlap, catch_up, input })
}

fn read_s3(r: &mut Reader<'_>, t: &Tab<'_>) -> Option<S3Trigger> {
    r.check_keys(t, &["bucket", "prefix", "suffix", "settle_seconds"]);
    let bucket = r.string(t, "bucket");
    if t.get("bucket").is_none() {
        r.missing(t, "bucket", "\"my-input-bucket\"");
    }
    if let Some(b) = &bucket {
        if let Err(e) = check_bucket(&b.v) {
            r.error(&b.span, e.message());
        }
    }
    let prefix = r.string(t, "prefix").map(|p| p.v).unwrap_or_default();
    let suffix = r.string(t, "suffix").map(|s| s.v).unwrap_or_default();
    let mut settle_secs = DEFAULT_SETTLE_SECS;
    if let Some(m) = r.int(t, "settle_seconds") {
        if (0..=MAX_SETTLE_SECS).contains(&m.v) {
            settle_secs = m.v as u64;
        } else {
            r.error(
                &m.span,
                format!(
                    "settle_seconds {} is out of range: use 0 to {MAX_SETTLE_SECS} (how long a dropped file must stay unchanged), e.g. settle_seconds = {DEFAULT_SETTLE_SECS}",
                    m.v
                ),
            );
        }
    }
    Some(S3Trigger { bucket: bucket?.v, prefix, suffix, settle_secs })
}

fn read_webhook(r: &mut Reader<'_>, t: &Tab<'_>) -> Option<WebhookTrigger> {
    let mut allowed = vec!["enabled", "max_body_bytes", "secret"];
    allowed.extend(SECRET_KEYS);
    r.check_keys(t, &allowed);
    let enabled = r.boolean(t, "enabled").is_none_or(|e| e.v);
    if let Some(span) = t.key_span("secret").or_else(|| t.get("secret").and_then(|(_, s)| s)) {
        r.error(
            &Some(span),
            "secret holds the secret itself: never put the secret in the spec; name where it is with secret_env, secret_file, secret_ssm or secret_secretsmanager",
        );
    }
    let mut found = Vec::new();
    for key in SECRET_KEYS {
        if let Some(s) = r.string(t, key) {
            if s.v.is_empty() {
                r.error(
                    &s.span,
                    format!("{key} is empty: name the secret's location, e.g. {key} = \"HOOK_SECRET\""),
                );
            }
            found.push((key, s));
        }
    }
    if found.len() > 1 {
        let names: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
        r.error(
            &found[1].1.span,
            format!("the webhook sets {}: keep exactly one secret source", names.join(" and ")),
        );
    }
    // A disabled webhook needs no secret: it answers nothing.
    if enabled
        && found.is_empty()
        && t.get("secret").is_none()
        && SECRET_KEYS.iter().all(|k| t.get(k).is_none())
    {
        r.error(
            &t.span,
            "[triggers.webhook] has no secret source: add one of secret_env, secret_file, secret_ssm, secret_secretsmanager, e.g. secret_env = \"HOOK_SECRET\"",
        );
    }
    let mut max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    if let Some(m) = r.int(t, "max_body_bytes") {
        if (1..=validate::MAX_WEBHOOK_BODY).contains(&m.v) {
            max_body_bytes = m.v as usize;
        } else {
            r.error(
                &m.span,
                format!(
                    "max_body_bytes {} is out of range: use 1 to {} (the Lambda request limit), e.g. max_body_bytes = {DEFAULT_MAX_BODY_BYTES}",
                    m.v,
                    validate::MAX_WEBHOOK_BODY
                ),
            );
        }
    }
    let secret = found.into_iter().next().map(|(key, source)| match key {
        "secret_env" => SecretSource::Env(source.v),
        "secret_file" => SecretSource::File(PathBuf::from(source.v)),
        "secret_ssm" => SecretSource::Ssm(source.v),
        _ => SecretSource::SecretsManager(source.v),
    });
    if enabled && secret.is_none() {
        return None;
    }
    Some(WebhookTrigger { enabled, secret, max_body_bytes })
}
