//! Cron schedules of `batchfan serve`: slots in a time zone, the overlap policy
//! and the catch-up policy. Pure logic: the caller passes the time in.
//!
//! A **slot** is one instant the schedule names; the run a slot starts has the
//! idempotency key `cron:{slot in UTC, RFC 3339}`, so whatever happens (a crash
//! between starting a run and saving the state, a restart inside the slot's
//! second) a slot starts at most one run.
//!
//! Daylight saving time, as EventBridge Scheduler does it — the same spec
//! deploys to an EventBridge Scheduler schedule with the same expression and
//! time zone (`batchfan tfvars`), so `serve` runs the slots AWS would. Its
//! user guide ("Daylight savings time on EventBridge Scheduler", in
//! <https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html>):
//!
//! > EventBridge Scheduler automatically adjusts your schedule for daylight
//! > saving time. When time shifts forward in the Spring, if a cron expression
//! > falls on a non-existent date and time, your schedule invocation is
//! > skipped. When time shifts backwards in the Fall, your schedule runs only
//! > once and does not repeat its invocation. The following invocations occur
//! > normally at the specified date and time.
//!
//! So, for every expression (fixed hours or every hour alike), a slot is a
//! local time of the expression read in the time zone:
//! - a local time the spring jump skips (02:30 in Paris on the last Sunday of
//!   March) is no slot at all;
//! - a local time the autumn change repeats (02:00–02:59 in Paris on the last
//!   Sunday of October) is one slot, its first occurrence (the earlier
//!   offset); the second pass through that hour starts nothing.
//!
//! ```
//! use batchfan::trigger::cron::Schedule;
//! use chrono::{TimeZone, Utc};
//! let s = Schedule::parse("0 30 2 * * *", "Europe/Paris").unwrap();
//! let t = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
//! // 29 March 2026 02:30 does not exist in Paris: skipped; the next is 30 March 02:30 CEST.
//! assert_eq!(s.next_after(t), Some(Utc.with_ymd_and_hms(2026, 3, 30, 0, 30, 0).unwrap()));
//! ```

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::spec::{validate::ValueError, CatchUpPolicy, CronTrigger, OverlapPolicy};

/// Slots older than this (even while the service was up: a suspended machine)
/// count as missed and follow the catch-up policy instead of running late.
pub const LATE_LIMIT: Duration = Duration::seconds(60);
/// Most slots waiting behind a running run (overlap = queue); later ones are skipped.
pub const MAX_QUEUED: usize = 1000;
/// Most missed slots counted one by one.
pub const MAX_COUNTED: usize = 1000;
/// Most naive times examined per lookup: a guard, never reached by a valid schedule.
const MAX_SCAN: usize = 200_000;

/// Why a schedule does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The expression or time zone does not parse (the parser's error is its source).
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    tz: Tz,
    pub overlap: OverlapPolicy,
    pub catch_up: CatchUpPolicy,
}

impl Schedule {
    /// A schedule with the default policies (skip, none).
    pub fn parse(expr: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let cron = cron::Schedule::from_str(expr)
            .map_err(|source| ValueError::Cron { schedule: expr.to_owned(), source })?;
        let tz = Tz::from_str(timezone)
            .map_err(|source| ValueError::Timezone { name: timezone.to_owned(), source })?;
        Ok(Schedule { cron, tz, overlap: OverlapPolicy::Skip, catch_up: CatchUpPolicy::None })
    }

    /// The schedule of a spec's `[triggers.cron]`.
    pub fn from_trigger(t: &CronTrigger) -> Result<Schedule, ScheduleError> {
        let mut s = Schedule::parse(&t.schedule, &t.timezone)?;
        s.overlap = t.overlap;
        s.catch_up = t.catch_up;
        Ok(s)
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The instant a local (naive) time of the schedule starts at, as
    /// EventBridge Scheduler does it (see the module doc): none for a time the
    /// spring jump skips, the first occurrence of a time the autumn change repeats.
    fn instant(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => Some(a.with_timezone(&Utc).min(b.with_timezone(&Utc))),
            LocalResult::None => None,
        }
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    /// Naive local times of the schedule strictly after `from` (as a stand-in UTC clock).
    fn naive_after(&self, from: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        self.cron.after(&Utc.from_utc_datetime(&from)).map(|t| t.naive_utc()).take(MAX_SCAN)
    }

    /// The first slot strictly after `t`.
    ///
    /// A local time's slot is its first occurrence, so slots follow the order
    /// of local times, even across the autumn change: from inside the repeated
    /// hour, the local times after `t`'s already had their slots, and the walk
    /// goes on to the first local time whose slot is later.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.naive_after(self.local(t)).filter_map(|n| self.instant(n)).find(|i| *i > t)
    }

    /// Slots in `(after, upto]`, oldest first, at most `limit`; `true` when more were left out.
    pub fn slots_between(
        &self,
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
        limit: usize,
    ) -> (Vec<DateTime<Utc>>, bool) {
        let mut out = Vec::new();
        let mut t = after;
        while let Some(next) = self.next_after(t).filter(|n| *n <= upto) {
            if out.len() == limit {
                return (out, true);
            }
            out.push(next);
            t = next;
        }
        (out, false)
    }

