//! Cron schedules of `batchfan serve`: slots in a time zone, the overlap policy
//! and the catch-up policy. Pure logic: the caller passes the time in.
//!
//! A **slot** is one instant the schedule names; the run a slot starts has the
//! idempotency key `cron:{slot in UTC, RFC 3339}`, so whatever happens (a crash
//! between starting a run and saving the state, a restart inside the slot's
//! second) a slot starts at most one run.
//!
//! Daylight saving time, as Vixie cron does it:
//! - a schedule that names its hours (`0 30 2 * * *`) runs **once** per local
//!   time: when the clock goes back, 02:30 happens twice and runs the first
//!   time; when the clock jumps forward over 02:30, it runs at the moment
//!   02:30 would have been (03:30 in the new offset);
//! - a schedule with every hour (`0 */15 * * * *`) follows real time: the
//!   repeated hour runs twice, the skipped hour not at all.
//!
//! ```
//! use batchfan::serve::cron::Schedule;
//! use chrono::{TimeZone, Utc};
//! let s = Schedule::parse("0 30 2 * * *", "Europe/Paris").unwrap();
//! let t = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
//! // 29 March 2026 02:30 does not exist in Paris: it runs at 03:30 CEST (01:30 UTC).
//! assert_eq!(s.next_after(t), Some(Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap()));
//! ```

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec;
use serde::{Deserialize, Serialize};

use crate::spec::{CatchUpPolicy, CronTrigger, OverlapPolicy};

/// Slots older than this (even while the service was up: a suspended machine)
/// count as missed and follow the catch-up policy instead of running late.
pub const LATE_LIMIT: Duration = Duration::seconds(60);
/// Most slots waiting behind a running run (overlap = queue); later ones are skipped.
pub const MAX_QUEUED: usize = 1000;
/// Widest jump of a UTC offset at a transition (DST moves by 1 h; a few zones by 2 h).
const MAX_SHIFT: Duration = Duration::hours(3);
/// Most missed slots counted one by one.
pub const MAX_COUNTED: usize = 1000;
/// Most naive times examined per lookup: a guard, never reached by a valid schedule.
const MAX_SCAN: usize = 200_000;

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    tz: Tz,
    /// The hour field names hours: run once per local time across DST changes.
    fixed_hours: bool,
    pub overlap: OverlapPolicy,
    pub catch_up: CatchUpPolicy,
}

impl Schedule {
    /// A schedule with the default policies (skip, none).
    pub fn parse(expr: &str, timezone: &str) -> Result<Schedule, String> {
        crate::spec::validate::cron(expr)?;
        crate::spec::validate::timezone(timezone)?;
        let cron = cron::Schedule::from_str(expr).map_err(|e| format!("schedule {expr:?}: {e}"))?;
        let tz = Tz::from_str(timezone).map_err(|e| format!("timezone {timezone:?}: {e}"))?;
        let fixed_hours = !cron.hours().is_all();
        Ok(Schedule { cron, tz, fixed_hours, overlap: OverlapPolicy::Skip, catch_up: CatchUpPolicy::None })
    }

    /// The schedule of a spec's `[triggers.cron]`.
    pub fn from_trigger(t: &CronTrigger) -> Result<Schedule, String> {
        let mut s = Schedule::parse(&t.schedule, &t.timezone)?;
        s.overlap = t.overlap;
        s.catch_up = t.catch_up;
        Ok(s)
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The instants a local (naive) time of the schedule maps to.
    fn instants(&self, naive: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(a, b) if self.fixed_hours => {
                vec![a.with_timezone(&Utc).min(b.with_timezone(&Utc))]
            }
            LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
            LocalResult::None if self.fixed_hours => {
                // In a forward jump: the moment it would have been under the old offset.
                let around = Utc.from_utc_datetime(&naive);
                let offsets =
                    [around - Duration::days(1), around + Duration::days(1)].map(|t| self.offset_at(t));
                offsets.iter().map(|o| Utc.from_utc_datetime(&(naive - *o))).max().into_iter().collect()
            }
            LocalResult::None => Vec::new(),
        }
    }

    fn offset_at(&self, t: DateTime<Utc>) -> Duration {
        let secs = self.tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc();
        Duration::seconds(i64::from(secs))
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    /// Naive local times of the schedule strictly after `from` (as a stand-in UTC clock).
    fn naive_after(&self, from: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        self.cron.after(&Utc.from_utc_datetime(&from)).map(|t| t.naive_utc()).take(MAX_SCAN)
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let n0 = self.local(t);
        let mut best: Option<DateTime<Utc>> = None;
        let mut consider = |i: DateTime<Utc>| {
            if i > t && best.is_none_or(|b| i < b) {
                best = Some(i);
            }
        };
        // Near a change of offset a local time at or before n0 may still come later (the repeated hour).
        if self.offset_at(t - MAX_SHIFT) != self.offset_at(t + MAX_SHIFT) {
            for n in self.naive_after(n0 - MAX_SHIFT).take_while(|n| *n <= n0) {
                self.instants(n).into_iter().for_each(&mut consider);
            }
        }
        for n in self.naive_after(n0) {
            let found: Vec<_> = self.instants(n).into_iter().filter(|i| *i > t).collect();
            if !found.is_empty() {
                found.into_iter().for_each(&mut consider);
                break;
            }
        }
        best
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
            (OverlapPolicy::Queue, true) if state.queued.len() >= MAX_QUEUED => {
                Decision::Skip(slot, SkipReason::QueueFull)
            }
            (OverlapPolicy::Queue, true) => {
                state.queued.push(slot);
                Decision::Queue(slot)
            }
        };
        busy |= matches!(d, Decision::Start(_));
        out.push(d);
    }
    state.cursor = Some(now);
    out
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
