//! A token bucket: all SubmitJob calls of one process share one, so one
//! pipeline's submissions stay under AWS Batch's SubmitJob limit (50 calls/s
//! for the account). It does not see the account's other callers: see
//! "Across submitters" below.
//!
//! The bucket holds up to `burst` tokens and refills at `rate` per second; a
//! call takes one token, waiting (with tokio's clock, so paused-time tests
//! drive it) until one is there. Waiters are served in arrival order: the
//! next token is reserved at once, so the bucket's debt tells each caller how
//! long to wait.
//!
//! **Across submitters.** One bucket makes at most `burst + rate` calls in any
//! second. The pipeline module reserves a concurrency of 1 for the submit
//! Lambda (`submit_reserved_concurrency`), so one submitter process calls
//! SubmitJob at a time; when Lambda hands over to a fresh process (a new
//! execution environment, with a full bucket) inside a second, that second
//! holds at most two bursts and the rate: with the defaults
//! 2 × [`DEFAULT_SUBMIT_BURST`] + [`DEFAULT_SUBMIT_RATE`] = 50, AWS's limit.
//! Every concurrent run of the pipeline goes through that one process, so two
//! runs planned at once share its bucket. What it cannot see: other pipelines
//! and other clients in the same account (each deployed pipeline has its own
//! submitter), and `batchfan run --backend aws` submitting from a laptop.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

/// AWS Batch allows 50 SubmitJob calls per second per account; leave room for
/// other clients of the same account.
pub const DEFAULT_SUBMIT_RATE: f64 = 40.0;
/// Calls one process may make at once after a quiet spell: a run's graph is a
/// handful of jobs, and two bursts plus the rate stay within AWS's 50 calls/s
/// across a handover from one submitter process to the next (see above).
pub const DEFAULT_SUBMIT_BURST: f64 = 5.0;

