//! Refused webhook requests: counted per pipeline and reason, and logged at
//! most once per [`LOG_EVERY_SECS`] with the count, so unauthenticated noise can
//! neither flood the log nor push real notices off the status page.
//!
//! Pure bookkeeping with injected time: the caller passes `now` and writes the
//! [`Summary`] a call returns (if any) to its log.
//!
//! ```
//! use batchfan::trigger::refusals::Refusals;
//! use chrono::{TimeZone, Utc};
//! let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
//! let mut r = Refusals::default();
//! assert!(r.record("orders", "unsigned", t0).is_some(), "the first refusal is logged");
//! for _ in 0..249 {
//!     assert!(r.record("orders", "unsigned", t0).is_none(), "the rest wait a minute");
//! }
//! assert_eq!(r.view().total, 250);
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Smallest time between two log lines about refusals, in seconds.
pub const LOG_EVERY_SECS: i64 = 60;

/// How many requests one pipeline refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalCount {
    pub pipeline: String,
    pub reason: String,
    pub count: u64,
    pub last_at: DateTime<Utc>,
}

/// Everything refused since the process started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefusalsView {
    pub total: u64,
    pub last_at: Option<DateTime<Utc>>,
    pub by_reason: Vec<RefusalCount>,
}

/// What to log: the refusals since the previous log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Refused since the previous line.
    pub count: u64,
    /// Refused since the process started.
    pub total: u64,
    /// `pipeline/reason=n` of the refusals since the previous line.
    pub detail: String,
}

/// The counters and the log's rate limit.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: BTreeMap<(String, String), (u64, DateTime<Utc>)>,
    total: u64,
    last_at: Option<DateTime<Utc>>,
    last_logged: Option<DateTime<Utc>>,
    unlogged: BTreeMap<(String, String), u64>,
}

impl Refusals {
    /// Counts one refusal at `now`; `Some` when a log line is due.
    pub fn record(&mut self, pipeline: &str, reason: &str, now: DateTime<Utc>) -> Option<Summary> {
        let key = (pipeline.to_owned(), reason.to_owned());
        let entry = self.counts.entry(key.clone()).or_insert((0, now));
        *entry = (entry.0 + 1, now);
        self.total += 1;
        self.last_at = Some(now);
        *self.unlogged.entry(key).or_default() += 1;
        self.due(now)
    }

    /// `Some` when refusals are waiting and the last line is at least [`LOG_EVERY_SECS`] old:
    /// call it now and then so the tail of a burst is logged too.
    pub fn flush(&mut self, now: DateTime<Utc>) -> Option<Summary> {
        self.due(now)
    }

    fn due(&mut self, now: DateTime<Utc>) -> Option<Summary> {
        if self.unlogged.is_empty()
            || self.last_logged.is_some_and(|t| now - t < Duration::seconds(LOG_EVERY_SECS))
        {
            return None;
        }
        self.last_logged = Some(now);
        let unlogged = std::mem::take(&mut self.unlogged);
        let detail = unlogged.iter().map(|((p, r), n)| format!("{p}/{r}={n}")).collect::<Vec<_>>().join(" ");
        Some(Summary { count: unlogged.values().sum(), total: self.total, detail })
    }

    /// The counters, for the status page and `/api/service`.
    pub fn view(&self) -> RefusalsView {
        RefusalsView {
            total: self.total,
            last_at: self.last_at,
            by_reason: self
                .counts
                .iter()
                .map(|((pipeline, reason), (count, last_at))| RefusalCount {
                    pipeline: pipeline.clone(),
                    reason: reason.clone(),
                    count: *count,
                    last_at: *last_at,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn logs_the_first_refusal_then_at_most_once_a_minute_with_the_count() {
        let mut r = Refusals::default();
        let first = r.record("orders", "unsigned", at(0)).expect("the first is logged");
        assert_eq!((first.count, first.total, first.detail.as_str()), (1, 1, "orders/unsigned=1"));
        let mut lines = 0;
        for i in 0..250 {
            // 250 refusals over 59 s: none is logged.
            if r.record("orders", if i % 2 == 0 { "unsigned" } else { "bad-signature" }, at(i * 59 / 250))
                .is_some()
            {
                lines += 1;
            }
        }
        assert_eq!(lines, 0);
        assert_eq!(r.flush(at(59)), None, "not a minute yet");
        let next = r.flush(at(60)).expect("a minute later, the tail of the burst");
        assert_eq!((next.count, next.total), (250, 251));
        assert_eq!(next.detail, "orders/bad-signature=125 orders/unsigned=125");
        assert_eq!(r.flush(at(500)), None, "nothing waiting, nothing logged");
        let later = r.record("hook", "stale", at(500)).expect("a quiet minute passed");
        assert_eq!((later.count, later.total), (1, 252));
    }

    #[test]
    fn counts_per_pipeline_and_reason_with_the_last_time() {
        let mut r = Refusals::default();
        assert_eq!(r.view(), RefusalsView::default());
        r.record("a", "unsigned", at(1));
        r.record("a", "unsigned", at(2));
        r.record("b", "too-large", at(3));
        let v = r.view();
        assert_eq!((v.total, v.last_at), (3, Some(at(3))));
        let rows: Vec<(&str, &str, u64, DateTime<Utc>)> = v
            .by_reason
            .iter()
            .map(|c| (c.pipeline.as_str(), c.reason.as_str(), c.count, c.last_at))
            .collect();
        assert_eq!(rows, [("a", "unsigned", 2, at(2)), ("b", "too-large", 1, at(3))]);
    }
}
