//! The local bus's own guarantees: retries, dead letters, durable
//! subscriptions across reopen, redelivery after a crash, order, polling of
//! other processes' messages.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use batchfan::{
    error::PortError,
    topic::{
        bus::{Bus, BusConfig, Delivery, DeliveryError, Subscriber},
        Message, Topic,
    },
};
use tokio::sync::Notify;

const DEADLINE: Duration = Duration::from_secs(10);

fn fast(max_attempts: u32) -> BusConfig {
    BusConfig { max_attempts, backoff: Duration::from_millis(2) }
}

/// Records every attempt; fails the first `fail_first` attempts of each message.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Delivery>>,
    fail_first: u32,
    panic_instead: bool,
}

impl Recorder {
    fn failing(fail_first: u32) -> Arc<Recorder> {
        Arc::new(Recorder { fail_first, ..Recorder::default() })
    }
    fn bodies(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|d| d.message.body.clone()).collect()
    }
    fn attempts(&self) -> Vec<u32> {
        self.seen.lock().unwrap().iter().map(|d| d.attempt).collect()
    }
}

#[async_trait]
impl Subscriber for Recorder {
    async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
        self.seen.lock().unwrap().push(d.clone());
        if d.attempt <= self.fail_first {
            assert!(!self.panic_instead, "subscriber blew up on attempt {}", d.attempt);
            return Err(format!("not yet (attempt {})", d.attempt).into());
        }
        Ok(())
    }
}

async fn open(path: &Path, config: BusConfig) -> Bus {
    Bus::open(path, config).await.unwrap()
}

async fn idle(bus: &Bus) {
    tokio::time::timeout(DEADLINE, bus.wait_idle()).await.expect("bus idle in time");
}

/// Polls `cond` until it holds, failing at the deadline.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn failed_delivery_is_retried_until_it_succeeds_on_attempt_3() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.sqlite"), fast(5)).await;
    let sub = Recorder::failing(2);
    bus.subscribe("plans", "submitter", sub.clone()).await.unwrap();
    let id = bus.publish("plans", Message::new("run r-1")).await.unwrap();
    idle(&bus).await;
    assert_eq!(sub.attempts(), [1, 2, 3]);
    assert!(sub.seen.lock().unwrap().iter().all(|d| d.message_id == id && d.topic == "plans"));
    assert_eq!(bus.dead_letters().await.unwrap(), vec![]);
}

#[tokio::test]
async fn panicking_subscriber_counts_as_a_failed_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.sqlite"), fast(3)).await;
    let sub = Arc::new(Recorder { fail_first: 1, panic_instead: true, ..Recorder::default() });
    bus.subscribe("plans", "submitter", sub.clone()).await.unwrap();
    bus.publish("plans", Message::new("run r-1")).await.unwrap();
    idle(&bus).await;
    assert_eq!(sub.attempts(), [1, 2]);
}

#[tokio::test]
async fn message_is_dead_lettered_after_max_attempts_for_that_subscription_only() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.sqlite"), fast(3)).await;
    let (broken, healthy) = (Recorder::failing(u32::MAX), Recorder::failing(0));
    bus.subscribe("alerts", "pager", broken.clone()).await.unwrap();
    bus.subscribe("alerts", "log", healthy.clone()).await.unwrap();
    let msg = Message::new("run r-9 failed").with_subject("Run failed").with_attribute("run_id", "r-9");
    let id = bus.publish("alerts", msg.clone()).await.unwrap();
    idle(&bus).await;
    assert_eq!(broken.attempts(), [1, 2, 3]);
    assert_eq!(healthy.attempts(), [1]);
    let dead = bus.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(
        (d.subscription.as_str(), d.message_id.as_str(), d.topic.as_str()),
        ("pager", id.as_str(), "alerts")
    );
    assert_eq!((d.attempts, d.message.clone()), (3, msg));
    assert!(d.error.contains("attempt 3"), "{}", d.error);
    assert!(d.dead_at >= d.published_at);
}

#[tokio::test]
async fn durable_subscription_gets_what_was_published_while_nobody_listened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sqlite");
    // Published before the subscription existed: never delivered to it.
    let bus = open(&path, fast(5)).await;
    bus.publish("plans", Message::new("before")).await.unwrap();
    bus.subscribe("plans", "submitter", Recorder::failing(0)).await.unwrap();
    drop(bus);

    // Another run of the program publishes while nobody subscribes under that name.
    let bus = open(&path, fast(5)).await;
    bus.publish("plans", Message::new("while away 1")).await.unwrap();
    bus.publish("plans", Message::new("while away 2")).await.unwrap();
    drop(bus);

    let bus = open(&path, fast(5)).await;
    let sub = Recorder::failing(0);
    bus.subscribe("plans", "submitter", sub.clone()).await.unwrap();
    idle(&bus).await;
    assert_eq!(sub.bodies(), ["while away 1", "while away 2"]);
    let all: Vec<String> = bus.messages("plans").await.unwrap().into_iter().map(|m| m.message.body).collect();
    assert_eq!(all, ["before", "while away 1", "while away 2"]);
}

