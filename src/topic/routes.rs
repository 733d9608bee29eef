//! Topic names → deployed topics.
//!
//! The run lifecycle names topics by pipeline (the plan topic
//! `{pipeline}-plan`, the spec's `alerts.topic`); a deployment names them by
//! ARN (`BATCHFAN_PLAN_TOPIC_ARN`, `BATCHFAN_ALERTS_TOPIC_ARN`). [`Routed`]
//! maps the first to the second in front of any [`Topic`].
//!
//! ```
//! # use std::sync::Arc;
//! # use batchfan::topic::{routes::Routed, Message, Topic};
//! # async fn demo(sns: Arc<dyn Topic>) -> batchfan::error::PortResult<()> {
//! let topic = Routed::new(sns).route("orders-plan", "arn:aws:sns:eu-west-1:123456789012:orders-plan");
//! topic.publish("orders-plan", Message::new("{}")).await?; // goes to the ARN
//! # Ok(()) }
//! ```

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;

use super::{Message, Topic};
use crate::error::PortResult;

/// A [`Topic`] that publishes to a routed name's target, and to any other name as given.
#[derive(Clone)]
pub struct Routed {
    inner: Arc<dyn Topic>,
    routes: BTreeMap<String, String>,
}

impl Routed {
    pub fn new(inner: Arc<dyn Topic>) -> Self {
        Routed { inner, routes: BTreeMap::new() }
    }

    /// Publishes to `target` whatever is published to `name`.
    pub fn route(mut self, name: impl Into<String>, target: impl Into<String>) -> Self {
        self.routes.insert(name.into(), target.into());
        self
    }

    /// Where a publish to `name` goes.
    pub fn target<'a>(&'a self, name: &'a str) -> &'a str {
        self.routes.get(name).map_or(name, String::as_str)
    }
}

#[async_trait]
impl Topic for Routed {
    async fn publish(&self, topic: &str, message: Message) -> PortResult<String> {
        self.inner.publish(self.target(topic), message).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    #[async_trait]
    impl Topic for Seen {
        async fn publish(&self, topic: &str, _message: Message) -> PortResult<String> {
            self.0.lock().expect("not poisoned").push(topic.to_owned());
            Ok("id".into())
        }
    }

    #[tokio::test]
    async fn routed_names_go_to_their_target_and_others_pass_through() {
        let seen = Arc::new(Seen::default());
        let topic = Routed::new(seen.clone()).route("p-plan", "arn:aws:sns:us-east-1:1:p-plan");
        topic.publish("p-plan", Message::new("a")).await.unwrap();
        topic.publish("p-alerts", Message::new("b")).await.unwrap();
        assert_eq!(*seen.0.lock().unwrap(), ["arn:aws:sns:us-east-1:1:p-plan", "p-alerts"]);
    }
}
