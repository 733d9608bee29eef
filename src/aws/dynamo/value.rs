//! JSON attribute values ↔ DynamoDB `AttributeValue`s.
//!
//! | JSON | DynamoDB |
//! | --- | --- |
//! | string | `S` |
//! | number | `N` (the number's exact decimal text) |
//! | true / false | `BOOL` |
//! | null | `NULL` |
//! | array | `L` |
//! | object | `M` |
//!
//! Numbers round-trip exactly: a u64 or i64 is written as its digits and read
//! back as the same integer (also past 2^53, where an f64 would round); an f64
//! is written in its shortest round-trip form (`3.5`, `1e-7`) and read back
//! as the same f64. DynamoDB itself normalises number text (it answers `3` for
//! `3.0`), so an integral float may come back as an integer: equal by value,
//! which is how both backends compare numbers in conditions. DynamoDB rejects
//! numbers beyond its range (magnitudes over 9.99e125 or under 1e-130); they
//! are refused here first, naming the attribute.
//!
//! Reading items other tools wrote: string and number sets (`SS`, `NS`) read
//! as arrays; integers longer than 64 bits read as the nearest f64; binary
//! values (`B`, `BS`) are refused with an error naming the attribute.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use crate::{
    error::PortError,
    table::{Item, Key, PK, SK},
};

/// Magnitudes from here up are beyond DynamoDB's largest (9.99...e125 with 38 digits).
const TOO_LARGE: f64 = 1e126;
/// Smallest non-zero magnitude DynamoDB stores.
const MIN_MAGNITUDE: f64 = 1e-130;

/// The attribute value of a JSON value; `name` is the attribute, for errors.
pub(crate) fn to_attr(name: &str, value: &Value) -> Result<AttributeValue, PortError> {
    Ok(match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Number(n) => AttributeValue::N(number_text(name, n)?),
        Value::Array(items) => {
            AttributeValue::L(items.iter().map(|v| to_attr(name, v)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => AttributeValue::M(
            map.iter().map(|(k, v)| Ok((k.clone(), to_attr(name, v)?))).collect::<Result<_, PortError>>()?,
        ),
    })
}

/// The decimal text DynamoDB stores for a number.
fn number_text(name: &str, n: &Number) -> Result<String, PortError> {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        let magnitude = f.abs();
        if magnitude >= TOO_LARGE || (magnitude != 0.0 && magnitude < MIN_MAGNITUDE) {
            return Err(PortError::invalid(format!(
                "attribute {name:?} holds the number {n}, outside dynamodb's range (1e-130 to 9.99e125 in magnitude): store it as a string"
            )));
        }
    }
    Ok(n.to_string())
}

/// The JSON value of an attribute value; `name` is the attribute, for errors.
pub(crate) fn from_attr(name: &str, value: AttributeValue) -> Result<Value, PortError> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::N(text) => Value::Number(parse_number(name, &text)?),
        AttributeValue::L(items) => {
            Value::Array(items.into_iter().map(|v| from_attr(name, v)).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => Value::Object(
            map.into_iter().map(|(k, v)| Ok((k, from_attr(name, v)?))).collect::<Result<_, PortError>>()?,
        ),
        AttributeValue::Ss(items) => Value::Array(items.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(items) => Value::Array(
            items.iter().map(|t| parse_number(name, t).map(Value::Number)).collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(PortError::backend(format!(
            "attribute {name:?} has a {} value, which batchfan cannot read as json: store text or numbers",
            kind(&other)
        )))
        }
    })
}

/// Parses DynamoDB number text exactly: integers as u64/i64, the rest as f64.
pub(crate) fn parse_number(name: &str, text: &str) -> Result<Number, PortError> {
    let bad = || PortError::backend(format!("attribute {name:?} holds {text:?}, which is not a number"));
    let integral = !text.contains(['.', 'e', 'E']);
    if integral {
        if let Ok(u) = text.parse::<u64>() {
            return Ok(Number::from(u));
        }
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Number::from(i));
        }
    }
    let f: f64 = text.parse().map_err(|_| bad())?;
    Number::from_f64(f).ok_or_else(bad)
}

fn kind(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::B(_) => "binary (B)",
        AttributeValue::Bs(_) => "binary set (BS)",
        _ => "unknown",
    }
}

/// The DynamoDB item (key attributes included) of an [`Item`].
pub(crate) fn to_item(item: &Item) -> Result<HashMap<String, AttributeValue>, PortError> {
    let mut out = HashMap::with_capacity(item.attrs.len() + 2);
    out.insert(PK.to_owned(), AttributeValue::S(item.key.pk.clone()));
    out.insert(SK.to_owned(), AttributeValue::S(item.key.sk.clone()));
    for (name, value) in &item.attrs {
        out.insert(name.clone(), to_attr(name, value)?);
    }
    Ok(out)
}

