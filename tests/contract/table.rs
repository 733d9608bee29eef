//! Table scenarios: round trips, conditional writes, batches, queries, deletes, limits.

use async_trait::async_trait;
use batchfan::{
    error::PortError,
    table::{Cell, Condition, Item, Key, Rows, Table, Written, MAX_ITEM_BYTES},
};
use rand::seq::SliceRandom;

use super::join_all;
use serde_json::{json, Value};

/// What a backend provides to the table scenarios.
#[async_trait]
pub trait TableEnv: Send + Sync {
    /// The port under test.
    fn table(&self) -> &dyn Table;
    /// The name of a new, empty table (DynamoDB: created with string keys `pk`
    /// (hash) and `sk` (range) and active).
    async fn fresh_table(&self) -> String;
}

fn item(pk: &str, sk: &str) -> Item {
    Item::new(Key::new(pk, sk))
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, PortError>, mentions: &str) {
    match result {
        Err(PortError::Invalid(msg)) => {
            assert!(msg.contains(mentions), "{msg:?} should mention {mentions:?}")
        }
        other => panic!("expected an invalid-request error mentioning {mentions:?}, got {other:?}"),
    }
}

pub async fn round_trip_nested_attrs_and_numbers(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let mut it = item("run#1", "item#0001")
        .with("count", 42)
        .with("negative", -7)
        .with("ratio", 3.5)
        .with("beyond_f64", 9_007_199_254_740_993u64)
        .with("flag", false)
        .with("nothing", Value::Null)
        .with("empty", "")
        .with("text", "ünïcödé \"quoted\"\n");
    it.attrs.insert(
        "nested".into(),
        json!({"list": [1, "two", true, null, {"deeper": [2.25, []]}], "map": {"k": "v", "empty": {}}}),
    );
    assert_eq!(t.put(&name, it.clone(), Condition::None).await.unwrap(), Written::Yes);
    assert_eq!(t.get(&name, &it.key).await.unwrap(), Some(it.clone()));
    assert_eq!(t.query(&name, "run#1", "").await.unwrap(), vec![it]);
}

pub async fn get_missing_is_none(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    assert_eq!(t.get(&name, &Key::new("nobody", "nothing")).await.unwrap(), None);
    assert_eq!(t.query(&name, "nobody", "").await.unwrap(), vec![]);
}

pub async fn unconditional_put_overwrites(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    t.put(&name, item("p", "s").with("v", 1).with("gone", "x"), Condition::None).await.unwrap();
    let second = item("p", "s").with("v", 2);
    t.put(&name, second.clone(), Condition::None).await.unwrap();
    assert_eq!(t.get(&name, &second.key).await.unwrap(), Some(second));
}

pub async fn condition_not_exists(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let first = item("claim", "run#7").with("owner", "a");
    assert_eq!(t.put(&name, first.clone(), Condition::NotExists).await.unwrap(), Written::Yes);
    let loser = item("claim", "run#7").with("owner", "b");
    assert_eq!(
        t.put(&name, loser, Condition::NotExists).await.unwrap(),
        Written::ConditionFailed(Some(first.clone()))
    );
    assert_eq!(t.get(&name, &first.key).await.unwrap(), Some(first));
}

pub async fn condition_equals(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let eq = |a: &str, v: Value| Condition::Equals(a.into(), v);
    // On a missing item, Equals fails with no current item.
    let missing = item("lease", "w1").with("state", "done");
    assert_eq!(
        t.put(&name, missing.clone(), eq("state", json!("open"))).await.unwrap(),
        Written::ConditionFailed(None)
    );
    assert_eq!(t.get(&name, &missing.key).await.unwrap(), None);

    t.put(&name, item("lease", "w1").with("state", "open").with("version", 1), Condition::None)
        .await
        .unwrap();
    let done = item("lease", "w1").with("state", "done").with("version", 2);
    assert_eq!(t.put(&name, done.clone(), eq("state", json!("open"))).await.unwrap(), Written::Yes);
    let late = item("lease", "w1").with("state", "stolen");
    assert_eq!(
        t.put(&name, late.clone(), eq("state", json!("open"))).await.unwrap(),
        Written::ConditionFailed(Some(done.clone()))
    );
    // Numbers compare by value; a missing attribute never equals.
    let next = item("lease", "w1").with("state", "done").with("version", 3);
    assert_eq!(t.put(&name, next.clone(), eq("version", json!(2))).await.unwrap(), Written::Yes);
    assert_eq!(
        t.put(&name, late, eq("owner", json!("anyone"))).await.unwrap(),
        Written::ConditionFailed(Some(next.clone()))
    );
    assert_eq!(t.get(&name, &next.key).await.unwrap(), Some(next));
}

