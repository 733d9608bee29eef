use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn every(secs: u32, overlap: OverlapPolicy, catch_up: CatchUpPolicy) -> Schedule {
    let mut s = Schedule::parse(&format!("*/{secs} * * * * *"), "UTC").unwrap();
    s.overlap = overlap;
    s.catch_up = catch_up;
    s
}

/// The first `n` slots of `s` after `from`, one `next_after` at a time.
pub(super) fn walk(s: &Schedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    for _ in 0..n {
        t = s.next_after(t).unwrap();
        out.push(t);
    }
    out
}

#[test]
fn seconds_field_slots_are_strictly_after_the_given_time() {
    let s = Schedule::parse("*/2 * * * * *", "UTC").unwrap();
    let t = utc(2026, 11, 23, 10, 0, 0);
    assert_eq!(
        walk(&s, t, 3),
        [utc(2026, 11, 23, 10, 0, 2), utc(2026, 11, 23, 10, 0, 4), utc(2026, 11, 23, 10, 0, 6)]
    );
    let odd = t + Duration::milliseconds(2500);
    assert_eq!(s.next_after(odd), Some(utc(2026, 11, 23, 10, 0, 4)));
    let (slots, more) = s.slots_between(t, t + Duration::seconds(10), 100);
    assert_eq!((slots.len(), more), (5, false));
    let (slots, more) = s.slots_between(t, t + Duration::seconds(10), 3);
    assert_eq!((slots.len(), more), (3, true));
}

#[test]
fn a_time_zone_moves_the_slots_with_its_offset() {
    let s = Schedule::parse("0 0 9 * * Mon-Fri", "America/New_York").unwrap();
    // Friday 2026-01-09 09:00 EST is 14:00 UTC; the next weekday is Monday the 12th.
    let fri = utc(2026, 1, 9, 13, 0, 0);
    assert_eq!(walk(&s, fri, 2), [utc(2026, 1, 9, 14, 0, 0), utc(2026, 1, 12, 14, 0, 0)]);
    // In July (EDT, UTC-4) the same local time is 13:00 UTC.
    assert_eq!(s.next_after(utc(2026, 7, 6, 0, 0, 0)), Some(utc(2026, 7, 6, 13, 0, 0)));
}

#[test]
fn latest_between_finds_the_last_slot_of_a_long_gap_quickly() {
    let s = Schedule::parse("* * * * * *", "UTC").unwrap();
    let (a, b) = (utc(2025, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0));
    assert_eq!(s.latest_between(a, b), Some(b));
    let weekly = Schedule::parse("0 0 2 * * Sun", "UTC").unwrap();
    // Sunday 2026-11-22 02:00 is the last one before Wednesday the 25th.
    assert_eq!(
        weekly.latest_between(utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 25, 0, 0, 0)),
        Some(utc(2026, 11, 22, 2, 0, 0))
    );
    assert_eq!(weekly.latest_between(utc(2026, 11, 23, 0, 0, 0), utc(2026, 11, 25, 0, 0, 0)), None);
    let yearly = Schedule::parse("0 0 0 1 1 *", "UTC").unwrap();
    assert_eq!(
        yearly.latest_between(utc(2020, 6, 1, 0, 0, 0), utc(2026, 6, 1, 0, 0, 0)),
        Some(utc(2026, 1, 1, 0, 0, 0))
    );
}

#[test]
fn slot_keys_name_the_instant_in_utc() {
    assert_eq!(slot_key(utc(2026, 3, 29, 1, 30, 0)), "cron:2026-03-29T01:30:00Z");
}

#[test]
fn the_first_start_ever_begins_the_schedule_now() {
    let s = every(2, OverlapPolicy::Skip, CatchUpPolicy::Latest);
    let mut st = CronState::default();
    let now = utc(2026, 11, 23, 10, 0, 1);
    assert_eq!(step(&s, &mut st, now, now, false), []);
    assert_eq!(st.cursor, Some(now));
    let later = now + Duration::seconds(4);
    assert_eq!(
        step(&s, &mut st, later, now, false),
        [
            Decision::Start(utc(2026, 11, 23, 10, 0, 2)),
            Decision::Skip(utc(2026, 11, 23, 10, 0, 4), SkipReason::Busy)
        ],
        "a run started in this step makes the next slot of the same step overlap"
    );
    assert_eq!(step(&s, &mut st, later, now, false), [], "a slot is decided once");
}