    /// The latest slot in `(after, upto]`, found without walking every slot of a long gap.
    pub fn latest_between(&self, after: DateTime<Utc>, upto: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let windows = [
            Duration::minutes(2),
            Duration::hours(2),
            Duration::days(2),
            Duration::days(63),
            Duration::days(800),
        ];
        for w in windows {
            let from = (upto - w).max(after);
            let (slots, more) = self.slots_between(from, upto, 20_000);
            if !more {
                if let Some(last) = slots.last() {
                    return Some(*last);
                }
                if from == after {
                    return None;
                }
            }
        }
        // A schedule sparser than every 800 days: walk it.
        let mut last = None;
        let mut t = after;
        while let Some(n) = self.next_after(t).filter(|n| *n <= upto) {
            last = Some(n);
            t = n;
        }
        last
    }
}

/// The idempotency key of a slot's run.
pub fn slot_key(slot: DateTime<Utc>) -> String {
    format!("cron:{}", slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// What the scheduler remembers per pipeline (saved after every decision).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CronState {
    /// Every slot at or before this was handled (started, queued, skipped or missed).
    pub cursor: Option<DateTime<Utc>>,
    /// Slots waiting for the previous run to finish (overlap = queue), oldest first.
    #[serde(default)]
    pub queued: Vec<DateTime<Utc>>,
    /// The run of the latest started slot.
    #[serde(default)]
    pub last_run: Option<String>,
}

/// Why a slot did not start a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The previous run is still going (overlap = skip).
    Busy,
    /// [`MAX_QUEUED`] slots already wait (overlap = queue).
    QueueFull,
}

/// One decision of [`step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start the slot's run now.
    Start(DateTime<Utc>),
    /// The slot waits for the previous run (overlap = queue).
    Queue(DateTime<Utc>),
    /// The slot does not run.
    Skip(DateTime<Utc>, SkipReason),
    /// Slots that passed while the service was down (or the machine slept) and
    /// are not run: all of them with catch_up = none, all but the latest with
    /// catch_up = latest. `count` stops at [`MAX_COUNTED`] (`more` is then true).
    Missed { count: usize, more: bool },
}

/// Advances `state` to `now`: what to do with the slots due since the last step.
///
/// `up_since` is when this service process started: slots before it were missed
/// while it was down. `busy` says whether `state.last_run` is still going; a
/// [`Decision::Start`] makes it busy for the slots after it in the same step.
pub fn step(
    s: &Schedule,
    state: &mut CronState,
    now: DateTime<Utc>,
    up_since: DateTime<Utc>,
    mut busy: bool,
) -> Vec<Decision> {
    let mut out = Vec::new();
    let Some(cursor) = state.cursor else {
        // First start ever: the schedule begins now; nothing was missed.
        state.cursor = Some(now);
        return out;
    };
    if now <= cursor {
        // The clock went back: nothing is due until it passes the cursor again.
        return drain_queue(state, busy, out);
    }
    if !busy && !state.queued.is_empty() {
        out.push(Decision::Start(state.queued.remove(0)));
        busy = true;
    }
    let on_time_from = up_since.max(now - LATE_LIMIT).max(cursor);
    let mut due = Vec::new();
    if on_time_from > cursor {
        if let Some(latest) = s.latest_between(cursor, on_time_from) {
            let (missed, more) = s.slots_between(cursor, on_time_from, MAX_COUNTED);
            let mut count = missed.len();
            if s.catch_up == CatchUpPolicy::Latest {
                due.push(latest);
                count -= usize::from(!more);
            }
            if count > 0 {
                out.push(Decision::Missed { count, more });
            }
        }
    }
    due.extend(s.slots_between(on_time_from, now, usize::MAX).0);
    for slot in due {
        let d = match (s.overlap, busy) {
            (OverlapPolicy::Allow, _) | (_, false) => Decision::Start(slot),
            (OverlapPolicy::Skip, true) => Decision::Skip(slot, SkipReason::Busy),
            (OverlapPolicy::Queue, true) => match hold(&mut state.queued, slot) {
                Held::Full => Decision::Skip(slot, SkipReason::QueueFull),
                Held::Now | Held::Already => Decision::Queue(slot),
            },
        };
        busy |= matches!(d, Decision::Start(_));
        out.push(d);
    }
    state.cursor = Some(now);
    out
}

/// What [`hold`] did with a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The slot now waits.
    Now,
    /// The slot was waiting already (a redelivery): nothing changed.
    Already,
    /// [`MAX_QUEUED`] slots already wait: the slot is skipped.
    Full,
}

/// Holds `slot` behind the running run (overlap = queue), in order, at most
/// [`MAX_QUEUED`] deep. The one rule of `batchfan serve`'s scheduler and of
/// the AWS trigger function (which keeps its queue in the table).
pub fn hold<T: Ord>(queued: &mut Vec<T>, slot: T) -> Held {
    match queued.binary_search(&slot) {
        Ok(_) => Held::Already,
        Err(_) if queued.len() >= MAX_QUEUED => Held::Full,
        Err(at) => {
            queued.insert(at, slot);
            Held::Now
        }
    }
}

fn drain_queue(state: &mut CronState, busy: bool, mut out: Vec<Decision>) -> Vec<Decision> {
    if !busy && !state.queued.is_empty() {
        out.push(Decision::Start(state.queued.remove(0)));
    }
    out
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "cron_dst_tests.rs"]
mod dst_tests;
