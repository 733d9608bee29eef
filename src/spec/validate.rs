//! Checks of single values against batchfan's and AWS's rules. Each returns
//! the message (naming the value and the fix) for the caller to place.

use std::str::FromStr;

/// Reserved environment name prefixes: batchfan's pointers and what AWS Batch sets.
pub const RESERVED_ENV_PREFIXES: [&str; 2] = ["BATCHFAN_", "AWS_BATCH_"];
/// Largest webhook body: the Lambda Function URL request payload limit.
pub const MAX_WEBHOOK_BODY: i64 = 6 * 1024 * 1024;

fn slug(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A pipeline name: 1-40 of `[a-z0-9-]`, starting with a letter.
pub fn pipeline_name(name: &str) -> Result<(), String> {
    if (1..=40).contains(&name.len()) && slug(name) {
        Ok(())
    } else {
        Err(format!(
            "pipeline name {name:?} is not valid: use 1-40 lowercase letters, digits or '-', starting with a letter"
        ))
    }
}

/// A stage name: 1-20 of `[a-z0-9-]`, starting with a letter.
pub fn stage_name(name: &str) -> Result<(), String> {
    if (1..=20).contains(&name.len()) && slug(name) {
        Ok(())
    } else {
        Err(format!(
            "stage name {name:?} is not valid: use 1-20 lowercase letters, digits or '-', starting with a letter"
        ))
    }
}

/// An environment variable name that jobs may set.
pub fn env_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "environment variable name {name:?} is not valid: use letters, digits and '_', not starting with a digit"
        ));
    }
    if let Some(p) = RESERVED_ENV_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(format!(
            "environment variable {name} is reserved ({p}* is set by batchfan or AWS Batch): rename it"
        ));
    }
    Ok(())
}

/// A run parameter name: it reaches jobs as `BATCHFAN_PARAM_<NAME>`.
pub fn param_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "parameter name {name:?} is not valid: use letters, digits and '_', not starting with a digit"
        ))
    }
}

/// vCPUs: 0.25..=256 in steps of 0.25.
pub fn vcpus(v: f64) -> Result<(), String> {
    if !(0.25..=256.0).contains(&v) {
        return Err(format!("vcpus {v} is out of range: use 0.25 to 256"));
    }
    if (v * 4.0).fract() != 0.0 {
        return Err(format!("vcpus {v} is not a multiple of 0.25: use e.g. 0.25, 0.5, 1 or 2"));
    }
    Ok(())
}

/// Memory in MiB: 16..=1,048,576.
pub fn memory(v: i64) -> Result<u64, String> {
    if (16..=1_048_576).contains(&v) {
        Ok(v as u64)
    } else {
        Err(format!("memory {v} MiB is out of range: use 16 to 1048576 (MiB), e.g. memory = 2048"))
    }
}

/// attemptDurationSeconds: at least 60.
pub fn timeout(v: i64) -> Result<u64, String> {
    let min = crate::batch::MIN_TIMEOUT_SECS;
    if v >= min as i64 {
        Ok(v as u64)
    } else {
        Err(format!("timeout {v} is below the AWS minimum of {min} seconds: set timeout = {min} or more"))
    }
}

/// A job queue name: 1-128 of letters, digits, '-', '_', starting with a letter or digit.
pub fn queue(name: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "queue {name:?} is not valid: use 1-128 letters, digits, '-' or '_', starting with a letter or digit"
        ))
    }
}

/// An SNS topic name: 1-256 of letters, digits, '-', '_'.
pub fn topic(name: &str) -> Result<(), String> {
    let ok = (1..=256).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("topic {name:?} is not valid: use 1-256 letters, digits, '-' or '_'"))
    }
}

/// A table name (DynamoDB rules): 3-255 of letters, digits, '_', '.', '-'.
pub fn table(name: &str) -> Result<(), String> {
    let ok = (3..=255).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("table {name:?} is not valid: use 3-255 letters, digits, '_', '.' or '-'"))
    }
}

/// A cron expression with a seconds field first.
pub fn cron(schedule: &str) -> Result<(), String> {
    cron::Schedule::from_str(schedule).map(|_| ()).map_err(|e| {
        format!(
            "schedule {schedule:?} is not a valid cron expression ({e}): use `sec min hour day-of-month month day-of-week [year]`, e.g. \"0 0 2 * * Sun\""
        )
    })
}

/// An IANA time zone name.
pub fn timezone(name: &str) -> Result<(), String> {
    chrono_tz::Tz::from_str(name).map(|_| ()).map_err(|_| {
        format!("timezone {name:?} is not a known IANA time zone: use e.g. \"UTC\" or \"Europe/Paris\"")
    })
}

/// Percentage of failed items tolerated: 0..=100.
pub fn percent(v: f64) -> Result<(), String> {
    if (0.0..=100.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("tolerated_failure_percent {v} is out of range: use 0 to 100"))
    }
}

/// An integer that must be at least `min`.
pub fn at_least(key: &str, v: i64, min: i64) -> Result<u64, String> {
    if v >= min {
        Ok(v as u64)
    } else {
        Err(format!("{key} {v} is too small: set {key} = {min} or more"))
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
        assert!(stage_name("Confirm").unwrap_err().contains("\"Confirm\""));
        assert!(queue("batchfan-orders").is_ok());
        assert!(queue("-x").is_err());
        assert!(topic("orders-alerts").is_ok());
        assert!(table("ab").is_err());
    }

    #[test]
    fn env_names_and_reserved_prefixes() {
        assert!(env_name("KEY_1").is_ok());
        assert!(env_name("1KEY").is_err());
        assert!(env_name("BATCHFAN_RUN").unwrap_err().contains("reserved"));
        assert!(env_name("AWS_BATCH_JOB_ID").unwrap_err().contains("reserved"));
        assert!(env_name("AWS_REGION").is_ok());
    }

    #[test]
    fn resources_and_timeouts() {
        assert!(vcpus(0.25).is_ok());
        assert!(vcpus(256.0).is_ok());
        assert!(vcpus(0.3).unwrap_err().contains("multiple of 0.25"));
        assert!(vcpus(0.0).is_err());
        assert!(memory(15).is_err());
        assert_eq!(memory(2048), Ok(2048));
        assert_eq!(
            timeout(30).unwrap_err(),
            "timeout 30 is below the AWS minimum of 60 seconds: set timeout = 60 or more"
        );
    }

    #[test]
    fn cron_and_timezones() {
        assert!(cron("0 0 2 * * Sun").is_ok());
        assert!(cron("0 2 * *").is_err());
        assert!(timezone("Europe/Paris").is_ok());
        assert!(timezone("Mars/Olympus").unwrap_err().contains("Mars/Olympus"));
    }
}
