//! The SQLite table's own guarantees: many threads and processes writing one
//! table lose nothing, conditional writes stay atomic across processes, a
//! batch with an invalid item writes nothing, data survives reopening, and a
//! table's shard files open only as keys reach them.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use batchfan::{
    error::PortError,
    table::{sqlite::SqliteTable, Condition, Item, Key, Table, Written},
};
use serde_json::json;

const TABLE: &str = "Shared";
/// Set in child processes started by `processes_writing_one_table_lose_nothing`: "{dir}|{worker}".
const CHILD_ENV: &str = "BATCHFAN_TEST_TABLE_CHILD";
const BATCHES: usize = 10;
const BATCH: usize = 100;
const SINGLES: usize = 50;
const INCREMENTS: u64 = 25;
/// Batches that span shards: items under [`SPREAD_PKS`] partition keys.
const SPREAD_BATCHES: usize = 3;
const SPREAD_PKS: usize = 64;

/// One writer's share: batches and single puts under its own pk, and
/// compare-and-swap increments of one shared counter.
async fn write_share(table: &SqliteTable, worker: &str) {
    for b in 0..BATCHES {
        let items = (0..BATCH)
            .map(|i| Item::new(Key::new(format!("w#{worker}"), format!("b{b:03}#{i:04}"))).with("v", i))
            .collect();
        table.put_batch(TABLE, items).await.unwrap();
    }
    for b in 0..SPREAD_BATCHES {
        let items = (0..4 * SPREAD_PKS)
            .map(|i| {
                Item::new(Key::new(format!("spread#{}", i % SPREAD_PKS), format!("{worker}#{b}#{i:04}")))
            })
            .collect();
        table.put_batch(TABLE, items).await.unwrap();
    }
    for i in 0..SINGLES {
        let item = Item::new(Key::new(format!("w#{worker}"), format!("s#{i:04}"))).with("v", i);
        assert_eq!(table.put(TABLE, item, Condition::NotExists).await.unwrap(), Written::Yes);
    }
    let key = Key::new("counter", "c");
    for _ in 0..INCREMENTS {
        loop {
            let current = table.get(TABLE, &key).await.unwrap();
            let n = current.as_ref().and_then(|i| i.u64("n")).unwrap_or(0);
            let cond = match current {
                None => Condition::NotExists,
                Some(_) => Condition::Equals("n".into(), json!(n)),
            };
            let next = Item::new(key.clone()).with("n", n + 1);
            if table.put(TABLE, next, cond).await.unwrap() == Written::Yes {
                break;
            }
        }
    }
}

async fn assert_shares(table: &SqliteTable, workers: &[String]) {
    for w in workers {
        let items = table.query(TABLE, &format!("w#{w}"), "").await.unwrap();
        assert_eq!(items.len(), BATCHES * BATCH + SINGLES, "worker {w}");
    }
    let mut spread = 0;
    for pk in 0..SPREAD_PKS {
        let items = table.query(TABLE, &format!("spread#{pk}"), "").await.unwrap();
        for w in workers {
            let mine = items.iter().filter(|i| i.key.sk.starts_with(&format!("{w}#"))).count();
            assert_eq!(mine, SPREAD_BATCHES * 4, "worker {w}, spread#{pk}");
        }
        spread += items.len();
    }
    assert_eq!(spread, workers.len() * SPREAD_BATCHES * 4 * SPREAD_PKS);
    let counter = table.get(TABLE, &Key::new("counter", "c")).await.unwrap().unwrap();
    assert_eq!(counter.u64("n"), Some(INCREMENTS * workers.len() as u64));
}

