//! A token bucket: all SubmitJob calls of one process share one, so a burst of
//! submissions stays under AWS Batch's account-wide limit (50 calls/s).
//!
//! The bucket holds up to `burst` tokens and refills at `rate` per second; a
//! call takes one token, waiting (with tokio's clock, so paused-time tests
//! drive it) until one is there. Waiters are served in arrival order: the
//! next token is reserved at once, so the bucket's debt tells each caller how
//! long to wait.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

/// AWS Batch allows 50 SubmitJob calls per second per account; leave room for
/// other clients of the same account.
pub const DEFAULT_SUBMIT_RATE: f64 = 40.0;

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
}
