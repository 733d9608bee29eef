//! Exponential backoff with jitter, for every retry batchfan schedules itself:
//! the AWS adapters' (DynamoDB's UnprocessedItems, SubmitJob throttling, the
//! Batch API client, SSM) and the local bus's redeliveries.
//!
//! Retry `n` (from 0) has the ceiling `min(cap, base * 2^n)`. The adapters
//! wait a uniformly random time below it ("full jitter": concurrent clients
//! spread out instead of retrying in lockstep); the bus waits between half
//! and all of it ("equal jitter": a failing subscriber gets at least half
//! the ceiling's rest). After `max_attempts` tries the caller
//! gives up with an error that says how much was left.

use std::time::Duration;

/// A bounded retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's ceiling.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Tries in all, the first one included.
    pub max_attempts: u32,
}

impl Backoff {
    /// DynamoDB BatchWriteItem's UnprocessedItems: 10 tries, 50 ms doubling up to 5 s
    /// (about 13 s of waiting at most in all).
    pub const BATCH_WRITE: Backoff =
        Backoff { base: Duration::from_millis(50), cap: Duration::from_secs(5), max_attempts: 10 };
    /// SubmitJob throttling: 8 tries, 100 ms doubling up to 10 s.
    pub const SUBMIT_JOB: Backoff =
        Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(10), max_attempts: 8 };

    /// The ceiling of the wait before retry number `retry` (from 0).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).map_or(self.cap, |d| d.min(self.cap))
    }

    /// The wait before retry number `retry`, for a uniform `unit` in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The wait before retry number `retry`, with a random jitter.
    pub fn jittered(&self, retry: u32) -> Duration {
        self.delay(retry, rand::random::<f64>())
    }

    /// The wait before retry number `retry`, between half and all of its
    /// ceiling ("equal jitter").
    pub fn equal_jittered(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        ceiling / 2 + ceiling.mul_f64(rand::random::<f64>() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff { base: Duration::from_millis(50), cap: Duration::from_secs(5), max_attempts: 10 };
        let ms: Vec<u128> = (0..9).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(b.ceiling(200), Duration::from_secs(5), "huge retry numbers do not overflow");
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling() {
        let b = Backoff::SUBMIT_JOB;
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
        assert!(b.delay(3, 0.999_999) < b.ceiling(3));
        for retry in 0..12 {
            for _ in 0..100 {
                assert!(b.jittered(retry) <= b.ceiling(retry));
            }
        }
        let total: Duration =
            (0..Backoff::BATCH_WRITE.max_attempts - 1).map(|n| Backoff::BATCH_WRITE.ceiling(n)).sum();
        assert!(total < Duration::from_secs(20), "the batch write schedule is bounded: {total:?}");
    }
}
