//! Objects scenarios: round trips, etags, ranges, listing, deletes, large files, names.

use std::io::Write;

use async_trait::async_trait;
use batchfan::{
    error::PortError,
    objects::{ObjectRef, Objects},
};

/// What a backend provides to the objects scenarios.
#[async_trait]
pub trait ObjectsEnv: Send + Sync {
    /// The port under test.
    fn objects(&self) -> &dyn Objects;
    /// The name of a new, empty bucket (S3: created).
    async fn fresh_bucket(&self) -> String;
}

/// Deterministic bytes that differ at every offset (so misplaced ranges show).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed).collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub async fn put_get_head(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let obj = ObjectRef::new(&bucket, "in/2024/data.csv");
    let body = b"id,total\n1,9.50\n2,3.25\n".to_vec();
    let put = o.put(&obj, body.clone()).await.unwrap();
    assert_eq!((put.key.as_str(), put.size), ("in/2024/data.csv", body.len() as u64));
    assert!(!put.etag.is_empty());
    assert_eq!(o.get(&obj).await.unwrap(), body);
    let head = o.head(&obj).await.unwrap().expect("the object exists");
    assert_eq!((&head.key, head.size, &head.etag), (&put.key, put.size, &put.etag));
    let ten_minutes = 10 * 60 * 1000;
    assert!((head.last_modified - now_ms()).abs() < ten_minutes, "last_modified {}", head.last_modified);
    let empty = ObjectRef::new(&bucket, "empty.txt");
    assert_eq!(o.put(&empty, vec![]).await.unwrap().size, 0);
    assert_eq!(o.get(&empty).await.unwrap(), Vec::<u8>::new());
}

pub async fn overwrite_changes_etag(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let obj = ObjectRef::new(&bucket, "state.json");
    let first = o.put(&obj, b"{\"v\":1}".to_vec()).await.unwrap();
    let second = o.put(&obj, b"{\"v\":2}".to_vec()).await.unwrap();
    assert_ne!(first.etag, second.etag);
    assert_eq!(o.head(&obj).await.unwrap().unwrap().etag, second.etag);
    assert_eq!(o.get(&obj).await.unwrap(), b"{\"v\":2}");
}

pub async fn get_range_clamps(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let obj = ObjectRef::new(&bucket, "digits.txt");
    o.put(&obj, b"0123456789".to_vec()).await.unwrap();
    assert_eq!(o.get_range(&obj, 2..5).await.unwrap(), b"234");
    assert_eq!(o.get_range(&obj, 0..10).await.unwrap(), b"0123456789");
    assert_eq!(o.get_range(&obj, 8..100).await.unwrap(), b"89", "a range past the end gets what exists");
    assert_eq!(o.get_range(&obj, 10..20).await.unwrap(), b"", "a range starting at the end is empty");
    assert_eq!(o.get_range(&obj, 50..60).await.unwrap(), b"", "a range starting past the end is empty");
    assert_eq!(o.get_range(&obj, 4..4).await.unwrap(), b"", "an empty range is empty");
}

pub async fn list_prefix_in_key_order(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let keys = ["b.txt", "a/1.txt", "a/2/x.txt", "a/10.txt", "ab.txt", "a.txt", "c/d/e/f.txt"];
    for (i, key) in keys.iter().enumerate() {
        o.put(&ObjectRef::new(&bucket, *key), vec![b'x'; i + 1]).await.unwrap();
    }
    let list = |prefix: &'static str| {
        let bucket = bucket.clone();
        async move { o.list(&bucket, prefix).await.unwrap().into_iter().map(|m| m.key).collect::<Vec<_>>() }
    };
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(list("").await, sorted);
    assert_eq!(list("a").await, ["a.txt", "a/1.txt", "a/10.txt", "a/2/x.txt", "ab.txt"]);
    assert_eq!(list("a/").await, ["a/1.txt", "a/10.txt", "a/2/x.txt"]);
    assert_eq!(list("a/1").await, ["a/1.txt", "a/10.txt"]);
    assert_eq!(list("c/d/").await, ["c/d/e/f.txt"]);
    assert_eq!(list("c/d/e/f.txt").await, ["c/d/e/f.txt"]);
    assert_eq!(list("zzz").await, Vec::<String>::new());
    let sizes: Vec<u64> = o.list(&bucket, "a/2/").await.unwrap().iter().map(|m| m.size).collect();
    assert_eq!(sizes, [3]);
}

