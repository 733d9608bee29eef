//! The directory store's own guarantees: staged writes never show, files
//! dropped in by other programs are objects, keys are safe relative paths,
//! deletes tidy up empty directories, readers never see a partial object.

use std::{fs, sync::Arc, time::Duration};

use batchfan::{
    error::PortError,
    objects::{
        dir::{DirObjects, TMP_DIR},
        ObjectRef, Objects,
    },
};

fn keys(metas: Vec<batchfan::objects::ObjectMeta>) -> Vec<String> {
    metas.into_iter().map(|m| m.key).collect()
}

#[tokio::test]
async fn staged_and_leftover_temp_files_never_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjects::new(dir.path());
    let obj = ObjectRef::new("out", "result.csv");
    store.put(&obj, b"a,b\n".to_vec()).await.unwrap();
    // A write that crashed halfway leaves its temp file behind.
    fs::write(dir.path().join("out").join(TMP_DIR).join("dead.tmp"), b"partial").unwrap();
    assert_eq!(keys(store.list("out", "").await.unwrap()), ["result.csv"]);
    assert_eq!(keys(store.list("out", ".batchfan").await.unwrap()), Vec::<String>::new());
    // A successful write leaves nothing staged.
    let staged: Vec<_> = fs::read_dir(dir.path().join("out").join(TMP_DIR)).unwrap().collect();
    assert_eq!(staged.len(), 1, "only the leftover");
}

#[tokio::test]
async fn files_dropped_in_by_other_programs_are_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjects::new(dir.path());
    let bucket = dir.path().join("orders-in");
    fs::create_dir_all(bucket.join("2024/06")).unwrap();
    fs::write(bucket.join("2024/06/orders.csv"), b"id\n1\n").unwrap();
    fs::write(bucket.join(".hidden"), b"h").unwrap();
    std::os::unix::fs::symlink(bucket.join("2024/06/orders.csv"), bucket.join("latest.csv")).unwrap();

    // A symbolic link is never an object (it could lead out of the bucket):
    // listings leave it out, and reads through it are refused.
    assert_eq!(keys(store.list("orders-in", "").await.unwrap()), [".hidden", "2024/06/orders.csv"]);
    let obj = ObjectRef::new("orders-in", "2024/06/orders.csv");
    assert_eq!(store.get(&obj).await.unwrap(), b"id\n1\n");
    assert_eq!(store.head(&obj).await.unwrap().unwrap().size, 5);
    assert!(store.get(&ObjectRef::new("orders-in", "latest.csv")).await.is_err(), "a link is not read");

    // Edited in place by the other program: the etag moves.
    let before = store.head(&obj).await.unwrap().unwrap().etag;
    fs::write(bucket.join("2024/06/orders.csv"), b"id\n1\n2\n").unwrap();
    assert_ne!(store.head(&obj).await.unwrap().unwrap().etag, before);
}

#[tokio::test]
async fn keys_must_be_safe_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjects::new(dir.path().join("root"));
    for key in [
        "../escape",
        "a/../../b",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "trailing/",
        "nul\0byte",
        ".batchfan-tmp/x",
    ] {
        let obj = ObjectRef::new("bucket", key);
        let err = store.put(&obj, vec![1]).await.unwrap_err();
        assert!(matches!(&err, PortError::Invalid(m) if m.contains("relative path")), "{key:?}: {err}");
        assert!(matches!(store.get(&obj).await, Err(PortError::Invalid(_))), "{key:?}");
    }
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test]
async fn delete_removes_empty_parent_directories_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjects::new(dir.path());
    let deep = ObjectRef::new("b-1", "x/y/z/deep.txt");
    let sibling = ObjectRef::new("b-1", "x/keep.txt");
    store.put(&deep, vec![1]).await.unwrap();
    store.put(&sibling, vec![2]).await.unwrap();
    store.delete(&deep).await.unwrap();
    assert!(!dir.path().join("b-1/x/y").exists());
    assert!(dir.path().join("b-1/x/keep.txt").exists());
    store.delete(&sibling).await.unwrap();
    assert!(!dir.path().join("b-1/x").exists());
    assert!(dir.path().join("b-1").is_dir(), "the bucket stays");
}

#[tokio::test]
async fn path_of_and_conflicting_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjects::new(dir.path());
    let obj = ObjectRef::new("b-2", "a/b");
    assert_eq!(store.path_of(&obj), dir.path().join("b-2/a/b"));
    store.put(&obj, vec![1]).await.unwrap();
    assert!(store.path_of(&obj).is_file());
    // S3 could hold both a/b and a/b/c; a directory cannot.
    let under = store.put(&ObjectRef::new("b-2", "a/b/c"), vec![2]).await.unwrap_err();
    assert!(matches!(&under, PortError::Invalid(m) if m.contains("conflicts")), "{under}");
    let over = store.put(&ObjectRef::new("b-2", "a"), vec![3]).await.unwrap_err();
    assert!(matches!(&over, PortError::Invalid(m) if m.contains("conflicts")), "{over}");
    assert_eq!(store.head(&ObjectRef::new("b-2", "a")).await.unwrap(), None);
    assert!(matches!(store.get(&ObjectRef::new("b-2", "a")).await, Err(PortError::NotFound(_))));
}

#[tokio::test]
async fn put_file_of_a_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjects::new(dir.path()).with_fsync(true);
    let missing = dir.path().join("nope.bin");
    let err = store.put_file(&ObjectRef::new("b-3", "x"), &missing).await.unwrap_err();
    assert!(matches!(&err, PortError::NotFound(m) if m.contains("nope.bin")), "{err}");
    assert_eq!(keys(store.list("b-3", "").await.unwrap()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_the_old_or_the_new_object_never_a_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirObjects::new(dir.path()));
    let obj = ObjectRef::new("b-4", "flip.bin");
    let (a, b) = (vec![b'a'; 1 << 20], vec![b'b'; 1 << 20]);
    store.put(&obj, a.clone()).await.unwrap();
    let writer = {
        let (store, obj, a, b) = (store.clone(), obj.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                store.put(&obj, if i % 2 == 0 { b.clone() } else { a.clone() }).await.unwrap();
            }
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !writer.is_finished() {
        let got = store.get(&obj).await.unwrap();
        assert!(got == a || got == b, "read a mix of {} bytes", got.len());
        assert!(tokio::time::Instant::now() < deadline, "writer did not finish in time");
    }
    writer.await.unwrap();
}
