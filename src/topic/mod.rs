//! The Topic port: SNS-shaped publish with message attributes.
//!
//! Delivery is at-least-once on both backends: subscribers must be idempotent.

#[cfg(feature = "local")]
pub mod bus;
pub mod routes;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortResult;

/// Largest SNS message body, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub subject: Option<String>,
    pub body: String,
    /// String message attributes (SNS `MessageAttributes` of type String).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Message {
    pub fn new(body: impl Into<String>) -> Self {
        Message { subject: None, body: body.into(), attributes: BTreeMap::new() }
    }
    pub fn with_attribute(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(name.to_owned(), value.into());
        self
    }
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// The Topic capability. Implementations: the in-process bus; SNS.
#[async_trait]
pub trait Topic: Send + Sync {
    /// Publishes a message; returns its message id. Rejects bodies over 256 KiB.
    async fn publish(&self, topic: &str, message: Message) -> PortResult<String>;
}
