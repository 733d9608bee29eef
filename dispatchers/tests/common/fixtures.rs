//! Recorded event payloads (`tests/fixtures/*.json`, real AWS shapes) with
//! their placeholders (`PIPELINE`, `RUN`, `JOB_ID`, ...) filled in.

#![allow(dead_code)]

use serde_json::Value;

/// The fixture `name` with each `(placeholder, value)` replaced, as JSON.
pub fn fixture(name: &str, fill: &[(&str, &str)]) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    for (from, to) in fill {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON after filling: {e}"))
}

/// Parses `value` as `T`, serialises it and parses it again: the two parses must agree.
pub fn round_trip<T>(value: &Value) -> T
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let first: T = serde_json::from_value(value.clone()).expect("fixture parses");
    let again: T =
        serde_json::from_value(serde_json::to_value(&first).expect("serialises")).expect("re-parses");
    assert_eq!(first, again, "serde round trip changed the event");
    first
}
