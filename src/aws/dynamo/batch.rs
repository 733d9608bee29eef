//! BatchWriteItem: 25 requests per call, several calls in flight, and the
//! UnprocessedItems of each call retried with backoff and full jitter.

use std::{collections::HashMap, future::Future};

use crate::{
    backoff::Backoff,
    error::{PortError, PortResult},
    table::{Key, BATCH_WRITE_LIMIT},
};

/// BatchWriteItem calls one `put_batch` / `delete_batch` keeps in flight.
pub const IN_FLIGHT: usize = 8;

/// Keeps the last of the entries with the same key, in the order of those last
/// entries: BatchWriteItem refuses a call that names one key twice, and the
/// local table's batch lets the last write win.
pub(crate) fn dedupe_last<T>(entries: Vec<T>, key: impl Fn(&T) -> &Key) -> Vec<T> {
    let mut last: HashMap<Key, usize> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        last.insert(key(e).clone(), i);
    }
    if last.len() == entries.len() {
        return entries;
    }
    entries.into_iter().enumerate().filter(|(i, e)| last.get(key(e)) == Some(i)).map(|(_, e)| e).collect()
}

/// Splits `entries` into BatchWriteItem-sized chunks.
pub(crate) fn chunks<T>(entries: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(entries.len().div_ceil(BATCH_WRITE_LIMIT));
    let mut it = entries.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(BATCH_WRITE_LIMIT).collect());
    }
    out
}

/// Sends one chunk until nothing is left unprocessed. `send` makes one call and
/// returns the requests the service did not process; a call that failed
/// retryably (throttled, or a transient error: a timeout, a 5xx) counts as all
/// of them unprocessed and is sent again — safe, as BatchWriteItem's puts and
/// deletes are unconditional, so writing one twice leaves the same item.
/// Gives up after `backoff.max_attempts` calls with an error of the last
/// retryable kind naming how many requests were left; any other error stops at once.
pub(crate) async fn send_until_processed<T, F, Fut>(
    what: &str,
    mut pending: Vec<T>,
    backoff: Backoff,
    mut send: F,
) -> PortResult<()>
where
    T: Clone,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = PortResult<Vec<T>>>,
{
    let total = pending.len();
    let mut last_error = None;
    for attempt in 0..backoff.max_attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff.jittered(attempt - 1)).await;
        }
        match send(pending.clone()).await {
            Ok(unprocessed) if unprocessed.is_empty() => return Ok(()),
            Ok(unprocessed) => {
                pending = unprocessed;
                last_error = None;
            }
            Err(e) if e.retryable() => {
                tracing::debug!(attempt, error = %e, "batch write failed retryably; resending");
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    let left = format!(
        "{what}: {} of {total} items were still unprocessed after {} attempts",
        pending.len(),
        backoff.max_attempts
    );
    Err(match last_error {
        Some(PortError::Unavailable(m)) => {
            PortError::unavailable(format!("{left} (last: {m}): the service kept failing; retry later"))
        }
        last => {
            let why = last.map_or_else(String::new, |e| format!(" (last: {e})"));
            PortError::throttled(format!(
                "{left}{why}: the table is over its capacity; retry later or raise its write capacity"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;

    #[test]
    fn chunks_of_25() {
        let sizes: Vec<usize> = chunks((0..60).collect::<Vec<_>>()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [25, 25, 10]);
        assert!(chunks(Vec::<u8>::new()).is_empty());
        assert_eq!(chunks((0..25).collect::<Vec<_>>()).len(), 1);
    }

    #[test]
    fn duplicate_keys_keep_the_last_write() {
        let e = |sk: &str, v: u8| (Key::new("p", sk), v);
        let out = dedupe_last(vec![e("a", 1), e("b", 2), e("a", 3), e("c", 4)], |x| &x.0);
        assert_eq!(out, vec![e("b", 2), e("a", 3), e("c", 4)]);
        let distinct = vec![e("a", 1), e("b", 2)];
        assert_eq!(dedupe_last(distinct.clone(), |x| &x.0), distinct);
    }

    const FAST: Backoff =
        Backoff { base: Duration::from_millis(10), cap: Duration::from_millis(100), max_attempts: 5 };

    #[tokio::test(start_paused = true)]
    async fn unprocessed_items_are_resent_until_done() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let log = calls.clone();
        let send = move |batch: Vec<u32>| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(batch.clone());
                // The service processes the first item of each call only.
                Ok(batch[1..].to_vec())
            }
        };
        send_until_processed("t", vec![1, 2, 3], FAST, send).await.unwrap();
        assert_eq!(*calls.lock().unwrap(), vec![vec![1, 2, 3], vec![2, 3], vec![3]]);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_last_attempt_naming_what_is_left() {
        let mut calls = 0;
        let send = |batch: Vec<u32>| {
            calls += 1;
            let left = if calls % 2 == 0 { Err(PortError::throttled("slow down")) } else { Ok(batch) };
            async move { left }
        };
        let err = send_until_processed("dynamodb BatchWriteItem on table t", vec![1, 2], FAST, send).await;
        assert_eq!(calls, 5);
        let msg = match err {
            Err(PortError::Throttled(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(
            msg.contains("2 of 2 items") && msg.contains("5 attempts") && msg.contains("table t"),
            "{msg}"
        );
    }

    /// Issue 10: a transient failure (RequestTimeout, a 5xx, a dropped
    /// connection) stopped the write at once; it is now sent again.
    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_resent_with_backoff() {
        let calls = Arc::new(Mutex::new(0));
        let count = calls.clone();
        let send = move |batch: Vec<u32>| {
            let count = count.clone();
            async move {
                let mut n = count.lock().unwrap();
                *n += 1;
                match *n {
                    1 => Err(PortError::unavailable("RequestTimeout: request timed out")),
                    2 => Err(PortError::unavailable("InternalServerError: http status 500")),
                    _ => Ok(batch[1..].to_vec()),
                }
            }
        };
        send_until_processed("t", vec![1, 2], FAST, send).await.unwrap();
        assert_eq!(*calls.lock().unwrap(), 4, "two failures, then two calls that each process one item");

        // A service that keeps failing: an Unavailable error naming what was left.
        let mut n = 0;
        let down = |_: Vec<u32>| {
            n += 1;
            async { Err(PortError::unavailable("http status 503")) }
        };
        let err = send_until_processed("dynamodb BatchWriteItem on table t", vec![1, 2, 3], FAST, down).await;
        assert_eq!(n, 5);
        assert!(
            matches!(&err, Err(PortError::Unavailable(m)) if m.contains("3 of 3 items") && m.contains("503")),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_stop_at_once() {
        let mut calls = 0;
        let send = |_: Vec<u32>| {
            calls += 1;
            async { Err(PortError::invalid("bad")) }
        };
        assert_eq!(send_until_processed("t", vec![1], FAST, send).await, Err(PortError::invalid("bad")));
        assert_eq!(calls, 1);
    }
}
