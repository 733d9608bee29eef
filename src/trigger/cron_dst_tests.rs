//! Daylight saving time as EventBridge Scheduler documents it (issue 10): a
//! local time the spring jump skips is no slot, a local time the autumn change
//! repeats is one slot (its first occurrence) — for fixed-hour and every-hour
//! schedules alike, in Europe/Paris and America/New_York. Each case lists the
//! exact UTC instants.
//!
//! 2026 transitions: Paris 29 March 02:00 CET → 03:00 CEST (01:00 UTC) and
//! 25 October 03:00 CEST → 02:00 CET (01:00 UTC); New York 8 March 02:00 EST →
//! 03:00 EDT (07:00 UTC) and 1 November 02:00 EDT → 01:00 EST (06:00 UTC).

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn utc(mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, mo, d, h, mi, 0).unwrap()
}

/// The first `n` slots of `expr` in `tz` after `from`.
fn walk(expr: &str, tz: &str, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    super::tests::walk(&Schedule::parse(expr, tz).unwrap(), from, n)
}

/// Every slot in `(after, upto]`.
fn between(expr: &str, tz: &str, after: DateTime<Utc>, upto: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let (slots, more) = Schedule::parse(expr, tz).unwrap().slots_between(after, upto, 100);
    assert!(!more);
    slots
}

#[test]
fn a_fixed_hour_in_the_spring_gap_is_skipped() {
    // 29 March 02:30 does not exist in Paris: no run that day (not 03:30).
    assert_eq!(
        walk("0 30 2 * * *", "Europe/Paris", utc(3, 27, 12, 0), 3),
        [utc(3, 28, 1, 30), utc(3, 30, 0, 30), utc(3, 31, 0, 30)]
    );
    // 8 March 02:30 does not exist in New York.
    assert_eq!(
        walk("0 30 2 * * *", "America/New_York", utc(3, 6, 12, 0), 3),
        [utc(3, 7, 7, 30), utc(3, 9, 6, 30), utc(3, 10, 6, 30)]
    );
}

#[test]
fn a_fixed_hour_in_the_repeated_autumn_hour_runs_once_the_first_time() {
    // Paris repeats 02:00-02:59 on 25 October: 02:30 CEST (00:30 UTC) runs, 02:30 CET does not.
    assert_eq!(
        walk("0 30 2 * * *", "Europe/Paris", utc(10, 24, 12, 0), 2),
        [utc(10, 25, 0, 30), utc(10, 26, 1, 30)]
    );
    // Asked from between the two occurrences, or from inside the second one: the next day.
    assert_eq!(walk("0 30 2 * * *", "Europe/Paris", utc(10, 25, 1, 0), 1), [utc(10, 26, 1, 30)]);
    assert_eq!(walk("0 30 2 * * *", "Europe/Paris", utc(10, 25, 1, 45), 1), [utc(10, 26, 1, 30)]);
    // New York repeats 01:00-01:59 on 1 November, so 02:30 is a plain time (EST) ...
    assert_eq!(
        walk("0 30 2 * * *", "America/New_York", utc(10, 30, 12, 0), 3),
        [utc(10, 31, 6, 30), utc(11, 1, 7, 30), utc(11, 2, 7, 30)]
    );
    // ... and 01:30 runs once, at 01:30 EDT (05:30 UTC), not again at 01:30 EST.
    assert_eq!(
        walk("0 30 1 * * *", "America/New_York", utc(10, 31, 12, 0), 2),
        [utc(11, 1, 5, 30), utc(11, 2, 6, 30)]
    );
}