pub async fn condition_not_exists_or_equals(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let cond = || Condition::NotExistsOrEquals("state".into(), json!("open"));
    let open = item("job", "j1").with("state", "open").with("try", 1);
    assert_eq!(t.put(&name, open.clone(), cond()).await.unwrap(), Written::Yes);
    let reopened = item("job", "j1").with("state", "open").with("try", 2);
    assert_eq!(t.put(&name, reopened.clone(), cond()).await.unwrap(), Written::Yes);
    let done = item("job", "j1").with("state", "done");
    t.put(&name, done.clone(), Condition::None).await.unwrap();
    assert_eq!(t.put(&name, reopened, cond()).await.unwrap(), Written::ConditionFailed(Some(done.clone())));
    assert_eq!(t.get(&name, &done.key).await.unwrap(), Some(done));
}

pub async fn racing_not_exists_has_one_winner(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let racers = (0..8).map(|i| {
        let it = item("claim", "once").with("owner", i);
        t.put(&name, it, Condition::NotExists)
    });
    let results: Vec<Written> = join_all(racers).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|w| **w == Written::Yes).count(), 1, "{results:?}");
    let winner = t.get(&name, &Key::new("claim", "once")).await.unwrap().unwrap();
    for lost in results.iter().filter(|w| **w != Written::Yes) {
        assert_eq!(lost, &Written::ConditionFailed(Some(winner.clone())));
    }
}

pub async fn racing_compare_and_swap_loses_no_update(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let key = Key::new("counter", "c");
    t.put(&name, Item::new(key.clone()).with("n", 0), Condition::None).await.unwrap();
    let (workers, each) = (4, 10);
    let (name, key) = (&name, &key);
    let incrementer = move |_| async move {
        for _ in 0..each {
            loop {
                let n = t.get(name, key).await.unwrap().unwrap().u64("n").unwrap();
                let next = Item::new(key.clone()).with("n", n + 1);
                if t.put(name, next, Condition::Equals("n".into(), json!(n))).await.unwrap() == Written::Yes {
                    break;
                }
            }
        }
    };
    join_all((0..workers).map(incrementer)).await;
    assert_eq!(t.get(name, key).await.unwrap().unwrap().u64("n"), Some(workers * each));
}

pub async fn put_batch_then_query_in_order(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let mut items: Vec<Item> = (0..1000)
        .map(|i| {
            item("run#42", &format!("item#{i:04}"))
                .with("index", i)
                .with("uri", format!("s3://in/part-{i:04}.csv"))
                .with("state", "planned")
        })
        .chain((0..10).map(|i| item("run#42", &format!("meta#{i}")).with("i", i)))
        .collect();
    let mut shuffled = items.clone();
    shuffled.shuffle(&mut rand::thread_rng());
    t.put_batch(&name, shuffled).await.unwrap();
    items.sort_by(|a, b| a.key.cmp(&b.key));

    let all = t.query(&name, "run#42", "").await.unwrap();
    assert_eq!(all, items);
    let work = t.query(&name, "run#42", "item#").await.unwrap();
    assert_eq!(work.len(), 1000);
    assert!(work.windows(2).all(|w| w[0].key.sk < w[1].key.sk));
    assert_eq!(work[0].u64("index"), Some(0));
    assert_eq!(work[999].str("uri"), Some("s3://in/part-0999.csv"));
    let hundred = t.query(&name, "run#42", "item#00").await.unwrap();
    let sks: Vec<String> = hundred.iter().map(|i| i.key.sk.clone()).collect();
    assert_eq!(sks, (0..100).map(|i| format!("item#{i:04}")).collect::<Vec<_>>());
    assert_eq!(t.query(&name, "run#42", "meta#").await.unwrap().len(), 10);
    assert_eq!(t.query(&name, "run#42", "zzz").await.unwrap(), vec![]);
    t.put_batch(&name, vec![]).await.unwrap();
}

pub async fn put_rows_stores_what_put_batch_stores(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let mut rows = Rows::new(["Order ID", "Units", "Note", "Nested"]).unwrap();
    let mut expected = Vec::new();
    for i in 0..300u64 {
        let (pk, units, nested) =
            (format!("order#{}", i % 150), json!(i * 3), json!({"i": i, "l": [true, null]}));
        let note = format!("line \"{i}\"\n");
        let cells =
            [Cell::from(pk.as_str()), Cell::from(&units), Cell::from(note.as_str()), Cell::from(&nested)];
        rows.push(&pk, "order", cells).unwrap();
        if i >= 150 {
            // The second row with a key replaces the first.
            let it = item(&pk, "order")
                .with("Order ID", pk.as_str())
                .with("Units", units)
                .with("Note", note)
                .with("Nested", nested);
            expected.push(it);
        }
    }
    t.put_rows(&name, rows).await.unwrap();
    for want in &expected {
        assert_eq!(t.get(&name, &want.key).await.unwrap().as_ref(), Some(want));
    }
    t.put_rows(&name, Rows::new(["a"]).unwrap()).await.unwrap();
    let mut big = Rows::new(["a"]).unwrap();
    big.push("ok", "s", ["x"]).unwrap();
    big.push("big", "s", [&"x".repeat(MAX_ITEM_BYTES)]).unwrap();
    assert_invalid(t.put_rows(&name, big).await, "bytes");
    assert_eq!(
        t.get(&name, &Key::new("ok", "s")).await.unwrap(),
        None,
        "an oversized row stops the whole write"
    );
}