#[test]
fn overlap_skip_queue_and_allow() {
    let up = utc(2026, 11, 23, 10, 0, 0);
    let slot = utc(2026, 11, 23, 10, 0, 2);
    let cases = [
        (OverlapPolicy::Skip, Decision::Skip(slot, SkipReason::Busy)),
        (OverlapPolicy::Queue, Decision::Queue(slot)),
        (OverlapPolicy::Allow, Decision::Start(slot)),
    ];
    for (policy, want) in cases {
        let s = every(2, policy, CatchUpPolicy::None);
        let mut st = CronState { cursor: Some(up), ..Default::default() };
        assert_eq!(step(&s, &mut st, slot, up, true), std::slice::from_ref(&want), "{policy:?} while busy");
        let mut idle = CronState { cursor: Some(up), ..Default::default() };
        assert_eq!(step(&s, &mut idle, slot, up, false), [Decision::Start(slot)], "{policy:?} while idle");
    }
}

#[test]
fn queued_slots_start_in_order_once_the_previous_run_ends() {
    let s = every(2, OverlapPolicy::Queue, CatchUpPolicy::None);
    let up = utc(2026, 11, 23, 10, 0, 0);
    let mut st = CronState { cursor: Some(up), ..Default::default() };
    let t4 = up + Duration::seconds(4);
    assert_eq!(
        step(&s, &mut st, t4, up, true),
        [Decision::Queue(up + Duration::seconds(2)), Decision::Queue(t4)]
    );
    assert_eq!(step(&s, &mut st, t4, up, true), [], "still busy: nothing starts");
    assert_eq!(step(&s, &mut st, t4, up, false), [Decision::Start(up + Duration::seconds(2))]);
    assert_eq!(st.queued, [t4]);
    let t6 = up + Duration::seconds(6);
    assert_eq!(
        step(&s, &mut st, t6, up, false),
        [Decision::Start(t4), Decision::Queue(t6)],
        "the queue goes first; the new slot waits behind the run it started"
    );
}

#[test]
fn the_queue_is_bounded() {
    let s = every(1, OverlapPolicy::Queue, CatchUpPolicy::None);
    let up = utc(2026, 11, 23, 10, 0, 0);
    let full: Vec<_> = (0..MAX_QUEUED as i64).map(|i| up - Duration::seconds(10_000 - i)).collect();
    let mut st = CronState { cursor: Some(up), queued: full, last_run: Some("r1".into()) };
    let t = up + Duration::seconds(1);
    assert_eq!(step(&s, &mut st, t, up, true), [Decision::Skip(t, SkipReason::QueueFull)]);
    assert_eq!(st.queued.len(), MAX_QUEUED);
}

#[test]
fn hold_keeps_slots_in_order_once_each_and_bounded() {
    let mut q = vec!["cron:2026-01-01T00:02:00Z"];
    assert_eq!(hold(&mut q, "cron:2026-01-01T00:01:00Z"), Held::Now);
    assert_eq!(hold(&mut q, "cron:2026-01-01T00:02:00Z"), Held::Already, "a redelivery is held once");
    assert_eq!(q, ["cron:2026-01-01T00:01:00Z", "cron:2026-01-01T00:02:00Z"], "oldest first");
    let mut full: Vec<u32> = (0..MAX_QUEUED as u32).collect();
    assert_eq!(hold(&mut full, 5), Held::Already, "a held slot is found even when the queue is full");
    assert_eq!(hold(&mut full, u32::MAX), Held::Full);
    assert_eq!(full.len(), MAX_QUEUED);
}

