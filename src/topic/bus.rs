//! The local [`Topic`]: an in-process bus with durable subscriptions,
//! at-least-once delivery, retries with backoff and dead letters, persisted
//! in one SQLite file.
//!
//! - **Durable subscriptions.** The first [`Bus::subscribe`] under a name
//!   records the subscription; from then on every message published on the
//!   topic is queued for it, also while no process is subscribed under that
//!   name. Subscribing again (after a restart: a new [`Bus::open`] on the same
//!   file) delivers what is still queued.
//! - **At-least-once.** A delivery is forgotten only after the subscriber
//!   returned `Ok`; a crash in between delivers the message again, so
//!   subscribers must be idempotent (as with SNS).
//! - **Retries and dead letters.** A failed attempt (an `Err` or a panic) is
//!   retried after an exponential backoff with jitter, up to
//!   [`BusConfig::max_attempts`] attempts; then the message is kept as a
//!   [`DeadLetter`] of that subscription.
//! - **Order.** One delivery at a time per subscription; first attempts follow
//!   publish order, a retried message may arrive after later ones. SNS does
//!   not promise any order: do not rely on it.
//! - Messages published by other processes on the same file are picked up
//!   within half a second.
//!
//! ```no_run
//! # use std::{path::Path, sync::Arc};
//! # use batchfan::topic::{bus::*, Message, Topic};
//! struct Print;
//! #[async_trait::async_trait]
//! impl Subscriber for Print {
//!     async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
//!         tracing::info!(id = %d.message_id, body = %d.message.body, "got");
//!         Ok(())
//!     }
//! }
//! # async fn demo() -> Result<(), batchfan::error::PortError> {
//! let bus = Bus::open(Path::new(".batchfan/bus.sqlite"), BusConfig::default()).await?;
//! bus.subscribe("plans", "submitter", Arc::new(Print)).await?;
//! bus.publish("plans", Message::new(r#"{"run":"r-1"}"#)).await?;
//! bus.wait_idle().await;
//! # Ok(()) }
//! ```

mod check;
mod store;
mod worker;

use std::{
    collections::{hash_map::Entry, HashMap},
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::{sync::watch, task::AbortHandle};

use crate::{
    error::{PortError, PortResult},
    sqlite::{blocking, lock},
    topic::{Message, Topic},
};

/// How the bus retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusConfig {
    /// Attempts per message and subscription before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Backoff after the first failed attempt; doubles with each further one (with jitter).
    pub backoff: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig { max_attempts: 5, backoff: Duration::from_millis(200) }
    }
}

/// Receives the messages of one subscription. Must be idempotent: a message
/// may come more than once.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// Handles one message; an `Err` means "retry later" (the bus logs it,
    /// and stores its text with the message until it is delivered or dead-lettered).
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError>;
}

/// Why a subscriber did not take a delivery: the text the bus stores, and
/// the error that caused it, kept as its [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct DeliveryError {
    text: String,
    #[source]
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DeliveryError {
    /// `what` failed because of `cause`: the text says both (`what: cause`).
    pub fn caused_by(
        what: impl std::fmt::Display,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        DeliveryError { text: format!("{what}: {cause}"), cause: Some(Box::new(cause)) }
    }
}

impl From<String> for DeliveryError {
    fn from(text: String) -> Self {
        DeliveryError { text, cause: None }
    }
}

impl From<&str> for DeliveryError {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

/// One attempt to deliver a message to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    pub topic: String,
    pub message: Message,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Milliseconds since the epoch.
    pub published_at: i64,
}

/// A message as published (see [`Bus::messages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub message_id: String,
    pub topic: String,
    pub message: Message,
    /// Milliseconds since the epoch.
    pub published_at: i64,
}

/// A message a subscription gave up on after its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The subscription's name.
    pub subscription: String,
    pub message_id: String,
    pub topic: String,
    pub message: Message,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
    /// Milliseconds since the epoch.
    pub published_at: i64,
    /// Milliseconds since the epoch.
    pub dead_at: i64,
}

/// The in-process bus. Cheap to clone; delivery stops when the last clone is
/// dropped or [`Bus::close`] is called. A subscriber that holds a clone (to
/// publish onwards) keeps the bus alive: call [`Bus::close`] at shutdown.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
    _life: Arc<Life>,
}

struct Inner {
    conn: Arc<Mutex<Connection>>,
    config: BusConfig,
    /// Active subscribers by (topic, name).
    subscribers: Mutex<HashMap<(String, String), Arc<dyn Subscriber>>>,
    /// Delivery loops by (topic, name).
    workers: Mutex<HashMap<(String, String), AbortHandle>>,
    /// Bumped on every publish: wakes the delivery loops.
    published: watch::Sender<u64>,
    /// Bumped after every delivery attempt: wakes [`Bus::wait_idle`].
    progress: watch::Sender<u64>,
}

