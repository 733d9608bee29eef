//! One task per S3-triggered pipeline: lists the bucket/prefix every poll
//! interval, asks [`super::s3_put::Watch`] which objects are new and complete,
//! and starts one run per object content. Handled objects are remembered in
//! the pipeline's table (`watch#{pipeline}`: a `baseline` marker, then
//! `k#{key}` → etag), after their run is started: a crash in between finds the
//! same run again through the idempotency key. Entries the listing leaves out
//! (symbolic links, non-UTF-8 names) are a notice and a WARN line once each.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::watch;
use tracing::warn;

use super::{
    app::{App, TriggerError},
    s3_put::{object_key, Watch},
};
use crate::{
    error::PortResult,
    objects::{dir::DirObjects, ObjectMeta, ObjectRef},
    run::{record::now_ms, TriggerEvent, TriggerSource},
    table::{Condition, Item, Key, Table},
};

fn pk(pipeline: &str) -> String {
    format!("watch#{pipeline}")
}

/// Keys handled before (key → etag), and whether the baseline was taken.
async fn load(table: &dyn Table, name: &str, pipeline: &str) -> PortResult<(HashMap<String, String>, bool)> {
    let items = table.query(name, &pk(pipeline), "").await?;
    let baseline = items.iter().any(|i| i.key.sk == "baseline");
    let done = items
        .into_iter()
        .filter_map(|i| {
            let key = i.key.sk.strip_prefix("k#")?.to_owned();
            Some((key, i.str("etag")?.to_owned()))
        })
        .collect();
    Ok((done, baseline))
}

async fn remember(
    table: &dyn Table,
    name: &str,
    pipeline: &str,
    handled: &[(String, String)],
) -> PortResult<()> {
    let items = handled
        .iter()
        .map(|(k, etag)| Item::new(Key::new(pk(pipeline), format!("k#{k}"))).with("etag", etag.as_str()))
        .collect();
    table.put_batch(name, items).await
}

/// Watches the pipeline's bucket/prefix until `stop` turns true.
pub async fn run(app: Arc<App>, pipeline: String, every: Duration, mut stop: watch::Receiver<bool>) {
    let Some(spec) = app.spec(&pipeline).cloned() else { return };
    let Some(trigger) = spec.triggers.s3.clone() else { return };
    let table = &app.service.backend.table;
    let objects = &app.service.backend.objects;
    let name = spec.storage.table.clone();
    let mut w: Option<Watch> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = poll(&app, &pipeline, &trigger, table, objects, &name, &mut w).await {
            warn!(pipeline, bucket = %trigger.bucket, "watching the bucket: {e}: retrying");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn poll(
    app: &App,
    pipeline: &str,
    trigger: &crate::spec::S3Trigger,
    table: &dyn Table,
    objects: &DirObjects,
    name: &str,
    w: &mut Option<Watch>,
) -> PortResult<()> {
    let (listing, skipped) = objects.list_skipped(&trigger.bucket, &trigger.prefix).await?;
    let watch = match w {
        Some(w) => w,
        None => {
            let (done, baseline) = load(table, name, pipeline).await?;
            let mut fresh = Watch::new(trigger, done);
            if !baseline {
                let handled = fresh.baseline(&listing);
                remember(table, name, pipeline, &handled).await?;
                table
                    .put(
                        name,
                        Item::new(Key::new(pk(pipeline), "baseline")).with("at", now_ms()),
                        Condition::None,
                    )
                    .await?;
                if !handled.is_empty() {
                    app.notice(
                        pipeline,
                        TriggerSource::S3,
                        "info",
                        format!(
                            "{} object(s) already in s3://{}/{} are the baseline: only objects put from now on start runs",
                            handled.len(),
                            trigger.bucket,
                            trigger.prefix
                        ),
                    );
                }
            }
            w.insert(fresh)
        }
    };
    for s in watch.newly_skipped(&skipped) {
        app.notice(pipeline, TriggerSource::S3, "warn", s.message(&trigger.bucket));
    }
    for meta in watch.observe(&listing, now_ms()) {
        if !app.accepting() {
            return Ok(());
        }
        // On Err the object stays ready: it is tried again at the next poll.
        if start(app, pipeline, &trigger.bucket, &meta).await.is_ok() {
            remember(table, name, pipeline, &[(meta.key.clone(), meta.etag.clone())]).await?;
            watch.started(&meta);
        }
    }
    app.s3_watched(pipeline, watch.settling_keys());
    Ok(())
}

/// Starts the object's run. `Err` only when it should be tried again.
async fn start(app: &App, pipeline: &str, bucket: &str, meta: &ObjectMeta) -> Result<(), ()> {
    let trigger = TriggerEvent {
        pipeline: pipeline.to_owned(),
        source: TriggerSource::S3,
        idempotency_key: object_key(bucket, meta),
        input: Some(ObjectRef::new(bucket, meta.key.clone())),
        params: app.spec(pipeline).map(|s| s.params.clone()).unwrap_or_default(),
    };
    match app.trigger(trigger).await {
        Ok(_) => Ok(()),
        Err(e @ (TriggerError::Unavailable(_) | TriggerError::ShuttingDown)) => {
            warn!(pipeline, key = %meta.key, "object not started yet: {e}");
            Err(())
        }
        Err(e) => {
            // Refused for good (e.g. the planner cannot read it): tell, and do not retry forever.
            app.notice(
                pipeline,
                TriggerSource::S3,
                "error",
                format!("s3://{bucket}/{} did not start a run: {e}", meta.key),
            );
            Ok(())
        }
    }
}