/// The DynamoDB key of a [`Key`].
pub(crate) fn to_key(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// The [`Item`] of a DynamoDB item.
pub(crate) fn from_item(mut map: HashMap<String, AttributeValue>) -> Result<Item, PortError> {
    let mut key_part = |name: &str| match map.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        other => Err(PortError::backend(format!(
            "item has no string {name:?} attribute ({other:?}): batchfan tables have string keys pk and sk"
        ))),
    };
    let key = Key { pk: key_part(PK)?, sk: key_part(SK)? };
    let mut attrs = Map::new();
    for (name, value) in map {
        let value = from_attr(&name, value)?;
        attrs.insert(name, value);
    }
    Ok(Item { key, attrs })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(v: Value) -> Value {
        from_attr("a", to_attr("a", &v).unwrap()).unwrap()
    }

    #[test]
    fn scalars_map_to_their_dynamodb_types() {
        assert_eq!(to_attr("a", &json!(null)).unwrap(), AttributeValue::Null(true));
        assert_eq!(to_attr("a", &json!(true)).unwrap(), AttributeValue::Bool(true));
        assert_eq!(to_attr("a", &json!("")).unwrap(), AttributeValue::S(String::new()));
        assert_eq!(to_attr("a", &json!(42)).unwrap(), AttributeValue::N("42".into()));
        assert_eq!(to_attr("a", &json!(-7)).unwrap(), AttributeValue::N("-7".into()));
        assert_eq!(to_attr("a", &json!(3.5)).unwrap(), AttributeValue::N("3.5".into()));
        assert_eq!(
            to_attr("a", &json!([1, {"k": "v"}])).unwrap(),
            AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::M(HashMap::from([("k".into(), AttributeValue::S("v".into()))])),
            ])
        );
    }

    #[test]
    fn numbers_round_trip_exactly() {
        for v in [
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(9_007_199_254_740_993u64),
            json!(-9_007_199_254_740_993i64),
            json!(0.1),
            json!(-2.5e-100),
            json!(1.7976931348623157e100),
            json!(f64::EPSILON),
            json!(3.0),
        ] {
            let back = round_trip(v.clone());
            assert_eq!(back, v, "{v}");
            assert_eq!(back.is_f64(), v.is_f64(), "{v} keeps its kind");
        }
    }

    #[test]
    fn dynamodb_normalised_numbers_read_by_value() {
        assert_eq!(parse_number("a", "3").unwrap(), Number::from(3u64));
        assert_eq!(parse_number("a", "-0").unwrap(), Number::from(0i64));
        assert_eq!(parse_number("a", "1E+2").unwrap().as_f64(), Some(100.0));
        assert_eq!(
            parse_number("a", "123456789012345678901234567890").unwrap().as_f64(),
            Some(1.2345678901234568e29)
        );
        assert!(parse_number("a", "abc").unwrap_err().to_string().contains("\"abc\""));
    }

    #[test]
    fn numbers_outside_dynamodb_range_are_refused() {
        let err = to_attr("ratio", &json!({"x": [1e200]})).unwrap_err();
        assert!(
            matches!(&err, PortError::Invalid(m) if m.contains("\"ratio\"") && m.contains("string")),
            "{err}"
        );
        assert!(to_attr("tiny", &json!(1e-200)).is_err());
        assert!(to_attr("zero", &json!(0.0)).is_ok());
        assert!(to_attr("big", &json!(u64::MAX)).is_ok());
    }

    #[test]
    fn nested_values_round_trip() {
        let v =
            json!({"list": [1, "two", true, null, {"deeper": [2.25, []]}], "map": {"k": "v", "empty": {}}});
        assert_eq!(round_trip(v.clone()), v);
    }

    #[test]
    fn sets_read_as_arrays_and_binary_is_refused() {
        let ss = AttributeValue::Ss(vec!["a".into(), "b".into()]);
        assert_eq!(from_attr("s", ss).unwrap(), json!(["a", "b"]));
        let ns = AttributeValue::Ns(vec!["1".into(), "2.5".into()]);
        assert_eq!(from_attr("n", ns).unwrap(), json!([1, 2.5]));
        let b = AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![1]));
        let err = from_attr("payload", b).unwrap_err().to_string();
        assert!(err.contains("\"payload\"") && err.contains("binary"), "{err}");
    }

    #[test]
    fn items_round_trip_with_their_keys() {
        let item = Item::new(Key::new("run#1", "item#0001")).with("n", 1).with("s", "x");
        let map = to_item(&item).unwrap();
        assert_eq!(map["pk"], AttributeValue::S("run#1".into()));
        assert_eq!(map["sk"], AttributeValue::S("item#0001".into()));
        assert_eq!(from_item(map).unwrap(), item);
        let err = from_item(HashMap::from([("pk".into(), AttributeValue::S("p".into()))])).unwrap_err();
        assert!(err.to_string().contains("\"sk\""), "{err}");
    }
}
