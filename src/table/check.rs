//! DynamoDB's rules for names, keys and item sizes, and condition evaluation.
//!
//! The local table enforces the same limits DynamoDB does, so a pipeline that
//! runs locally does not fail on AWS for a name or a size.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::{
    error::PortError,
    table::{Condition, Item, Key, MAX_ITEM_BYTES, PK, SK},
};

/// Longest partition key DynamoDB accepts, in bytes.
pub(crate) const MAX_PK_BYTES: usize = 2048;
/// Longest sort key DynamoDB accepts, in bytes.
pub(crate) const MAX_SK_BYTES: usize = 1024;

/// Checks DynamoDB's table naming rule: 3-255 of `[A-Za-z0-9_.-]`.
pub(crate) fn table_name(name: &str) -> Result<(), PortError> {
    let ok = (3..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PortError::invalid(format!(
            "table name {name:?} is not valid: use 3-255 letters, digits, '_', '.' or '-'"
        )))
    }
}

/// Checks that both key parts are non-empty and within DynamoDB's key sizes.
pub(crate) fn key(key: &Key) -> Result<(), PortError> {
    key_parts(&key.pk, &key.sk)
}

/// [`key`] on the parts of a key.
pub(crate) fn key_parts(pk: &str, sk: &str) -> Result<(), PortError> {
    for (name, value, max) in [(PK, pk, MAX_PK_BYTES), (SK, sk, MAX_SK_BYTES)] {
        if value.is_empty() {
            return Err(PortError::invalid(format!(
                "key ({:?}, {:?}) has an empty {name}: give every item a non-empty {name}",
                pk, sk
            )));
        }
        if value.len() > max {
            return Err(PortError::invalid(format!(
                "{name} of {} bytes exceeds dynamodb's {max}: use a shorter {name} (store long values as attributes)",
                value.len()
            )));
        }
    }
    Ok(())
}

/// Checks an item's key, and that no attribute shadows the key.
pub(crate) fn item_shape(item: &Item) -> Result<(), PortError> {
    key(&item.key)?;
    attrs(&item.key, &item.attrs)
}

/// Checks an item's size, given the length of its encoded attributes.
pub(crate) fn item_size(key: &Key, encoded_len: usize) -> Result<(), PortError> {
    item_size_parts(&key.pk, &key.sk, encoded_len)
}

/// [`item_size`] on the parts of a key.
pub(crate) fn item_size_parts(pk: &str, sk: &str, encoded_len: usize) -> Result<(), PortError> {
    let size = PK.len() + SK.len() + pk.len() + sk.len() + encoded_len;
    if size > MAX_ITEM_BYTES {
        return Err(PortError::invalid(format!(
            "item ({:?}, {:?}) is {size} bytes, over dynamodb's {MAX_ITEM_BYTES}: store large values in objects and keep a pointer in the item",
            pk, sk
        )));
    }
    Ok(())
}

/// Rejects attributes named like the key: DynamoDB would silently replace the key.
fn attrs(key: &Key, attrs: &Map<String, Value>) -> Result<(), PortError> {
    attrs.keys().try_for_each(|name| attr_name(key, name))
}

/// Rejects an attribute named like the key.
pub(crate) fn attr_name(key: &Key, name: &str) -> Result<(), PortError> {
    if name == PK || name == SK {
        return Err(PortError::invalid(format!(
            "item ({:?}, {:?}) has an attribute named {name:?}: set the key through Item::key, not as an attribute",
            key.pk, key.sk
        )));
    }
    Ok(())
}

impl Condition {
    /// Whether a write under this condition may proceed, given the item as
    /// it is now: what DynamoDB evaluates on its side, and the local table on its.
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match (self, current) {
            (Condition::None, _) => true,
            (Condition::NotExists, current) => current.is_none(),
            (Condition::Equals(..), None) => false,
            (Condition::NotExistsOrEquals(..), None) => true,
            (Condition::Equals(name, want) | Condition::NotExistsOrEquals(name, want), Some(item)) => {
                attr(item, name).is_some_and(|have| same_value(&have, want))
            }
        }
    }
}

/// An attribute of an item, the key parts included.
fn attr<'a>(item: &'a Item, name: &str) -> Option<Cow<'a, Value>> {
    match name {
        PK => Some(Cow::Owned(Value::String(item.key.pk.clone()))),
        SK => Some(Cow::Owned(Value::String(item.key.sk.clone()))),
        _ => item.attrs.get(name).map(Cow::Borrowed),
    }
}

/// Equality as DynamoDB sees it: numbers compare by value (`1` equals `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn table_names_follow_dynamodb_rules() {
        for good in ["abc", "Orders_2024.v1-x", &"a".repeat(255)] {
            assert!(table_name(good).is_ok(), "{good}");
        }
        for bad in ["ab", "", "has space", "slash/y", "ünï", &"a".repeat(256)] {
            let err = table_name(bad).unwrap_err().to_string();
            assert!(err.contains("3-255"), "{err}");
        }
    }

    #[test]
    fn keys_must_be_non_empty_and_short() {
        assert!(key(&Key::new("a", "b")).is_ok());
        assert!(key(&Key::new("", "b")).unwrap_err().to_string().contains("empty pk"));
        assert!(key(&Key::new("a", "")).unwrap_err().to_string().contains("empty sk"));
        assert!(key(&Key::new("a".repeat(2049), "b")).unwrap_err().to_string().contains("2048"));
        assert!(key(&Key::new("a", "b".repeat(1025))).unwrap_err().to_string().contains("1024"));
    }

    #[test]
    fn attributes_may_not_shadow_the_key() {
        let it = Item::new(Key::new("a", "b")).with("pk", "x");
        assert!(item_shape(&it).unwrap_err().to_string().contains("Item::key"));
        let err = item_size(&Key::new("a", "b"), MAX_ITEM_BYTES).unwrap_err().to_string();
        assert!(err.contains("409606 bytes"), "{err}");
    }

    #[test]
    fn conditions() {
        let it = Item::new(Key::new("a", "b")).with("state", "open").with("n", 1);
        let eq = |n: &str, v: Value| Condition::Equals(n.into(), v);
        let ne = |n: &str, v: Value| Condition::NotExistsOrEquals(n.into(), v);
        assert!(Condition::NotExists.holds(None));
        assert!(!Condition::NotExists.holds(Some(&it)));
        assert!(!eq("state", json!("open")).holds(None));
        assert!(eq("state", json!("open")).holds(Some(&it)));
        assert!(!eq("state", json!("done")).holds(Some(&it)));
        assert!(!eq("missing", json!("open")).holds(Some(&it)));
        assert!(eq("n", json!(1.0)).holds(Some(&it)));
        assert!(eq("pk", json!("a")).holds(Some(&it)));
        assert!(ne("state", json!("done")).holds(None));
        assert!(ne("state", json!("open")).holds(Some(&it)));
        assert!(!ne("state", json!("done")).holds(Some(&it)));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_value(&json!({"a": [1, 2.5]}), &json!({"a": [1.0, 2.5]})));
        assert!(!same_value(&json!(-1), &json!(u64::MAX)));
        assert!(!same_value(&json!("1"), &json!(1)));
    }
}
