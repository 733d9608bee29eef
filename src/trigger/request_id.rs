//! Request ids: the idempotency key a caller names a manual run with
//! (`--request-id`, the status page's Run button, the JSON API, the trigger
//! Lambda's manual invoke). The same id always means the same run.
//!
//! An id is 1 to [`MAX_REQUEST_ID`] characters of [`REQUEST_ID_CHARS`]: short
//! enough that the idempotency claim's key (`claim#{pipeline}#request:{id}`)
//! stays far below DynamoDB's 2,048-byte partition key, and plain enough to
//! sit in a URL, a log line or a shell without quoting.
//!
//! ```
//! use batchfan::trigger::check_request_id;
//! assert!(check_request_id("nightly-2026-11-23").is_ok());
//! assert!(check_request_id("").is_err());
//! ```

/// Longest request id, in characters.
pub const MAX_REQUEST_ID: usize = 100;

/// The characters a request id may hold, as documented.
pub const REQUEST_ID_CHARS: &str = "letters, digits, '-', '_', '.', ':'";

/// A request id outside the documented set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    /// The id is empty.
    #[error("request id is empty: use 1-{MAX_REQUEST_ID} characters of {REQUEST_ID_CHARS}")]
    Empty,
    /// The id is longer than [`MAX_REQUEST_ID`].
    #[error(
        "request id {shown} is {len} characters long: use 1-{MAX_REQUEST_ID} characters of {REQUEST_ID_CHARS}"
    )]
    TooLong {
        /// The id, cut to its first 40 characters.
        shown: String,
        len: usize,
    },
    /// The id holds a character outside [`REQUEST_ID_CHARS`].
    #[error("request id {id:?} holds {bad:?}: use 1-{MAX_REQUEST_ID} characters of {REQUEST_ID_CHARS}")]
    BadChar { id: String, bad: char },
}

/// Checks a request id: 1 to [`MAX_REQUEST_ID`] characters of [`REQUEST_ID_CHARS`].
pub fn check_request_id(id: &str) -> Result<(), RequestIdError> {
    let len = id.chars().count();
    if len == 0 {
        return Err(RequestIdError::Empty);
    }
    if len > MAX_REQUEST_ID {
        let head: String = id.chars().take(40).collect();
        return Err(RequestIdError::TooLong { shown: format!("{head:?}…"), len });
    }
    match id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))) {
        Some(bad) => Err(RequestIdError::BadChar { id: id.to_owned(), bad }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::word("nightly")]
    #[case::date("nightly-2026-11-23")]
    #[case::all_kinds("A.b_c-d:9")]
    #[case::one("x")]
    #[case::longest(&"a".repeat(MAX_REQUEST_ID))]
    #[case::uuid("8476a536-e9f4-11e8-9739-2dfe598c3fcd")]
    fn accepts(#[case] id: &str) {
        assert_eq!(check_request_id(id), Ok(()));
    }

    #[rstest]
    #[case::empty("", "request id is empty")]
    #[case::too_long(&"a".repeat(MAX_REQUEST_ID + 1), "is 101 characters long")]
    #[case::five_thousand(&"r".repeat(5000), "is 5000 characters long")]
    #[case::space("a b", "holds ' '")]
    #[case::slash("a/b", "holds '/'")]
    #[case::hash("a#b", "holds '#'")]
    #[case::newline("a\nb", "holds '\\n'")]
    #[case::non_ascii("café", "holds 'é'")]
    fn refuses_with_the_value_and_the_allowed_set(#[case] id: &str, #[case] names: &str) {
        let msg = check_request_id(id).expect_err("refused").to_string();
        assert!(msg.contains(names), "{msg}");
        assert!(msg.contains("1-100 characters of letters, digits, '-', '_', '.', ':'"), "{msg}");
        assert!(msg.len() < 200, "a long id is cut in the message: {msg}");
    }
}
