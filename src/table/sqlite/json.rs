//! A JSON writer for attribute values, with a fast path for the common case:
//! strings that need no escaping are copied as they are, checked eight bytes
//! at a time. Everything else is written by serde_json, so the output is
//! always the JSON serde_json would write.

use serde_json::Value;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Writes `value` as compact JSON.
pub(super) fn write_value(buf: &mut Vec<u8>, value: &Value) -> Result<(), serde_json::Error> {
    match value {
        Value::String(s) => write_str(buf, s),
        Value::Array(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_value(buf, item)?;
            }
            buf.push(b']');
            Ok(())
        }
        Value::Object(map) => {
            buf.push(b'{');
            for (i, (name, item)) in map.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_str(buf, name)?;
                buf.push(b':');
                write_value(buf, item)?;
            }
            buf.push(b'}');
            Ok(())
        }
        other => serde_json::to_writer(buf, other),
    }
}

/// Writes a JSON string.
pub(super) fn write_str(buf: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    if needs_escape(s.as_bytes()) {
        return serde_json::to_writer(buf, s);
    }
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
    Ok(())
}

/// Whether any byte is a control character, `"` or `\`.
fn needs_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if has_zero(x ^ (b'"' as u64 * ONES)) | has_zero(x ^ (b'\\' as u64 * ONES)) | has_less_than_space(x) {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Whether any byte of `x` is zero.
fn has_zero(x: u64) -> bool {
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// Whether any byte of `x` is below 0x20.
fn has_less_than_space(x: u64) -> bool {
    x.wrapping_sub(0x20 * ONES) & !x & HIGHS != 0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_what_serde_json_writes() {
        let samples = [
            json!("plain ascii long enough for words"),
            json!("ünïcödé and 日本語"),
            json!("quote\" in the middle of a long string"),
            json!("back\\slash"),
            json!("tab\there, newline\n, bell\u{7}, del\u{7f}"),
            json!(""),
            json!({"a": [1, -2, 3.5, 1e300, null, true, false], "b": {"c": "d\"", "": []}, "e": {}}),
            json!(u64::MAX),
        ];
        for v in samples {
            let mut buf = Vec::new();
            write_value(&mut buf, &v).unwrap();
            assert_eq!(String::from_utf8(buf).unwrap(), serde_json::to_string(&v).unwrap());
        }
    }

    #[test]
    fn finds_every_byte_that_needs_escaping_at_every_offset() {
        for len in 0..20 {
            for at in 0..len {
                for special in [b'"', b'\\', 0u8, 0x1f] {
                    let mut s = vec![b'a'; len];
                    s[at] = special;
                    assert!(needs_escape(&s), "len {len} at {at} byte {special:#x}");
                }
            }
            let clean: Vec<u8> = (0..len).map(|i| [b' ', b'~', 0x7f, 0xc3, b'!', b'#'][i % 6]).collect();
            assert!(!needs_escape(&clean), "len {len}");
        }
    }
}