/// Not a test of its own: the body of each child process (a no-op otherwise).
#[tokio::test]
async fn child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (dir, worker) = spec.split_once('|').expect("dir|worker");
    let table = SqliteTable::open(Path::new(dir)).unwrap();
    write_share(&table, worker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_writing_one_table_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut workers = Vec::new();
    let mut children = Vec::new();
    for w in 0..4 {
        let worker = format!("proc{w}");
        let child = Command::new(&exe)
            .args([test_name("child_writer").as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{}|{worker}", dir.path().display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
        workers.push(worker);
    }
    // This process writes at the same time, like the engine next to its jobs.
    let table = SqliteTable::open(dir.path()).unwrap();
    write_share(&table, "parent").await;
    workers.push("parent".into());
    for child in children {
        let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
        let log = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child writer failed: {}\n{log}", out.status);
    }
    assert_shares(&table, &workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_writing_one_table_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shared = SqliteTable::open(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for w in 0..6 {
        // Half share one handle (one connection), half open their own (like other processes).
        let table = if w % 2 == 0 { shared.clone() } else { SqliteTable::open(dir.path()).unwrap() };
        tasks.push(tokio::spawn(async move { write_share(&table, &format!("t{w}")).await }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_shares(&shared, &(0..6).map(|w| format!("t{w}")).collect::<Vec<_>>()).await;
}

#[tokio::test]
async fn a_batch_with_an_invalid_item_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let table = SqliteTable::open(dir.path()).unwrap();
    for (n, bad_at) in [(10, 5), (5_000, 4_321)] {
        let mut items: Vec<Item> =
            (0..n).map(|i| Item::new(Key::new(format!("p{n}"), format!("s{i:05}")))).collect();
        items[bad_at].key.sk.clear();
        let err = table.put_batch(TABLE, items).await.unwrap_err();
        assert!(matches!(err, PortError::Invalid(ref m) if m.contains("empty sk")), "{err}");
        assert_eq!(table.query(TABLE, &format!("p{n}"), "").await.unwrap(), vec![]);
    }
}

#[tokio::test]
async fn a_large_batch_round_trips_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let table = SqliteTable::open(dir.path()).unwrap();
    let items: Vec<Item> = (0..30_000)
        .map(|i| {
            Item::new(Key::new("run#big", format!("item#{i:06}"))).with("i", i).with("s", "x".repeat(40))
        })
        .collect();
    table.put_batch(TABLE, items.clone()).await.unwrap();
    assert_eq!(table.query(TABLE, "run#big", "").await.unwrap(), items);
    let table_dir = table.sqlite_path(TABLE);
    assert_eq!(table_dir, dir.path().join(TABLE));
    drop(table);
    // One pk: only its shard's file was created.
    let files = sqlite_files(&table_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let path = &files[0];

    let reopened = SqliteTable::open(dir.path()).unwrap();
    assert_eq!(reopened.query(TABLE, "run#big", "item#02999").await.unwrap(), items[29_990..]);
    let conn = rusqlite::Connection::open(path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

/// DynamoDB rejects a batch that names one key twice; here the later item wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_later_of_two_items_with_one_key_wins() {
    let dir = tempfile::tempdir().unwrap();
    let table = SqliteTable::open(dir.path()).unwrap();
    for n in [100, 20_000] {
        let mut items: Vec<Item> = (0..n)
            .map(|i| Item::new(Key::new(format!("p{n}"), format!("s{:05}", i % 50))).with("i", i))
            .collect();
        items.push(Item::new(Key::new(format!("p{n}"), "s00007")).with("i", "last"));
        table.put_batch(TABLE, items).await.unwrap();
        let got = table.get(TABLE, &Key::new(format!("p{n}"), "s00007")).await.unwrap().unwrap();
        assert_eq!(got.str("i"), Some("last"));
        let s3 = table.get(TABLE, &Key::new(format!("p{n}"), "s00003")).await.unwrap().unwrap();
        assert_eq!(s3.u64("i"), Some(n as u64 - 50 + 3));
    }
}

/// The `*.sqlite` files in a table's directory.
fn sqlite_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_across_shards_round_trip_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let table = SqliteTable::open(dir.path()).unwrap();
    let items: Vec<Item> = (0..3_000)
        .map(|i| Item::new(Key::new(format!("order#{}", i % 500), format!("line#{i:05}"))).with("i", i))
        .collect();
    table.put_batch(TABLE, items.clone()).await.unwrap();
    assert!(sqlite_files(&table.sqlite_path(TABLE)).len() > 1, "500 pks should spread over shards");
    for pk in 0..500 {
        let expected: Vec<Item> =
            items.iter().filter(|i| i.key.pk == format!("order#{pk}")).cloned().collect();
        assert_eq!(table.query(TABLE, &format!("order#{pk}"), "line#").await.unwrap(), expected);
    }
    let (gone, kept) = items.split_at(1_000);
    table.delete_batch(TABLE, gone.iter().map(|i| i.key.clone()).collect()).await.unwrap();
    for item in gone.iter().step_by(37) {
        assert_eq!(table.get(TABLE, &item.key).await.unwrap(), None);
    }
    for item in kept.iter().step_by(37) {
        assert_eq!(table.get(TABLE, &item.key).await.unwrap().as_ref(), Some(item));
    }
}

/// Every item is checked before any shard is written.
#[tokio::test]
async fn an_invalid_item_in_a_batch_across_shards_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let table = SqliteTable::open(dir.path()).unwrap();
    let mut items: Vec<Item> =
        (0..2_000).map(|i| Item::new(Key::new(format!("p{}", i % 100), format!("s{i:05}")))).collect();
    items[1_999] = items[1_999].clone().with("pk", "shadowed");
    let err = table.put_batch(TABLE, items).await.unwrap_err();
    assert!(matches!(err, PortError::Invalid(_)), "{err}");
    for pk in 0..100 {
        assert_eq!(table.query(TABLE, &format!("p{pk}"), "").await.unwrap(), vec![]);
    }
}

#[test]
fn handles_are_cheap_to_share_across_tasks() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<SqliteTable>();
    shareable::<batchfan::objects::dir::DirObjects>();
    shareable::<batchfan::topic::bus::Bus>();
}

/// The libtest name of `test` in this file (`FILE::test`: each file is a
/// module of the one integration-test binary).
fn test_name(test: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{test}")
}