#[test]
fn an_every_hour_schedule_skips_the_gap_and_runs_the_repeated_hour_once() {
    let (paris, ny) = ("Europe/Paris", "America/New_York");
    // Spring: 02:00 local does not exist; 03:00 (summer time) comes one real hour after 01:00.
    assert_eq!(
        between("0 0 * * * *", paris, utc(3, 28, 23, 30), utc(3, 29, 3, 30)),
        [utc(3, 29, 0, 0), utc(3, 29, 1, 0), utc(3, 29, 2, 0), utc(3, 29, 3, 0)]
    );
    assert_eq!(
        between("0 0 * * * *", ny, utc(3, 8, 5, 30), utc(3, 8, 9, 30)),
        [utc(3, 8, 6, 0), utc(3, 8, 7, 0), utc(3, 8, 8, 0), utc(3, 8, 9, 0)]
    );
    // Autumn: the repeated hour runs once (the summer-time pass): two real hours between two slots.
    assert_eq!(
        between("0 0 * * * *", paris, utc(10, 24, 22, 30), utc(10, 25, 3, 30)),
        [utc(10, 24, 23, 0), utc(10, 25, 0, 0), utc(10, 25, 2, 0), utc(10, 25, 3, 0)]
    );
    assert_eq!(
        between("0 0 * * * *", ny, utc(11, 1, 3, 30), utc(11, 1, 8, 30)),
        [utc(11, 1, 4, 0), utc(11, 1, 5, 0), utc(11, 1, 7, 0), utc(11, 1, 8, 0)]
    );
}

#[test]
fn an_every_half_hour_schedule_skips_the_gap_and_runs_the_repeated_hour_once() {
    let (paris, ny) = ("Europe/Paris", "America/New_York");
    assert_eq!(
        between("0 */30 * * * *", paris, utc(3, 29, 0, 15), utc(3, 29, 2, 15)),
        [utc(3, 29, 0, 30), utc(3, 29, 1, 0), utc(3, 29, 1, 30), utc(3, 29, 2, 0)]
    );
    assert_eq!(
        between("0 */30 * * * *", ny, utc(3, 8, 6, 15), utc(3, 8, 8, 15)),
        [utc(3, 8, 6, 30), utc(3, 8, 7, 0), utc(3, 8, 7, 30), utc(3, 8, 8, 0)]
    );
    assert_eq!(
        between("0 */30 * * * *", paris, utc(10, 24, 23, 45), utc(10, 25, 2, 45)),
        [utc(10, 25, 0, 0), utc(10, 25, 0, 30), utc(10, 25, 2, 0), utc(10, 25, 2, 30)]
    );
    assert_eq!(
        between("0 */30 * * * *", ny, utc(11, 1, 4, 45), utc(11, 1, 7, 45)),
        [utc(11, 1, 5, 0), utc(11, 1, 5, 30), utc(11, 1, 7, 0), utc(11, 1, 7, 30)]
    );
}

/// What `serve` starts, stepping its clock every 20 s through the Paris autumn
/// night (the scheduler's loop, with the time injected).
#[test]
fn serve_starts_each_slot_of_the_autumn_night_once() {
    let s = Schedule::parse("0 */30 * * * *", "Europe/Paris").unwrap();
    let (from, to) = (utc(10, 24, 23, 50), utc(10, 25, 2, 40));
    let mut state = CronState::default();
    let mut started = Vec::new();
    let mut now = from;
    step(&s, &mut state, now, from, false);
    while now < to {
        now += Duration::seconds(20);
        for d in step(&s, &mut state, now, from, false) {
            match d {
                Decision::Start(slot) => started.push(slot),
                other => panic!("unexpected {other:?} at {now}"),
            }
        }
    }
    assert_eq!(started, [utc(10, 25, 0, 0), utc(10, 25, 0, 30), utc(10, 25, 2, 0), utc(10, 25, 2, 30)]);
}

/// The same spec deploys to EventBridge Scheduler with the same fields and time zone.
#[test]
fn the_same_expressions_deploy_to_eventbridge_scheduler_unchanged() {
    let cases = [
        ("0 30 2 * * *", "cron(30 2 * * ? *)"),
        ("0 30 1 * * *", "cron(30 1 * * ? *)"),
        ("0 0 * * * *", "cron(0 * * * ? *)"),
        ("0 */30 * * * *", "cron(0/30 * * * ? *)"),
    ];
    for (expr, aws) in cases {
        assert_eq!(crate::tfvars::schedule_expression(expr).as_deref(), Ok(aws), "{expr}");
    }
}