pub async fn query_does_not_leak_other_partitions(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let pks = ["a", "ab", "a#1", "b", "A"];
    t.put_batch(&name, pks.iter().map(|pk| item(pk, "x").with("pk_was", *pk)).collect()).await.unwrap();
    for pk in pks {
        let found = t.query(&name, pk, "").await.unwrap();
        assert_eq!(found.len(), 1, "partition {pk:?}: {found:?}");
        assert_eq!(found[0].str("pk_was"), Some(pk));
    }
}

pub async fn delete_is_idempotent(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let key = Key::new("p", "s");
    t.put(&name, Item::new(key.clone()).with("v", 1), Condition::None).await.unwrap();
    t.delete(&name, &key).await.unwrap();
    assert_eq!(t.get(&name, &key).await.unwrap(), None);
    t.delete(&name, &key).await.unwrap();
    t.delete(&name, &Key::new("never", "was")).await.unwrap();
}

pub async fn delete_batch_is_idempotent(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let keys: Vec<Key> = (0..60).map(|i| Key::new("p", format!("s{i:02}"))).collect();
    t.put_batch(&name, keys.iter().map(|k| Item::new(k.clone()).with("v", 1)).collect()).await.unwrap();
    let mut doomed: Vec<Key> = keys.iter().step_by(2).cloned().collect();
    doomed.extend((0..5).map(|i| Key::new("p", format!("absent{i}"))));
    t.delete_batch(&name, doomed.clone()).await.unwrap();
    t.delete_batch(&name, doomed).await.unwrap();
    t.delete_batch(&name, vec![]).await.unwrap();
    let left: Vec<Key> = t.query(&name, "p", "").await.unwrap().into_iter().map(|i| i.key).collect();
    assert_eq!(left, keys.iter().skip(1).step_by(2).cloned().collect::<Vec<_>>());
}

pub async fn invalid_table_names_rejected(env: &dyn TableEnv) {
    let t = env.table();
    let long = "a".repeat(256);
    for bad in ["ab", "has space", "slash/name", long.as_str()] {
        assert_invalid(t.put(bad, item("p", "s"), Condition::None).await, "table name");
        assert_invalid(t.get(bad, &Key::new("p", "s")).await, "table name");
        assert_invalid(t.query(bad, "p", "").await, "table name");
        assert_invalid(t.put_batch(bad, vec![item("p", "s")]).await, "table name");
    }
}

pub async fn empty_keys_rejected(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    assert_invalid(t.put(&name, item("", "s"), Condition::None).await, "pk");
    assert_invalid(t.put(&name, item("p", ""), Condition::NotExists).await, "sk");
    assert_invalid(t.get(&name, &Key::new("p", "")).await, "sk");
    assert_invalid(t.put_batch(&name, vec![item("p", "s"), item("", "s")]).await, "pk");
    assert_invalid(t.delete(&name, &Key::new("", "s")).await, "pk");
}

/// A port rule, not a DynamoDB one: an attribute named `pk` or `sk` would
/// silently replace the key on DynamoDB, so both backends reject it.
pub async fn key_named_attributes_rejected(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    assert_invalid(t.put(&name, item("p", "s").with("pk", "other"), Condition::None).await, "pk");
    assert_invalid(t.put_batch(&name, vec![item("p", "s").with("sk", "other")]).await, "sk");
}

pub async fn oversize_item_rejected(env: &dyn TableEnv) {
    let (t, name) = (env.table(), env.fresh_table().await);
    let big = item("p", "big").with("blob", "x".repeat(MAX_ITEM_BYTES + 1));
    assert_invalid(t.put(&name, big.clone(), Condition::None).await, "bytes");
    assert_invalid(t.put_batch(&name, vec![item("p", "small"), big]).await, "bytes");
    let fits = item("p", "fits").with("blob", "y".repeat(300 * 1024));
    t.put(&name, fits.clone(), Condition::None).await.unwrap();
    assert_eq!(t.get(&name, &fits.key).await.unwrap(), Some(fits));
}
