//! Tests of grouped commits.

use super::*;
use crate::table::Rows;

/// Rows `{prefix}{i}` for `i` in `range`, encoded: one chunk per shard.
fn chunks(prefix: &str, range: std::ops::Range<u32>) -> Vec<(usize, Chunk)> {
    let mut rows = Rows::new(["v"]).unwrap();
    for i in range {
        rows.push(&format!("{prefix}{i}"), "s", [&i.to_string()]).unwrap();
    }
    batch::encode_rows(&rows).unwrap()
}

/// What a test runs when a writer is about to take in late chunks.
type Hook = Box<dyn FnMut(&Queue)>;

thread_local! {
    /// Run by [`write_all`] on this thread before it takes in the chunks
    /// queued while it inserted: a test queues "another call's" chunk there.
    static BEFORE_ABSORBING: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
}

pub(super) fn before_absorbing(queue: &Queue) {
    BEFORE_ABSORBING.with(|hook| {
        if let Some(hook) = hook.borrow_mut().as_mut() {
            hook(queue);
        }
    });
}

fn count(shards: &Shards, shard: usize, pk_like: &str) -> i64 {
    let file = shards.file(shard).unwrap();
    let conn = lock(&file.conn);
    conn.query_row("SELECT count(*) FROM items WHERE pk LIKE ?1", [pk_like], |r| r.get(0)).unwrap()
}

/// Two calls' chunks queued for one shard: the writer that takes the shard
/// writes both in one transaction and settles both.
#[test]
fn chunks_queued_together_are_written_together() {
    let dir = tempfile::tempdir().unwrap();
    let shards = Shards::new(dir.path().join("t"));
    let (shard, a, b) = two_chunks("a", "b");
    lock(&shards.queue(shard).pending).extend([a.clone(), b.clone()]);
    assert_eq!(write_queued(&shards, shard, true).unwrap(), Some(2));
    assert_eq!((a.outcome(), b.outcome()), (Some(Ok(())), Some(Ok(()))));
    assert!(count(&shards, shard, "a%") > 0 && count(&shards, shard, "b%") > 0);
    assert_eq!(write_queued(&shards, shard, false).unwrap(), Some(0), "nothing left queued");
}

/// A writer takes shard `shard`'s queue, which holds `first`; once it has
/// inserted `first`'s rows, `late` is queued (as by a call arriving then).
fn write_with_a_late_chunk(
    shards: &Shards,
    shard: usize,
    first: &Arc<Ticket>,
    late: &Arc<Ticket>,
) -> Option<usize> {
    lock(&shards.queue(shard).pending).push(first.clone());
    let mut late = Some(late.clone());
    BEFORE_ABSORBING.with(|hook| {
        *hook.borrow_mut() = Some(Box::new(move |queue: &Queue| {
            if let Some(late) = late.take() {
                lock(&queue.pending).push(late);
            }
        }))
    });
    let written = write_queued(shards, shard, true);
    BEFORE_ABSORBING.with(|hook| hook.borrow_mut().take());
    written.unwrap()
}

/// Two chunks of one shard, from two calls with rows `{a}{i}` and `{b}{i}`.
fn two_chunks(a: &str, b: &str) -> (usize, Arc<Ticket>, Arc<Ticket>) {
    let (shard, first) = chunks(a, 0..300).swap_remove(0);
    let second = chunks(b, 0..300).into_iter().find(|(s, _)| *s == shard).unwrap().1;
    (shard, Ticket::new(first), Ticket::new(second))
}

/// A call whose chunk is queued while a writer inserts another call's rows
/// for the shard shares that writer's commit: it is taken in before the
/// commit, written and settled in the same transaction.
#[test]
fn a_chunk_queued_while_a_writer_inserts_joins_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let shards = Shards::new(dir.path().join("t"));
    let (shard, a, b) = two_chunks("a", "b");
    assert_eq!(write_with_a_late_chunk(&shards, shard, &a, &b), Some(2), "both chunks in one transaction");
    assert_eq!((a.outcome(), b.outcome()), (Some(Ok(())), Some(Ok(()))));
    assert!(count(&shards, shard, "a%") > 0 && count(&shards, shard, "b%") > 0);
    assert!(lock(&shards.queue(shard).pending).is_empty(), "nothing left queued");
}