/// Stops the delivery loops when the last [`Bus`] clone goes away.
struct Life(Arc<Inner>);

impl Drop for Life {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Bus {
    /// Opens (creating if needed) the bus stored in the SQLite file at `path`.
    pub async fn open(path: &Path, config: BusConfig) -> Result<Bus, PortError> {
        if config.max_attempts == 0 {
            return Err(PortError::invalid("bus max_attempts 0 is not valid: use at least 1"));
        }
        let path = path.to_path_buf();
        let conn = blocking(move || store::open(&path)).await?;
        let inner = Arc::new(Inner {
            conn: Arc::new(Mutex::new(conn)),
            config,
            subscribers: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            published: watch::channel(0).0,
            progress: watch::channel(0).0,
        });
        Ok(Bus { _life: Arc::new(Life(inner.clone())), inner })
    }

    /// Subscribes `subscriber` under the durable name `name` (see the module
    /// docs). Subscribing again under the same name replaces the subscriber.
    pub async fn subscribe(
        &self,
        topic: &str,
        name: &str,
        subscriber: Arc<dyn Subscriber>,
    ) -> PortResult<()> {
        check::topic(topic)?;
        check::subscription(name)?;
        let (t, n) = (topic.to_owned(), name.to_owned());
        self.inner.with_conn(move |c| store::subscribe(c, &t, &n, now_ms())).await?;
        let key = (topic.to_owned(), name.to_owned());
        lock(&self.inner.subscribers).insert(key.clone(), subscriber);
        if let Entry::Vacant(slot) = lock(&self.inner.workers).entry(key) {
            let (t, n) = (topic.to_owned(), name.to_owned());
            slot.insert(tokio::spawn(worker::run(self.inner.clone(), t, n)).abort_handle());
        }
        Ok(())
    }

    /// Every message published on `topic`, oldest first (e.g. to list alerts).
    pub async fn messages(&self, topic: &str) -> PortResult<Vec<Published>> {
        let topic = topic.to_owned();
        self.inner.with_conn(move |c| store::messages(c, &topic)).await
    }

    /// Every dead letter of every subscription, oldest first.
    pub async fn dead_letters(&self) -> PortResult<Vec<DeadLetter>> {
        self.inner.with_conn(store::dead_letters).await
    }

    /// Resolves once no subscription active in this bus has a delivery pending
    /// or waiting out a backoff (messages for subscriptions nobody is
    /// subscribed to here do not count).
    pub async fn wait_idle(&self) {
        let mut progress = self.inner.progress.subscribe();
        loop {
            progress.borrow_and_update();
            let active: Vec<(String, String)> = lock(&self.inner.subscribers).keys().cloned().collect();
            match self.inner.with_conn(move |c| store::pending(c, &active)).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "bus cannot count pending deliveries"),
            }
            // Deliveries bump `progress`; the timeout covers other processes' work.
            let _ = tokio::time::timeout(Duration::from_millis(200), progress.changed()).await;
        }
    }

    /// Stops delivering (in every clone): aborts the delivery loops and drops
    /// the subscribers. Undelivered messages stay queued for the next subscribe.
    pub fn close(&self) {
        self.inner.stop();
    }
}

impl Inner {
    fn subscriber(&self, topic: &str, name: &str) -> Option<Arc<dyn Subscriber>> {
        lock(&self.subscribers).get(&(topic.to_owned(), name.to_owned())).cloned()
    }

    fn stop(&self) {
        for (_, task) in lock(&self.workers).drain() {
            task.abort();
        }
        lock(&self.subscribers).clear();
    }

    /// Runs `f` on the bus's connection without stalling the executor.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, PortError> + Send + 'static,
    ) -> PortResult<T> {
        let conn = self.conn.clone();
        blocking(move || f(&lock(&conn))).await
    }
}

#[async_trait]
impl Topic for Bus {
    async fn publish(&self, topic: &str, message: Message) -> PortResult<String> {
        check::topic(topic)?;
        check::message(&message)?;
        let id = new_message_id();
        let (t, i) = (topic.to_owned(), id.clone());
        self.inner.with_conn(move |c| store::publish(c, &i, &t, &message, now_ms())).await?;
        self.inner.published.send_modify(|n| *n += 1);
        tracing::debug!(topic, message_id = %id, "published");
        Ok(id)
    }
}

/// A random message id, a UUID v4 (as SNS message ids are).
fn new_message_id() -> String {
    crate::ids::random_uuid()
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
