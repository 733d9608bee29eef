//! Topic scenarios: ids, delivery of subject/attributes/body, limits.
//!
//! Backends deliver differently (a bus subscriber locally, an SQS queue
//! subscribed to the SNS topic on AWS), so each provides a [`Probe`]: a
//! subscription that reports what reaches it. Delivery is at-least-once, so
//! scenarios tolerate duplicates and never rely on order.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use batchfan::{
    error::PortError,
    topic::{Message, Topic, MAX_MESSAGE_BYTES},
};

/// How long a scenario waits for a delivery before failing.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// A message as a subscriber received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The id `publish` returned.
    pub message_id: String,
    pub message: Message,
}

/// A subscription under test's control (SNS: an SQS queue subscribed to the topic).
#[async_trait]
pub trait Probe: Send {
    /// The next message received, or `None` if none arrives within `within`.
    async fn recv(&mut self, within: Duration) -> Option<Received>;
}

/// What a backend provides to the topic scenarios.
#[async_trait]
pub trait TopicEnv: Send + Sync {
    /// The port under test.
    fn topic(&self) -> &dyn Topic;
    /// A new topic nobody else publishes on, in the form `publish` takes
    /// (SNS: created; its ARN).
    async fn fresh_topic(&self) -> String;
    /// Subscribes a probe to `topic`; it receives every message published after this returns.
    async fn probe(&self, topic: &str) -> Box<dyn Probe>;
}

/// Receives until every id in `ids` arrived (once or more); panics at the deadline.
pub async fn receive_all(probe: &mut dyn Probe, ids: &[String]) -> BTreeMap<String, Received> {
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    let mut got = BTreeMap::new();
    while ids.iter().any(|id| !got.contains_key(id)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(received) = probe.recv(left).await else {
            let missing: Vec<_> = ids.iter().filter(|id| !got.contains_key(*id)).collect();
            panic!("no delivery within {DELIVERY_TIMEOUT:?} of {} messages: {missing:?}", missing.len());
        };
        got.insert(received.message_id.clone(), received);
    }
    got
}

/// Receives until the message `id` arrived; panics at the deadline.
pub async fn receive_one(probe: &mut dyn Probe, id: &str) -> Received {
    let mut got = receive_all(probe, &[id.to_owned()]).await;
    got.remove(id).expect("receive_all returns every id asked for")
}

pub async fn publish_returns_distinct_ids(env: &dyn TopicEnv) {
    let (t, topic) = (env.topic(), env.fresh_topic().await);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(t.publish(&topic, Message::new(format!("message {i}"))).await.unwrap());
    }
    assert!(ids.iter().all(|id| !id.is_empty()));
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

pub async fn subject_and_attributes_reach_subscriber(env: &dyn TopicEnv) {
    let (t, topic) = (env.topic(), env.fresh_topic().await);
    let mut probe = env.probe(&topic).await;
    let message = Message::new(r#"{"run":"r-1","state":"FAILED"}"#)
        .with_subject("Run r-1 failed")
        .with_attribute("run_id", "r-1")
        .with_attribute("kind", "run_failed");
    let id = t.publish(&topic, message.clone()).await.unwrap();
    assert_eq!(receive_one(probe.as_mut(), &id).await.message, message);
    let plain = Message::new("no subject, no attributes");
    let id = t.publish(&topic, plain.clone()).await.unwrap();
    assert_eq!(receive_one(probe.as_mut(), &id).await.message, plain);
}

pub async fn every_message_is_delivered(env: &dyn TopicEnv) {
    let (t, topic) = (env.topic(), env.fresh_topic().await);
    let mut probe = env.probe(&topic).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let msg = Message::new(format!("{{\"index\":{i}}}")).with_attribute("index", i.to_string());
        ids.push(t.publish(&topic, msg).await.unwrap());
    }
    let got = receive_all(probe.as_mut(), &ids).await;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(got[id].message.attributes["index"], i.to_string());
        assert_eq!(got[id].message.body, format!("{{\"index\":{i}}}"));
    }
}

pub async fn large_body_is_delivered_intact(env: &dyn TopicEnv) {
    let (t, topic) = (env.topic(), env.fresh_topic().await);
    let mut probe = env.probe(&topic).await;
    let body: String = (0..100 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let id = t.publish(&topic, Message::new(body.clone())).await.unwrap();
    assert_eq!(receive_one(probe.as_mut(), &id).await.message.body, body);
}

pub async fn oversize_message_rejected(env: &dyn TopicEnv) {
    let (t, topic) = (env.topic(), env.fresh_topic().await);
    let result = t.publish(&topic, Message::new("x".repeat(MAX_MESSAGE_BYTES + 1))).await;
    match result {
        Err(PortError::Invalid(msg)) => {
            assert!(msg.contains(&(MAX_MESSAGE_BYTES + 1).to_string()), "{msg:?} names the size");
            assert!(msg.contains("pointers"), "{msg:?} gives the fix");
        }
        other => panic!("expected an invalid-request error, got {other:?}"),
    }
}
