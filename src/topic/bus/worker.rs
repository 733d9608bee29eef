//! The delivery loop of one subscription.
//!
//! One task per subscription delivers one message at a time: the oldest
//! pending one that is not waiting out a backoff. So first attempts follow
//! publish order, and a message being retried does not hold back the ones
//! after it (which may then arrive before it).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use tokio::time::Instant;

use super::{now_ms, store, Delivery, DeliveryError, Inner, Subscriber};
use crate::{backoff::Backoff, error::PortError};

/// How often an idle subscription looks for messages published by other processes.
const POLL: Duration = Duration::from_millis(500);
/// Longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Pause after the bus's own file failed, before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Runs the delivery loop of subscription `name` on `topic` until aborted.
pub(super) async fn run(inner: Arc<Inner>, topic: String, name: String) {
    let mut published = inner.published.subscribe();
    // Deliveries waiting out a backoff: seq -> when they are due again.
    let mut backoff: HashMap<i64, Instant> = HashMap::new();
    loop {
        published.borrow_and_update();
        let now = Instant::now();
        backoff.retain(|_, due| *due > now);
        let waiting: HashSet<i64> = backoff.keys().copied().collect();
        let (t, n) = (topic.clone(), name.clone());
        let next = inner.with_conn(move |c| store::next_due(c, &t, &n, &waiting)).await;
        match next {
            Ok(Some((seq, delivery))) => {
                if let Err(e) = deliver(&inner, &topic, &name, seq, delivery, &mut backoff).await {
                    tracing::warn!(%topic, subscription = %name, error = %e, "bus cannot record a delivery");
                    tokio::time::sleep(STORE_RETRY).await;
                }
                inner.progress.send_modify(|n| *n += 1);
            }
            Ok(None) => {
                let wake = backoff.values().min().copied().unwrap_or(now + POLL).min(now + POLL);
                tokio::select! {
                    _ = published.changed() => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
            }
            Err(e) => {
                tracing::warn!(%topic, subscription = %name, error = %e, "bus cannot read pending deliveries");
                tokio::time::sleep(STORE_RETRY).await;
            }
        }
    }
}

/// One attempt: hands the message to the subscriber, then records the outcome.
async fn deliver(
    inner: &Arc<Inner>,
    topic: &str,
    name: &str,
    seq: i64,
    delivery: Delivery,
    backoff: &mut HashMap<i64, Instant>,
) -> Result<(), PortError> {
    let Some(subscriber) = inner.subscriber(topic, name) else {
        // Closed meanwhile: this loop is about to be aborted.
        tokio::time::sleep(POLL).await;
        return Ok(());
    };
    let attempt = delivery.attempt;
    let message_id = delivery.message_id.clone();
    // The text is what the bus stores; the error and its causes are logged.
    let outcome = attempt_delivery(subscriber, delivery).await.map_err(|e| e.to_string());
    let (t, n) = (topic.to_owned(), name.to_owned());
    match outcome {
        Ok(()) => {
            tracing::debug!(topic, subscription = name, %message_id, attempt, "delivered");
            backoff.remove(&seq);
            inner.with_conn(move |c| store::ack(c, &t, &n, seq)).await
        }
        Err(error) if attempt >= inner.config.max_attempts => {
            tracing::warn!(topic, subscription = name, %message_id, attempt, %error, "dead-lettered");
            backoff.remove(&seq);
            inner.with_conn(move |c| store::dead(c, &t, &n, seq, &error, now_ms())).await
        }
        Err(error) => {
            let wait = backoff_delay(inner.config.backoff, attempt);
            tracing::info!(topic, subscription = name, %message_id, attempt, %error, wait_ms = wait.as_millis() as u64, "delivery failed, will retry");
            backoff.insert(seq, Instant::now() + wait);
            inner.with_conn(move |c| store::failed(c, &t, &n, seq, &error)).await
        }
    }
}

/// Runs the subscriber in its own task, so that a panic is a failed attempt.
async fn attempt_delivery(subscriber: Arc<dyn Subscriber>, delivery: Delivery) -> Result<(), DeliveryError> {
    let mut task = AbortOnDrop(tokio::spawn(async move { subscriber.deliver(&delivery).await }));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err("subscriber panicked".into()),
        Err(e) => Err(DeliveryError::caused_by("subscriber task failed", e)),
    }
}

/// Aborts the subscriber's task when the delivery loop itself is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), DeliveryError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The wait after delivery attempt `attempt` (from 1) failed: equal jitter
/// under `base * 2^(attempt-1)`, at most [`MAX_BACKOFF`].
pub(super) fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    Backoff { base, cap: MAX_BACKOFF, max_attempts: u32::MAX }.equal_jittered(attempt.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_delivery_says_what_and_why_and_keeps_the_cause() {
        struct Refuses;
        #[async_trait::async_trait]
        impl Subscriber for Refuses {
            async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
                let parse = serde_json::from_str::<u32>(&d.message.body).map(drop);
                parse.map_err(|e| DeliveryError::caused_by(format_args!("message {}", d.message_id), e))
            }
        }
        let delivery = Delivery {
            message_id: "m-1".into(),
            topic: "plans".into(),
            message: crate::topic::Message::new("not a number"),
            attempt: 1,
            published_at: 0,
        };
        let err = attempt_delivery(Arc::new(Refuses), delivery).await.unwrap_err();
        assert!(err.to_string().starts_with("message m-1: expected ident"), "{err}");
        let cause = std::error::Error::source(&err).expect("the serde error is kept");
        assert!(cause.downcast_ref::<serde_json::Error>().is_some());
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter() {
        let base = Duration::from_millis(200);
        for (attempt, full_ms) in [(1, 200), (2, 400), (3, 800), (4, 1600)] {
            let d = backoff_delay(base, attempt);
            let full = Duration::from_millis(full_ms);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff_delay(base, 40) <= MAX_BACKOFF);
    }
}