/// Blocks every delivery until the test lets it go (never, here): a crash mid-delivery.
struct Stuck(Arc<Notify>);

#[async_trait]
impl Subscriber for Stuck {
    async fn deliver(&self, _: &Delivery) -> Result<(), DeliveryError> {
        self.0.notify_one();
        std::future::pending().await
    }
}

#[tokio::test]
async fn message_in_flight_when_the_bus_stops_is_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sqlite");
    let bus = open(&path, fast(5)).await;
    let entered = Arc::new(Notify::new());
    bus.subscribe("plans", "submitter", Arc::new(Stuck(entered.clone()))).await.unwrap();
    let id = bus.publish("plans", Message::new("run r-2")).await.unwrap();
    tokio::time::timeout(DEADLINE, entered.notified()).await.expect("delivery started");
    drop(bus);

    let bus = open(&path, fast(5)).await;
    let sub = Recorder::failing(0);
    bus.subscribe("plans", "submitter", sub.clone()).await.unwrap();
    idle(&bus).await;
    let seen = sub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message_id, id);
}

#[tokio::test]
async fn deliveries_follow_publish_order() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(&dir.path().join("bus.sqlite"), fast(5)).await;
    let sub = Recorder::failing(0);
    bus.subscribe("plans", "submitter", sub.clone()).await.unwrap();
    let bodies: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for body in &bodies {
        bus.publish("plans", Message::new(body)).await.unwrap();
    }
    idle(&bus).await;
    assert_eq!(sub.bodies(), bodies);
}

#[tokio::test]
async fn a_message_in_backoff_does_not_hold_back_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = BusConfig { max_attempts: 2, backoff: Duration::from_millis(300) };
    let bus = open(&dir.path().join("bus.sqlite"), config).await;
    let sub = Recorder::failing(0);
    struct FailFirstMessage(Arc<Recorder>);
    #[async_trait]
    impl Subscriber for FailFirstMessage {
        async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
            self.0.seen.lock().unwrap().push(d.clone());
            if d.message.body == "slow" && d.attempt == 1 {
                return Err("try later".into());
            }
            Ok(())
        }
    }
    bus.subscribe("plans", "submitter", Arc::new(FailFirstMessage(sub.clone()))).await.unwrap();
    bus.publish("plans", Message::new("slow")).await.unwrap();
    bus.publish("plans", Message::new("fast")).await.unwrap();
    idle(&bus).await;
    assert_eq!(sub.bodies(), ["slow", "fast", "slow"]);
}

#[tokio::test]
async fn messages_published_by_another_process_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sqlite");
    let bus = open(&path, fast(5)).await;
    let sub = Recorder::failing(0);
    bus.subscribe("alerts", "log", sub.clone()).await.unwrap();
    // A second handle on the same file stands in for another process: it does
    // not wake this bus's delivery loops, so delivery relies on polling.
    let other = open(&path, fast(5)).await;
    other.publish("alerts", Message::new("from elsewhere")).await.unwrap();
    eventually("the polled delivery", || sub.bodies() == ["from elsewhere"]).await;
}

#[tokio::test]
async fn wait_idle_ignores_subscriptions_not_active_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sqlite");
    let bus = open(&path, fast(5)).await;
    bus.subscribe("plans", "elsewhere", Recorder::failing(0)).await.unwrap();
    bus.close();
    bus.publish("plans", Message::new("queued for later")).await.unwrap();
    idle(&bus).await;
}

#[tokio::test]
async fn backoff_waits_between_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let config = BusConfig { max_attempts: 5, backoff: Duration::from_millis(40) };
    let bus = open(&dir.path().join("bus.sqlite"), config).await;
    let sub = Recorder::failing(2);
    bus.subscribe("plans", "submitter", sub.clone()).await.unwrap();
    let start = tokio::time::Instant::now();
    bus.publish("plans", Message::new("run")).await.unwrap();
    idle(&bus).await;
    assert_eq!(sub.attempts(), [1, 2, 3]);
    // 40 ms then 80 ms, each with jitter down to half.
    assert!(start.elapsed() >= Duration::from_millis(60), "{:?}", start.elapsed());
}

#[tokio::test]
async fn bad_names_and_config_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sqlite");
    let zero = Bus::open(&path, BusConfig { max_attempts: 0, ..BusConfig::default() }).await;
    assert!(matches!(zero, Err(PortError::Invalid(m)) if m.contains("max_attempts")));
    let bus = open(&path, fast(5)).await;
    let bad = bus.publish("no spaces", Message::new("x")).await;
    assert!(matches!(bad, Err(PortError::Invalid(m)) if m.contains("no spaces")));
    let bad = bus.subscribe("plans", "a/b", Recorder::failing(0)).await;
    assert!(matches!(bad, Err(PortError::Invalid(m)) if m.contains("a/b")));
}