pub async fn list_follows_pages(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    // S3 returns at most 1,000 keys per page.
    let n = 1_050;
    for i in 0..n {
        o.put(&ObjectRef::new(&bucket, format!("parts/{i:05}")), vec![1]).await.unwrap();
    }
    let listed = o.list(&bucket, "parts/").await.unwrap();
    assert_eq!(listed.len(), n);
    assert!(listed.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(listed[n - 1].key, format!("parts/{:05}", n - 1));
}

pub async fn delete_is_idempotent(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let obj = ObjectRef::new(&bucket, "tmp/scratch/file.bin");
    let keep = ObjectRef::new(&bucket, "tmp/keep.bin");
    o.put(&obj, vec![1, 2, 3]).await.unwrap();
    o.put(&keep, vec![4]).await.unwrap();
    o.delete(&obj).await.unwrap();
    o.delete(&obj).await.unwrap();
    o.delete(&ObjectRef::new(&bucket, "never/was")).await.unwrap();
    assert_eq!(o.head(&obj).await.unwrap(), None);
    let keys: Vec<String> = o.list(&bucket, "").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["tmp/keep.bin"]);
}

pub async fn missing_object_is_not_found(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let obj = ObjectRef::new(&bucket, "no/such/key.csv");
    for result in [o.get(&obj).await, o.get_range(&obj, 0..10).await] {
        match result {
            Err(PortError::NotFound(msg)) => assert!(msg.contains(&obj.to_string()), "{msg:?} names {obj}"),
            other => panic!("expected not found for {obj}, got {other:?}"),
        }
    }
    assert_eq!(o.head(&obj).await.unwrap(), None);
    assert_eq!(o.list(&bucket, "").await.unwrap(), vec![]);
}

pub async fn put_file_of_several_mib(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    const MIB: usize = 1024 * 1024;
    // Over S3's 5 MiB part size, so a multipart upload has several parts.
    let body = pattern(12 * MIB + 123, 7);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&body).unwrap();
    file.flush().unwrap();
    let obj = ObjectRef::new(&bucket, "big/input.bin");
    let meta = o.put_file(&obj, file.path()).await.unwrap();
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(o.head(&obj).await.unwrap().unwrap().size, body.len() as u64);
    let got = o.get(&obj).await.unwrap();
    assert!(got == body, "content differs after put_file ({} bytes back)", got.len());
    let edge = (5 * MIB - 10) as u64..(5 * MIB + 10) as u64;
    let range = o.get_range(&obj, edge.clone()).await.unwrap();
    assert_eq!(range, body[edge.start as usize..edge.end as usize]);
}

pub async fn invalid_names_rejected(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let bad_bucket = ObjectRef::new("Bad_Bucket", "a.txt");
    for result in [o.put(&bad_bucket, vec![1]).await.map(drop), o.get(&bad_bucket).await.map(drop)] {
        assert!(matches!(&result, Err(PortError::Invalid(m)) if m.contains("Bad_Bucket")), "{result:?}");
    }
    assert!(matches!(o.list("Bad_Bucket", "").await, Err(PortError::Invalid(_))));
    let empty_key = ObjectRef::new(&bucket, "");
    assert!(matches!(o.put(&empty_key, vec![1]).await, Err(PortError::Invalid(_))));
}

pub async fn concat_joins_parts_in_order(env: &dyn ObjectsEnv) {
    let (o, bucket) = (env.objects(), env.fresh_bucket().await);
    let bodies = [pattern(300_000, 1), Vec::new(), pattern(70_001, 2), b"tail\n".to_vec()];
    let mut parts = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let part = ObjectRef::new(&bucket, format!("run/stage/{i:04}"));
        o.put(&part, body.clone()).await.unwrap();
        parts.push(part);
    }
    // Parts in the order given, not key order.
    parts.swap(0, 2);
    let dest = ObjectRef::new(&bucket, "run/output");
    let meta = o.concat(&parts, &dest).await.unwrap();
    let expected: Vec<u8> = [2, 1, 0, 3].iter().flat_map(|&i| bodies[i].iter().copied()).collect();
    assert_eq!(meta.size, expected.len() as u64);
    assert_eq!(o.get(&dest).await.unwrap(), expected);
    // No parts: an empty object.
    let empty = ObjectRef::new(&bucket, "run/empty");
    assert_eq!(o.concat(&[], &empty).await.unwrap().size, 0);
    assert_eq!(o.get(&empty).await.unwrap(), Vec::<u8>::new());
    // A missing part is named, and the destination keeps what it had.
    let missing = ObjectRef::new(&bucket, "run/stage/9999");
    match o.concat(&[parts[0].clone(), missing], &dest).await {
        Err(PortError::NotFound(msg)) => assert!(msg.contains("run/stage/9999"), "{msg}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(o.get(&dest).await.unwrap(), expected);
}