/// A chunk taken in before the commit that fails fails only its own call:
/// the chunk the writer began with is written again on its own.
#[test]
fn a_late_chunk_that_fails_fails_only_its_own_call() {
    let dir = tempfile::tempdir().unwrap();
    let shards = Shards::new(dir.path().join("t"));
    let (shard, good, bad) = two_chunks("good", "bad");
    refuse_bad_rows(&shards, shard);
    assert_eq!(write_with_a_late_chunk(&shards, shard, &good, &bad), Some(2));
    assert_only_bad_failed(&shards, shard, &good, &bad);
}

/// `bad`'s call got the refusal and wrote nothing; `good`'s rows are stored.
fn assert_only_bad_failed(shards: &Shards, shard: usize, good: &Ticket, bad: &Ticket) {
    let err = bad.outcome().unwrap().unwrap_err();
    assert!(err.to_string().contains("refused by the test"), "{err}");
    assert_eq!(good.outcome(), Some(Ok(())));
    assert_eq!(count(shards, shard, "bad%"), 0);
    assert!(count(shards, shard, "good%") > 0);
}

/// Makes shard `shard` refuse rows whose pk starts with `bad`.
fn refuse_bad_rows(shards: &Shards, shard: usize) {
    let file = shards.file(shard).unwrap();
    lock(&file.conn)
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.pk LIKE 'bad%'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
}

/// A chunk that fails in a shared transaction fails only its own call: the
/// others are written again on their own.
#[test]
fn a_failing_chunk_fails_only_its_own_call() {
    let dir = tempfile::tempdir().unwrap();
    let shards = Shards::new(dir.path().join("t"));
    let (shard, good, bad) = two_chunks("good", "bad");
    refuse_bad_rows(&shards, shard);
    lock(&shards.queue(shard).pending).extend([bad.clone(), good.clone()]);
    assert_eq!(write_queued(&shards, shard, true).unwrap(), Some(2));
    assert_only_bad_failed(&shards, shard, &good, &bad);
}

/// Many calls at once from several threads: every row of every call is
/// stored, every call returns, no chunk is left queued.
#[test]
fn concurrent_calls_store_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let shards = Shards::new(dir.path().join("t"));
    std::thread::scope(|scope| {
        for t in 0..4 {
            let shards = &shards;
            scope.spawn(move || {
                for call in 0..25u32 {
                    write(shards, chunks(&format!("t{t}c{call}-"), 0..200)).unwrap();
                }
            });
        }
    });
    let total: i64 = (0..SHARDS).map(|s| count(&shards, s, "%")).sum();
    assert_eq!(total, 4 * 25 * 200);
    assert!((0..SHARDS).all(|s| lock(&shards.queue(s).pending).is_empty()));
}

/// A call that gives up while another thread holds its chunk, and that
/// thread puts it back (another process held the file), leaves nothing
/// queued: no row of the call is written after it returned.
#[test]
fn a_withdrawn_call_leaves_no_chunk_that_another_writer_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let shards = Shards::new(dir.path().join("t"));
    let (shard, chunk) = chunks("w", 0..50).swap_remove(0);
    let ticket = Ticket::new(chunk);
    let mine = vec![(shard, ticket.clone())];
    let (held, holding) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let (other, ticket) = (&shards, ticket.clone());
        scope.spawn(move || {
            // The other writer: it has taken the chunk, finds the file locked, puts it back.
            let file = other.file(shard).unwrap();
            let _conn = lock(&file.conn);
            held.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            Taken { queue: other.queue(shard), tickets: vec![ticket] }.put_back();
        });
        holding.recv().unwrap();
        withdraw(&shards, &mine);
    });
    assert!(lock(&shards.queue(shard).pending).is_empty(), "the put-back chunk is withdrawn");
    assert_eq!(ticket.outcome(), None, "never written");
    assert_eq!(count(&shards, shard, "w%"), 0);
}
