//! The SNS [`Topic`]: `publish` with the subject and String message attributes.
//!
//! The `topic` argument is a topic ARN (`arn:aws:sns:...`), or a topic name
//! that [`crate::aws::AwsSettings::topic_arns`] maps to one. Sizes and names
//! are checked before sending, against SNS's rules: a message with its
//! attributes is at most 256 KiB, a subject at most 100 characters on one
//! line, attribute values non-empty.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use aws_sdk_sns::{types::MessageAttributeValue, Client};

use crate::{
    aws::error::port_error,
    error::{PortError, PortResult},
    topic::{Message, Topic, MAX_MESSAGE_BYTES},
};

/// Longest subject SNS accepts, in characters.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Longest message attribute name, in characters.
const MAX_ATTRIBUTE_NAME: usize = 256;

/// The SNS implementation of [`Topic`]. Cheap to clone.
#[derive(Clone)]
pub struct SnsTopic {
    client: Client,
    arns: Arc<BTreeMap<String, String>>,
}

impl SnsTopic {
    pub(crate) fn new(client: Client, arns: BTreeMap<String, String>) -> Self {
        SnsTopic { client, arns: Arc::new(arns) }
    }

    /// The ARN `topic` stands for.
    pub fn resolve(&self, topic: &str) -> PortResult<String> {
        resolve(&self.arns, topic)
    }
}

pub(crate) fn resolve(arns: &BTreeMap<String, String>, topic: &str) -> PortResult<String> {
    if topic.starts_with("arn:") {
        return Ok(topic.to_owned());
    }
    arns.get(topic).cloned().ok_or_else(|| {
        let known: Vec<&str> = arns.keys().map(String::as_str).collect();
        PortError::invalid(format!(
            "topic {topic:?} has no known ARN (known topics: {known:?}): pass the topic's ARN, or map the name to its ARN in AwsSettings.topic_arns (e.g. from BATCHFAN_PLAN_TOPIC_ARN / BATCHFAN_ALERTS_TOPIC_ARN)"
        ))
    })
}

/// Checks a message against SNS's limits; returns its size as SNS counts it
/// (body, subject, and each attribute's name, type and value).
pub(crate) fn check(topic: &str, m: &Message) -> PortResult<usize> {
    if let Some(subject) = &m.subject {
        let chars = subject.chars().count();
        if subject.is_empty() || chars > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
            return Err(PortError::invalid(format!(
                "subject {subject:?} of a message to {topic} is not valid for sns: use 1-{MAX_SUBJECT_CHARS} characters on one line"
            )));
        }
    }
    for (name, value) in &m.attributes {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_ATTRIBUTE_NAME
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(PortError::invalid(format!(
                "message attribute name {name:?} is not valid for sns: use 1-{MAX_ATTRIBUTE_NAME} letters, digits, '_', '-' or '.', not starting with AWS. or Amazon."
            )));
        }
        if value.is_empty() {
            return Err(PortError::invalid(format!(
                "message attribute {name:?} is empty: sns refuses empty attribute values; leave the attribute out"
            )));
        }
    }
    let size = m.body.len()
        + m.subject.as_ref().map_or(0, String::len)
        + m.attributes.iter().map(|(k, v)| k.len() + "String".len() + v.len()).sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(PortError::invalid(format!(
            "message to {topic} is {size} bytes with its attributes, over the sns limit of {MAX_MESSAGE_BYTES}: publish pointers (run id, table, object key), not data"
        )));
    }
    Ok(size)
}

#[async_trait]
impl Topic for SnsTopic {
    async fn publish(&self, topic: &str, message: Message) -> PortResult<String> {
        let arn = self.resolve(topic)?;
        check(topic, &message)?;
        let mut request =
            self.client.publish().topic_arn(&arn).message(message.body).set_subject(message.subject);
        for (name, value) in message.attributes {
            let attr =
                MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(
                    |e| PortError::backend(format!("cannot build message attribute {name:?}: {e}")),
                )?;
            request = request.message_attributes(name, attr);
        }
        let out = request.send().await.map_err(|e| port_error(&format!("sns Publish to {arn}"), e))?;
        out.message_id
            .ok_or_else(|| PortError::backend(format!("sns Publish to {arn} returned no message id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_resolve_by_arn_or_mapped_name() {
        let arn = "arn:aws:sns:eu-west-1:123456789012:orders-plan";
        let arns = BTreeMap::from([("orders-plan".to_owned(), arn.to_owned())]);
        assert_eq!(resolve(&arns, "orders-plan").unwrap(), arn);
        assert_eq!(resolve(&arns, "arn:aws:sns:us-east-1:1:x").unwrap(), "arn:aws:sns:us-east-1:1:x");
        let err = resolve(&arns, "orders-alerts").unwrap_err().to_string();
        assert!(
            err.contains("\"orders-alerts\"") && err.contains("topic_arns") && err.contains("orders-plan"),
            "{err}"
        );
    }

    #[test]
    fn sizes_count_attributes() {
        let body = "x".repeat(MAX_MESSAGE_BYTES - 10);
        assert!(check("t", &Message::new(body.clone())).is_ok());
        let err = check("t", &Message::new(body).with_attribute("run_id", "r-1")).unwrap_err().to_string();
        assert!(
            err.contains(&(MAX_MESSAGE_BYTES - 10 + 6 + 6 + 3).to_string()) && err.contains("pointers"),
            "{err}"
        );
    }

    #[test]
    fn subjects_and_attributes_follow_sns_rules() {
        let m = |s: &str| Message::new("b").with_subject(s);
        assert!(check("t", &m("Run r-1 failed")).is_ok());
        assert!(check("t", &m("two\nlines")).unwrap_err().to_string().contains("one line"));
        assert!(check("t", &m(&"s".repeat(101))).is_err());
        assert!(check("t", &Message::new("b").with_attribute("AWS.x", "v")).is_err());
        assert!(check("t", &Message::new("b").with_attribute("a b", "v")).is_err());
        assert!(check("t", &Message::new("b").with_attribute("ok", ""))
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
