//! SNS's rules for topic names and messages, enforced by the local bus so a
//! pipeline that publishes here publishes on AWS too.

use crate::{
    error::PortError,
    topic::{Message, MAX_MESSAGE_BYTES},
};

/// Longest SNS subject, in characters.
const MAX_SUBJECT_CHARS: usize = 100;
/// Most message attributes SNS accepts on one message.
const MAX_ATTRIBUTES: usize = 10;

/// SNS topic names: 1-256 letters, digits, '-' or '_'.
pub(super) fn topic(name: &str) -> Result<(), PortError> {
    if is_sns_name(name) {
        Ok(())
    } else {
        Err(PortError::invalid(format!(
            "topic name {name:?} is not valid: use 1-256 letters, digits, '-' or '_'"
        )))
    }
}

/// Subscription names follow the same rule as topic names.
pub(super) fn subscription(name: &str) -> Result<(), PortError> {
    if is_sns_name(name) {
        Ok(())
    } else {
        Err(PortError::invalid(format!(
            "subscription name {name:?} is not valid: use 1-256 letters, digits, '-' or '_'"
        )))
    }
}

fn is_sns_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A message SNS would accept: non-empty body, total size (body, subject,
/// attribute names, types and values) within 256 KiB, a short one-line
/// subject, at most 10 attributes with non-empty values.
pub(super) fn message(msg: &Message) -> Result<(), PortError> {
    let size = msg.body.len()
        + msg.subject.as_ref().map_or(0, String::len)
        + msg.attributes.iter().map(|(k, v)| k.len() + "String".len() + v.len()).sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(PortError::invalid(format!(
            "message of {size} bytes exceeds sns's {MAX_MESSAGE_BYTES}: pass pointers (an s3:// uri, a table key), not data"
        )));
    }
    if msg.body.is_empty() {
        return Err(PortError::invalid("message body is empty: sns needs a non-empty body"));
    }
    if let Some(subject) = &msg.subject {
        let ok = !subject.is_empty()
            && subject.chars().count() <= MAX_SUBJECT_CHARS
            && subject.chars().all(|c| c.is_ascii() && !c.is_ascii_control());
        if !ok {
            return Err(PortError::invalid(format!(
                "subject {subject:?} is not valid: use 1-{MAX_SUBJECT_CHARS} printable ascii characters on one line"
            )));
        }
    }
    if msg.attributes.len() > MAX_ATTRIBUTES {
        return Err(PortError::invalid(format!(
            "message has {} attributes, over sns's {MAX_ATTRIBUTES}: merge some into the body",
            msg.attributes.len()
        )));
    }
    if let Some((name, _)) = msg.attributes.iter().find(|(k, v)| k.is_empty() || v.is_empty()) {
        return Err(PortError::invalid(format!(
            "message attribute {name:?} has an empty name or value: sns needs both non-empty"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(topic("batchfan-plans_1").is_ok());
        for bad in ["", "has space", "a.b", &"a".repeat(257)] {
            assert!(topic(bad).unwrap_err().to_string().contains("1-256"), "{bad}");
        }
        assert!(subscription("x/y").unwrap_err().to_string().contains("subscription name"));
    }

    #[test]
    fn messages() {
        assert!(message(&Message::new("x").with_subject("Run failed").with_attribute("run", "r1")).is_ok());
        let big = message(&Message::new("x".repeat(MAX_MESSAGE_BYTES + 1))).unwrap_err().to_string();
        assert!(big.contains("262145 bytes") && big.contains("pointers"), "{big}");
        assert!(message(&Message::new("")).unwrap_err().to_string().contains("empty"));
        assert!(message(&Message::new("x").with_subject("a\nb"))
            .unwrap_err()
            .to_string()
            .contains("subject"));
        assert!(message(&Message::new("x").with_subject("y".repeat(101))).is_err());
        let mut many = Message::new("x");
        for i in 0..11 {
            many = many.with_attribute(&format!("a{i}"), "v");
        }
        assert!(message(&many).unwrap_err().to_string().contains("11 attributes"));
        assert!(message(&Message::new("x").with_attribute("k", ""))
            .unwrap_err()
            .to_string()
            .contains("\"k\""));
    }
}
