//! Checks of single values against batchfan's and AWS's rules. Each returns
//! a [`ValueError`] naming the value, the rule and the fix, for the caller
//! to place (the spec loader puts it at the value's line and column).

use std::str::FromStr;

/// Reserved environment name prefixes: batchfan's pointers and what AWS Batch sets.
pub const RESERVED_ENV_PREFIXES: [&str; 2] = ["BATCHFAN_", "AWS_BATCH_"];
/// Largest webhook body: the Lambda Function URL request payload limit.
pub const MAX_WEBHOOK_BODY: i64 = 6 * 1024 * 1024;

/// Why one value of a spec breaks a rule.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// A name outside its pattern (pipeline, stage, environment variable,
    /// parameter, queue, topic, table).
    #[error("{what} {name:?} is not valid: use {rule}")]
    Name { what: &'static str, name: String, rule: &'static str },
    /// An environment variable that batchfan or AWS Batch sets for every job.
    #[error(
        "environment variable {name} is reserved ({prefix}* is set by batchfan or AWS Batch): rename it"
    )]
    Reserved { name: String, prefix: &'static str },
    /// A number outside what the key allows.
    #[error("{key} {value} {problem}: {fix}")]
    Number { key: String, value: String, problem: String, fix: String },
    /// A cron expression that does not parse (the parser's error is the source).
    #[error(
        "schedule {schedule:?} is not a valid cron expression ({source}): use `sec min hour day-of-month month day-of-week [year]`, e.g. \"0 0 2 * * Sun\""
    )]
    Cron {
        schedule: String,
        #[source]
        source: cron::error::Error,
    },
    /// A time zone name that is not in the IANA database (chrono-tz's error is the source).
    #[error("timezone {name:?} is not a known IANA time zone: use e.g. \"UTC\" or \"Europe/Paris\"")]
    Timezone {
        name: String,
        #[source]
        source: chrono_tz::ParseError,
    },
}

/// The spec loader's diagnostics carry the message.
impl From<ValueError> for String {
    fn from(e: ValueError) -> String {
        e.to_string()
    }
}