#[test]
fn catch_up_none_runs_nothing_missed_while_down() {
    let s = every(2, OverlapPolicy::Allow, CatchUpPolicy::None);
    let down_at = utc(2026, 11, 23, 10, 0, 1);
    let up = down_at + Duration::seconds(10); // slots 02, 04, 06, 08, 10 missed
    let mut st = CronState { cursor: Some(down_at), ..Default::default() };
    assert_eq!(step(&s, &mut st, up, up, false), [Decision::Missed { count: 5, more: false }]);
    assert_eq!(
        step(&s, &mut st, up + Duration::seconds(1), up, false),
        [Decision::Start(utc(2026, 11, 23, 10, 0, 12))],
        "slots after the start run on time"
    );
}

#[test]
fn catch_up_latest_runs_only_the_most_recent_missed_slot() {
    let s = every(2, OverlapPolicy::Skip, CatchUpPolicy::Latest);
    let down_at = utc(2026, 11, 23, 10, 0, 1);
    let up = down_at + Duration::seconds(10);
    let mut st = CronState { cursor: Some(down_at), ..Default::default() };
    assert_eq!(
        step(&s, &mut st, up, up, false),
        [Decision::Missed { count: 4, more: false }, Decision::Start(utc(2026, 11, 23, 10, 0, 10))]
    );
    // One missed slot: it is the latest, nothing is reported missed.
    let mut st = CronState { cursor: Some(utc(2026, 11, 23, 10, 0, 9)), ..Default::default() };
    assert_eq!(step(&s, &mut st, up, up, false), [Decision::Start(utc(2026, 11, 23, 10, 0, 10))]);
    // The caught-up slot follows the overlap policy like any other.
    let mut st = CronState { cursor: Some(down_at), ..Default::default() };
    assert_eq!(
        step(&s, &mut st, up, up, true),
        [
            Decision::Missed { count: 4, more: false },
            Decision::Skip(utc(2026, 11, 23, 10, 0, 10), SkipReason::Busy)
        ]
    );
}

#[test]
fn a_year_down_with_a_per_second_schedule_is_counted_up_to_the_cap() {
    let s = every(1, OverlapPolicy::Skip, CatchUpPolicy::Latest);
    let down_at = utc(2025, 11, 23, 10, 0, 0);
    let up = utc(2026, 11, 23, 10, 0, 0);
    let mut st = CronState { cursor: Some(down_at), ..Default::default() };
    assert_eq!(
        step(&s, &mut st, up, up, false),
        [Decision::Missed { count: MAX_COUNTED, more: true }, Decision::Start(up)]
    );
}

#[test]
fn slots_older_than_the_late_limit_count_as_missed_even_while_up() {
    // The machine slept for 5 minutes while the service was up.
    let mut s = Schedule::parse("0 * * * * *", "UTC").unwrap();
    s.overlap = OverlapPolicy::Allow;
    let up = utc(2026, 11, 23, 10, 0, 0);
    let mut st = CronState { cursor: Some(up + Duration::seconds(30)), ..Default::default() };
    let woke = up + Duration::seconds(330);
    // Slots 10:01..10:04 are older than 60 s: missed; 10:05 is on time.
    assert_eq!(
        step(&s, &mut st, woke, up, false),
        [Decision::Missed { count: 4, more: false }, Decision::Start(utc(2026, 11, 23, 10, 5, 0))]
    );
}

#[test]
fn a_clock_going_back_decides_nothing_twice() {
    let s = every(2, OverlapPolicy::Allow, CatchUpPolicy::None);
    let up = utc(2026, 11, 23, 10, 0, 0);
    let mut st = CronState { cursor: Some(up), ..Default::default() };
    assert_eq!(step(&s, &mut st, up + Duration::seconds(2), up, false).len(), 1);
    assert_eq!(step(&s, &mut st, up - Duration::seconds(30), up, false), []);
    assert_eq!(st.cursor, Some(up + Duration::seconds(2)));
}

#[test]
fn the_state_round_trips_through_json() {
    let st = CronState {
        cursor: Some(utc(2026, 11, 23, 10, 0, 0)),
        queued: vec![utc(2026, 11, 23, 10, 0, 2)],
        last_run: Some("rabc".into()),
    };
    let text = serde_json::to_string(&st).unwrap();
    assert_eq!(serde_json::from_str::<CronState>(&text).unwrap(), st);
    assert_eq!(serde_json::from_str::<CronState>("{}").unwrap(), CronState::default());
}
