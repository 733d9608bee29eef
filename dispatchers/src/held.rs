//! Cron `overlap = "queue"` on AWS: schedule slots held in the table while
//! the pipeline's last scheduled run is going, and started when it ends.
//!
//! The held slots are one item, `cron#{pipeline}` / `held`: the slots'
//! idempotency keys (`cron:{time}`, so sorted is oldest first) and a version.
//! Every change is a conditional write on that version, so two ticks, a
//! retried invoke or two alert invocations at once never hold a slot twice
//! nor lose one; the depth is bounded as in `batchfan serve`
//! ([`batchfan::trigger::cron::hold`]).
//!
//! A held slot is started ([`start_held`]) by the alert function when an
//! event of the pipeline ends a run, by the reconcile tick, and by the trigger
//! right after holding (the run may have ended in between). Starting plans the
//! slot's trigger (its idempotency key makes a second start the same run),
//! records it as the last scheduled run, and only then releases the slot: a
//! crash in between starts it again, which finds the same run.

use batchfan::{
    error::PortResult,
    run::{RunRecord, RunStore},
    spec::OverlapPolicy,
    table::{Condition, Item, Key, Table, Written},
    trigger::cron::{hold, Held},
};
use serde_json::{json, Value};
use tracing::info;

use crate::{trigger::schedule, DispatchError, Dispatcher};

/// The held slots of one pipeline, in its table.
pub struct HeldSlots<'a> {
    table: &'a dyn Table,
    name: &'a str,
    pipeline: &'a str,
}

impl<'a> HeldSlots<'a> {
    pub fn new(table: &'a dyn Table, name: &'a str, pipeline: &'a str) -> Self {
        HeldSlots { table, name, pipeline }
    }

    /// The dispatcher's pipeline's held slots.
    pub fn of(d: &'a Dispatcher) -> Self {
        HeldSlots::new(d.ports.table.as_ref(), &d.spec.storage.table, &d.spec.name)
    }

    fn key(&self) -> Key {
        Key::new(format!("cron#{}", self.pipeline), "held")
    }

    /// The held slots, oldest first, and the item's version (`None`: no item yet).
    pub async fn list(&self) -> PortResult<(Vec<String>, Option<u64>)> {
        let Some(item) = self.table.get(self.name, &self.key()).await? else { return Ok((Vec::new(), None)) };
        let slots = match item.attrs.get("slots") {
            Some(Value::Array(v)) => v.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Ok((slots, Some(item.u64("version").unwrap_or(0))))
    }

    /// Changes the slots with `change` under the version read, retrying on a
    /// conflicting write; `change` returns false to write nothing.
    async fn update<T>(&self, mut change: impl FnMut(&mut Vec<String>) -> (bool, T)) -> PortResult<T> {
        loop {
            let (mut slots, version) = self.list().await?;
            let (write, out) = change(&mut slots);
            if !write {
                return Ok(out);
            }
            let next = version.map_or(1, |v| v + 1);
            let item = Item::new(self.key()).with("slots", json!(slots)).with("version", next);
            let condition = match version {
                Some(v) => Condition::Equals("version".into(), json!(v)),
                None => Condition::NotExists,
            };
            if let Written::Yes = self.table.put(self.name, item, condition).await? {
                return Ok(out);
            }
        }
    }

    /// Holds slot `key` (once; at most [`batchfan::trigger::cron::MAX_QUEUED`]).
    pub async fn hold(&self, key: &str) -> PortResult<Held> {
        self.update(|slots| {
            let held = hold(slots, key.to_owned());
            (held == Held::Now, held)
        })
        .await
    }

    /// Releases slot `key`; false when it was not held (another invocation released it).
    pub async fn release(&self, key: &str) -> PortResult<bool> {
        self.update(|slots| match slots.iter().position(|s| s == key) {
            Some(at) => {
                slots.remove(at);
                (true, true)
            }
            None => (false, false),
        })
        .await
    }
}

/// Whether the pipeline's schedule queues slots (`overlap = "queue"`).
pub fn queues(d: &Dispatcher) -> bool {
    d.spec.triggers.cron.as_ref().is_some_and(|c| c.overlap == OverlapPolicy::Queue)
}

/// Starts the oldest held slot if the last scheduled run has ended; returns
/// the run it started (none while the last run is going or nothing is held).
///
/// A held slot whose run exists already and has ended (a late redelivery of
/// a slot that ran) is released and the next one tried.
pub async fn start_held(d: &Dispatcher) -> Result<Option<RunRecord>, DispatchError> {
    if !queues(d) {
        return Ok(None);
    }
    let held = HeldSlots::of(d);
    let store = RunStore::new(d.ports.table.as_ref(), &d.spec.storage.table);
    loop {
        let (slots, _) = held.list().await?;
        let Some(head) = slots.into_iter().next() else { return Ok(None) };
        if let Some((_, run_id)) = store.last_scheduled(&d.spec.name).await? {
            if store.get(&run_id).await?.is_some_and(|r| !r.state.is_terminal()) {
                return Ok(None);
            }
        }
        let trigger = schedule::slot_trigger(&d.spec, head.clone())?;
        let record = crate::trigger::plan_with(d, trigger.clone()).await?;
        schedule::started(d, &trigger, &record.run_id).await?;
        let released = held.release(&head).await?;
        info!(pipeline = %d.spec.name, slot = %head, run_id = %record.run_id, released, "held slot started");
        if !record.state.is_terminal() {
            return Ok(Some(record));
        }
    }
}