/// A shared token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens available at `at`; negative when callers have reserved future tokens.
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up (both at least 1).
    pub fn new(rate: f64, burst: f64) -> Self {
        let rate = if rate.is_finite() && rate >= 1.0 { rate } else { 1.0 };
        let burst = if burst.is_finite() && burst >= 1.0 { burst } else { 1.0 };
        RateLimiter { rate, burst, state: Mutex::new(Bucket { tokens: burst, at: Instant::now() }) }
    }

    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Calls that may go at once after a quiet spell.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// The submitter's limiter for `rate` calls per second: a burst of
    /// [`DEFAULT_SUBMIT_BURST`] (or `rate`, when lower).
    pub fn for_submit(rate: f64) -> Self {
        RateLimiter::new(rate, DEFAULT_SUBMIT_BURST.min(rate))
    }

    /// Takes a token at `now`; returns how long the caller must wait before using it.
    pub fn reserve_at(&self, now: Instant) -> Duration {
        let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now.max(b.at);
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }

    /// Waits until the caller may make one call.
    pub async fn acquire(&self) {
        let wait = self.reserve_at(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_calls_are_spaced_by_the_rate() {
        let start = Instant::now();
        let limiter = RateLimiter::new(40.0, 5.0);
        let waits: Vec<Duration> = (0..8).map(|_| limiter.reserve_at(start)).collect();
        assert!(waits[..5].iter().all(Duration::is_zero), "{waits:?}");
        let ms: Vec<u128> = waits[5..].iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [25, 50, 75], "each further call waits one more 1/40 s");
    }

    #[test]
    fn tokens_refill_with_time_up_to_the_burst() {
        let start = Instant::now();
        let limiter = RateLimiter::new(10.0, 2.0);
        assert!(limiter.reserve_at(start).is_zero());
        assert!(limiter.reserve_at(start).is_zero());
        assert_eq!(limiter.reserve_at(start), Duration::from_millis(100));
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        assert!(limiter.reserve_at(later).is_zero());
        assert!(limiter.reserve_at(later).is_zero());
        assert_eq!(limiter.reserve_at(later), Duration::from_millis(100));
    }

    #[test]
    fn nonsense_rates_fall_back_to_one_per_second() {
        let limiter = RateLimiter::new(f64::NAN, 0.0);
        assert_eq!(limiter.rate(), 1.0);
        let now = Instant::now();
        assert!(limiter.reserve_at(now).is_zero());
        assert_eq!(limiter.reserve_at(now), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_paces_calls_in_paused_time() {
        let limiter = RateLimiter::new(40.0, 1.0);
        let start = Instant::now();
        for _ in 0..41 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(999) && took <= Duration::from_millis(1001), "{took:?}");
    }

    /// AWS Batch's SubmitJob quota: calls per second per account.
    const ACCOUNT_LIMIT: usize = 50;

    /// The most calls in any window of one second (calls at `t` and `t + 1 s` are a second apart).
    fn busiest_second(times: &mut [Instant]) -> usize {
        times.sort();
        (0..times.len())
            .map(|i| times[i..].iter().take_while(|t| **t < times[i] + Duration::from_secs(1)).count())
            .max()
            .unwrap_or(0)
    }

    /// Submits `jobs` SubmitJob calls through `limiter` (as `AwsBatch::submit_job` does),
    /// recording when each reached AWS.
    async fn submit_run(limiter: &RateLimiter, jobs: usize, log: &Mutex<Vec<Instant>>) {
        for _ in 0..jobs {
            crate::aws::batch::paced(limiter, crate::backoff::Backoff::SUBMIT_JOB, || async {
                log.lock().unwrap().push(Instant::now());
                Ok::<_, crate::error::PortError>(())
            })
            .await
            .unwrap();
        }
    }

    /// Issue 10: two runs submitted at once by the pipeline's one submitter
    /// (reserved concurrency 1) share its bucket and stay under 50 calls/s,
    /// including across a handover to a fresh submitter process.
    #[tokio::test(start_paused = true)]
    async fn two_runs_submitted_at_once_stay_under_the_account_rate() {
        let log = Mutex::new(Vec::new());
        let process = RateLimiter::for_submit(DEFAULT_SUBMIT_RATE);
        tokio::join!(submit_run(&process, 120, &log), submit_run(&process, 120, &log));
        // Lambda starts a fresh execution environment (a full bucket) right after the last call.
        let fresh = RateLimiter::for_submit(DEFAULT_SUBMIT_RATE);
        submit_run(&fresh, 60, &log).await;
        let mut times = log.into_inner().unwrap();
        assert_eq!(times.len(), 300, "every call made once");
        let busiest = busiest_second(&mut times);
        eprintln!(
            "one submitter, two runs at once and a handover: {busiest} SubmitJob calls in the busiest second"
        );
        assert!(busiest <= ACCOUNT_LIMIT, "{busiest} SubmitJob calls in one second");
        assert!(busiest >= 40, "the limiter lets the rate through: {busiest}");
    }

    /// Why the module reserves the submit Lambda's concurrency: two submitter
    /// processes at once, each with its own bucket, go over the account's rate.
    #[tokio::test(start_paused = true)]
    async fn two_submitter_processes_at_once_would_go_over_the_account_rate() {
        let log = Mutex::new(Vec::new());
        let (a, b) =
            (RateLimiter::for_submit(DEFAULT_SUBMIT_RATE), RateLimiter::for_submit(DEFAULT_SUBMIT_RATE));
        tokio::join!(submit_run(&a, 120, &log), submit_run(&b, 120, &log));
        let busiest = busiest_second(&mut log.into_inner().unwrap());
        eprintln!("two submitter processes at once: {busiest} SubmitJob calls in the busiest second");
        assert!(busiest > ACCOUNT_LIMIT, "{busiest}");
    }

    #[test]
    fn the_submit_limiter_bursts_at_most_five() {
        let l = RateLimiter::for_submit(40.0);
        assert_eq!((l.rate(), l.burst()), (40.0, 5.0));
        assert_eq!(RateLimiter::for_submit(2.0).burst(), 2.0);
        assert!(2.0 * DEFAULT_SUBMIT_BURST + DEFAULT_SUBMIT_RATE <= ACCOUNT_LIMIT as f64);
    }
}
