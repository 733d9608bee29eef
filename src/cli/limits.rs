//! Argument checks clap runs before a command does anything: a bad value
//! exits 2 with the value, the allowed range and the fix. Whole numbers use
//! `clap::value_parser!(u64).range(..)` at the flag; these are the rest.

use std::ffi::OsStr;

use clap::{builder::TypedValueParser, error::ErrorKind};

use crate::trigger::{check_request_id, MAX_REQUEST_ID, REQUEST_ID_CHARS};

/// Most vCPUs `--vcpus` accepts (the local engine's capacity).
pub const MAX_VCPUS: f64 = 4096.0;
/// Most MiB `--memory` accepts (16 TiB).
pub const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024;
/// Longest `--poll` of `run --backend aws`, in seconds.
pub const MAX_POLL_SECONDS: f64 = 3600.0;

/// `--request-id`: 1-100 characters of letters, digits, `-`, `_`, `.`, `:`.
/// Its error is the library's message alone: clap's usual one would echo a
/// 5,000-character id in full.
#[derive(Debug, Clone, Copy)]
pub struct RequestId;

impl TypedValueParser for RequestId {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        let refuse = |msg: String| {
            clap::Error::raw(ErrorKind::ValueValidation, format!("--request-id: {msg}\n")).with_cmd(cmd)
        };
        let raw = value.to_str().ok_or_else(|| {
            refuse(format!("the id is not UTF-8: use 1-{MAX_REQUEST_ID} characters of {REQUEST_ID_CHARS}"))
        })?;
        check_request_id(raw).map_err(|e| refuse(e.to_string()))?;
        Ok(raw.to_owned())
    }
}

/// `--vcpus`: a number above 0 and at most [`MAX_VCPUS`].
pub fn vcpus(raw: &str) -> Result<f64, String> {
    positive(raw, MAX_VCPUS, "vCPUs", "2 or 0.5")
}

/// `--poll`: seconds above 0 and at most [`MAX_POLL_SECONDS`].
pub fn poll_seconds(raw: &str) -> Result<f64, String> {
    positive(raw, MAX_POLL_SECONDS, "seconds", "10 or 0.5")
}

fn positive(raw: &str, max: f64, unit: &str, example: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= max => Ok(v),
        _ => Err(format!(
            "{raw:?} is not in (0, {max}]: give a number of {unit} above 0 and at most {max}, like {example}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("0")]
    #[case("-1")]
    #[case("nan")]
    #[case("inf")]
    #[case("4097")]
    #[case("two")]
    #[case("")]
    fn vcpus_outside_the_range_are_refused_with_the_range(#[case] raw: &str) {
        let msg = vcpus(raw).expect_err("refused");
        assert!(msg.contains(&format!("{raw:?}")) && msg.contains("(0, 4096]"), "{msg}");
    }

    #[rstest]
    #[case("0.5", 0.5)]
    #[case("2", 2.0)]
    #[case("4096", 4096.0)]
    fn vcpus_in_the_range_pass(#[case] raw: &str, #[case] want: f64) {
        assert_eq!(vcpus(raw), Ok(want));
    }

    #[test]
    fn poll_must_be_positive() {
        assert!(poll_seconds("0").unwrap_err().contains("(0, 3600]"));
        assert_eq!(poll_seconds("0.2"), Ok(0.2));
    }
}