fn slug(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `Ok` if `ok`, else a [`ValueError::Name`].
fn name_rule(ok: bool, what: &'static str, name: &str, rule: &'static str) -> Result<(), ValueError> {
    if ok {
        Ok(())
    } else {
        Err(ValueError::Name { what, name: name.to_owned(), rule })
    }
}

fn number(key: &str, value: impl ToString, problem: impl Into<String>, fix: impl Into<String>) -> ValueError {
    ValueError::Number {
        key: key.to_owned(),
        value: value.to_string(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// A pipeline name: 1-40 of `[a-z0-9-]`, starting with a letter.
pub fn pipeline_name(name: &str) -> Result<(), ValueError> {
    let rule = "1-40 lowercase letters, digits or '-', starting with a letter";
    name_rule((1..=40).contains(&name.len()) && slug(name), "pipeline name", name, rule)
}

/// A stage name: 1-20 of `[a-z0-9-]`, starting with a letter.
pub fn stage_name(name: &str) -> Result<(), ValueError> {
    let rule = "1-20 lowercase letters, digits or '-', starting with a letter";
    name_rule((1..=20).contains(&name.len()) && slug(name), "stage name", name, rule)
}

/// An environment variable name that jobs may set.
pub fn env_name(name: &str) -> Result<(), ValueError> {
    let rule = "letters, digits and '_', not starting with a digit";
    name_rule(identifier(name), "environment variable name", name, rule)?;
    match RESERVED_ENV_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        Some(prefix) => Err(ValueError::Reserved { name: name.to_owned(), prefix }),
        None => Ok(()),
    }
}

/// A run parameter name: it reaches jobs as `BATCHFAN_PARAM_<NAME>`.
pub fn param_name(name: &str) -> Result<(), ValueError> {
    name_rule(identifier(name), "parameter name", name, "letters, digits and '_', not starting with a digit")
}

/// vCPUs: 0.25..=256 in steps of 0.25.
pub fn vcpus(v: f64) -> Result<(), ValueError> {
    if !(0.25..=256.0).contains(&v) {
        return Err(number("vcpus", v, "is out of range", "use 0.25 to 256"));
    }
    if (v * 4.0).fract() != 0.0 {
        return Err(number("vcpus", v, "is not a multiple of 0.25", "use e.g. 0.25, 0.5, 1 or 2"));
    }
    Ok(())
}

/// Memory in MiB: 16..=1,048,576.
pub fn memory(v: i64) -> Result<u64, ValueError> {
    if (16..=1_048_576).contains(&v) {
        Ok(v as u64)
    } else {
        Err(number(
            "memory",
            format!("{v} MiB"),
            "is out of range",
            "use 16 to 1048576 (MiB), e.g. memory = 2048",
        ))
    }
}

/// attemptDurationSeconds: at least 60.
pub fn timeout(v: i64) -> Result<u64, ValueError> {
    let min = crate::batch::MIN_TIMEOUT_SECS;
    if v >= min as i64 {
        Ok(v as u64)
    } else {
        let problem = format!("is below the AWS minimum of {min} seconds");
        Err(number("timeout", v, problem, format!("set timeout = {min} or more")))
    }
}

/// A job queue name: 1-128 of letters, digits, '-', '_', starting with a letter or digit.
pub fn queue(name: &str) -> Result<(), ValueError> {
    let ok = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    name_rule(ok, "queue", name, "1-128 letters, digits, '-' or '_', starting with a letter or digit")
}

/// An SNS topic name: 1-256 of letters, digits, '-', '_'.
pub fn topic(name: &str) -> Result<(), ValueError> {
    let ok = (1..=256).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    name_rule(ok, "topic", name, "1-256 letters, digits, '-' or '_'")
}

/// A table name (DynamoDB rules): 3-255 of letters, digits, '_', '.', '-'.
pub fn table(name: &str) -> Result<(), ValueError> {
    let ok = (3..=255).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    name_rule(ok, "table", name, "3-255 letters, digits, '_', '.' or '-'")
}

/// A cron expression with a seconds field first.
pub fn cron(schedule: &str) -> Result<(), ValueError> {
    cron::Schedule::from_str(schedule)
        .map(drop)
        .map_err(|source| ValueError::Cron { schedule: schedule.to_owned(), source })
}

/// An IANA time zone name.
pub fn timezone(name: &str) -> Result<(), ValueError> {
    chrono_tz::Tz::from_str(name)
        .map(drop)
        .map_err(|source| ValueError::Timezone { name: name.to_owned(), source })
}

/// Percentage of failed items tolerated: 0..=100.
pub fn percent(v: f64) -> Result<(), ValueError> {
    if (0.0..=100.0).contains(&v) {
        Ok(())
    } else {
        Err(number("tolerated_failure_percent", v, "is out of range", "use 0 to 100"))
    }
}

/// An integer that must be at least `min`.
pub fn at_least(key: &str, v: i64, min: i64) -> Result<u64, ValueError> {
    if v >= min {
        Ok(v as u64)
    } else {
        Err(number(key, v, "is too small", format!("set {key} = {min} or more")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(pipeline_name("orders-2").is_ok());
        assert!(pipeline_name("2orders").is_err());
        assert!(pipeline_name(&"a".repeat(41)).is_err());
        assert!(stage_name("confirm").is_ok());
        assert!(stage_name("Confirm").unwrap_err().to_string().contains("\"Confirm\""));
        assert!(queue("batchfan-orders").is_ok());
        assert!(queue("-x").is_err());
        assert!(topic("orders-alerts").is_ok());
        assert!(table("ab").is_err());
    }

    #[test]
    fn env_names_and_reserved_prefixes() {
        assert!(env_name("KEY_1").is_ok());
        assert!(env_name("1KEY").is_err());
        assert!(matches!(env_name("BATCHFAN_RUN"), Err(ValueError::Reserved { prefix: "BATCHFAN_", .. })));
        assert!(env_name("AWS_BATCH_JOB_ID").unwrap_err().to_string().contains("reserved"));
        assert!(env_name("AWS_REGION").is_ok());
    }

    #[test]
    fn resources_and_timeouts() {
        assert!(vcpus(0.25).is_ok());
        assert!(vcpus(256.0).is_ok());
        assert!(vcpus(0.3).unwrap_err().to_string().contains("multiple of 0.25"));
        assert!(vcpus(0.0).is_err());
        assert!(memory(15).is_err());
        assert_eq!(memory(2048).unwrap(), 2048);
        assert_eq!(
            memory(15).unwrap_err().to_string(),
            "memory 15 MiB is out of range: use 16 to 1048576 (MiB), e.g. memory = 2048"
        );
        assert_eq!(
            timeout(30).unwrap_err().to_string(),
            "timeout 30 is below the AWS minimum of 60 seconds: set timeout = 60 or more"
        );
        assert_eq!(
            at_least("count", -1, 0).unwrap_err().to_string(),
            "count -1 is too small: set count = 0 or more"
        );
    }

    #[test]
    fn cron_and_timezones() {
        assert!(cron("0 0 2 * * Sun").is_ok());
        assert!(cron("0 2 * *").is_err());
        assert!(timezone("Europe/Paris").is_ok());
        let err = timezone("Mars/Olympus").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
        assert!(std::error::Error::source(&err).is_some(), "chrono-tz's error is kept");
        let err = cron("0 2 * *").unwrap_err();
        assert!(
            err.to_string().starts_with("schedule \"0 2 * *\" is not a valid cron expression ("),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some(), "the cron parser's error is kept");
    }
}
