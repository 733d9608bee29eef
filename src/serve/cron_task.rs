//! One task per cron pipeline: wakes at each slot (and every second, to notice
//! a finished run a queued slot waits for, or a clock change), asks
//! [`super::cron::step`] what to do, starts the runs, and saves the
//! [`CronState`] in the pipeline's table (`cron#{pipeline}` / `state`).
//!
//! A run is started before the state that records it is saved: a crash in
//! between starts the slot again after the restart (catch_up = latest), which
//! finds the same run through the slot's idempotency key.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::Value;
use tokio::sync::watch;
use tracing::warn;

use super::{
    app::{App, TriggerError},
    cron::{slot_key, step, CronState, Decision, SkipReason},
};
use crate::{
    error::PortResult,
    objects::ObjectRef,
    run::{TriggerEvent, TriggerSource},
    table::{Condition, Item, Key, Table},
};

/// Longest sleep between two looks at the clock.
const TICK: Duration = Duration::from_secs(1);
/// Attempts at starting a slot's run when the store is briefly unavailable.
const START_ATTEMPTS: u32 = 3;

fn state_key(pipeline: &str) -> Key {
    Key::new(format!("cron#{pipeline}"), "state")
}

async fn load(table: &dyn Table, name: &str, pipeline: &str) -> PortResult<CronState> {
    Ok(match table.get(name, &state_key(pipeline)).await? {
        Some(item) => {
            item.attrs.get("state").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
        }
        None => CronState::default(),
    })
}

async fn save(table: &dyn Table, name: &str, pipeline: &str, state: &CronState) -> PortResult<()> {
    let value = serde_json::to_value(state).unwrap_or(Value::Null);
    let item = Item::new(state_key(pipeline)).with("state", value);
    table.put(name, item, Condition::None).await.map(|_| ())
}

/// Runs the schedule of `pipeline` until `stop` turns true.
pub async fn run(app: Arc<App>, pipeline: String, mut stop: watch::Receiver<bool>) {
    let (Some(spec), Some(schedule)) = (app.spec(&pipeline).cloned(), app.schedules.get(&pipeline).cloned())
    else {
        return;
    };
    let Some(cron) = spec.triggers.cron.clone() else { return };
    let table = &app.service.backend.table;
    let table_name = spec.storage.table.clone();
    let mut state = loop {
        match load(table, &table_name, &pipeline).await {
            Ok(s) => break s,
            Err(e) => {
                warn!(pipeline, "cannot read the schedule's state: {e}: retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }
    };
    let input = match cron.input.as_deref().map(str::parse::<ObjectRef>) {
        Some(Ok(o)) => Some(o),
        Some(Err(e)) => {
            app.notice(&pipeline, TriggerSource::Cron, "error", format!("schedule input: {e}"));
            return;
        }
        None => None,
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let now = Utc::now();
        let busy = match &state.last_run {
            Some(id) => app.is_running(&pipeline, id).await,
            None => false,
        };
        let before = state.clone();
        for decision in step(&schedule, &mut state, now, app.started_at, busy) {
            match decision {
                Decision::Start(slot) => {
                    let trigger = TriggerEvent {
                        pipeline: pipeline.clone(),
                        source: TriggerSource::Cron,
                        idempotency_key: slot_key(slot),
                        input: input.clone(),
                        params: spec.params.clone(),
                    };
                    if let Some(run_id) = start(&app, trigger).await {
                        state.last_run = Some(run_id);
                    }
                }
                Decision::Queue(slot) => app.notice(
                    &pipeline,
                    TriggerSource::Cron,
                    "info",
                    format!("slot {} waits for run {} (overlap = queue)", slot.to_rfc3339(), run_of(&state)),
                ),
                Decision::Skip(slot, SkipReason::Busy) => app.notice(
                    &pipeline,
                    TriggerSource::Cron,
                    "warn",
                    format!("slot {} skipped: run {} is still going (overlap = skip)", slot.to_rfc3339(), run_of(&state)),
                ),
                Decision::Skip(slot, SkipReason::QueueFull) => app.notice(
                    &pipeline,
                    TriggerSource::Cron,
                    "warn",
                    format!(
                        "slot {} skipped: {} slots already wait (overlap = queue): runs take longer than the schedule's period",
                        slot.to_rfc3339(),
                        state.queued.len()
                    ),
                ),
                Decision::Missed { count, more } => app.notice(
                    &pipeline,
                    TriggerSource::Cron,
                    "warn",
                    format!(
                        "{}{count} slot(s) passed while batchfan serve was down and do not run (catch_up = {})",
                        if more { "at least " } else { "" },
                        serde_json::to_value(cron.catch_up).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                    ),
                ),
            }
        }
        if state.queued != before.queued || state.last_run != before.last_run || before.cursor.is_none() {
            if let Err(e) = save(table, &table_name, &pipeline, &state).await {
                warn!(pipeline, "cannot save the schedule's state: {e}: slots keep their idempotency keys");
            }
        }
        let next = schedule.next_after(now);
        app.set_next_slot(&pipeline, next);
        let wait = next
            .and_then(|n| (n - Utc::now()).to_std().ok())
            .map_or(TICK, |d| d.min(TICK) + Duration::from_millis(2));
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

fn run_of(state: &CronState) -> String {
    state.last_run.clone().unwrap_or_else(|| "?".into())
}

/// Starts a slot's run; `None` (with a notice) when it cannot.
async fn start(app: &App, trigger: TriggerEvent) -> Option<String> {
    let (pipeline, key) = (trigger.pipeline.clone(), trigger.idempotency_key.clone());
    for attempt in 1..=START_ATTEMPTS {
        match app.trigger(trigger.clone()).await {
            Ok(rec) => return Some(rec.run_id),
            Err(TriggerError::Unavailable(e)) if attempt < START_ATTEMPTS => {
                warn!(pipeline, key, attempt, "cannot start the slot's run yet: {e}");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => {
                app.notice(
                    &pipeline,
                    TriggerSource::Cron,
                    "error",
                    format!("{key} did not start a run: {e}"),
                );
                return None;
            }
        }
    }
    None
}
