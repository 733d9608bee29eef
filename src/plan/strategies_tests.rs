//! Tests of the planner strategies over an in-memory object store.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Range,
    path::Path,
    sync::Mutex,
};

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::{
    error::{PortError, PortResult},
    objects::ObjectMeta,
    plan::{lines::CHUNK_BYTES, LineRange},
};

/// Objects in a map: enough of S3 for the planner.
#[derive(Default)]
struct MemObjects(Mutex<HashMap<ObjectRef, Vec<u8>>>);

impl MemObjects {
    fn with(objects: &[(&str, &[u8])]) -> Self {
        let map = objects.iter().map(|(uri, body)| (uri.parse().unwrap(), body.to_vec())).collect();
        MemObjects(Mutex::new(map))
    }
    fn meta(key: &str, body: &[u8]) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: body.len() as u64,
            etag: format!("{}", body.len()),
            last_modified: 0,
        }
    }
}

#[async_trait]
impl Objects for MemObjects {
    async fn head(&self, obj: &ObjectRef) -> PortResult<Option<ObjectMeta>> {
        Ok(self.0.lock().unwrap().get(obj).map(|b| Self::meta(&obj.key, b)))
    }
    async fn get(&self, obj: &ObjectRef) -> PortResult<Vec<u8>> {
        self.0.lock().unwrap().get(obj).cloned().ok_or_else(|| PortError::not_found(obj.to_string()))
    }
    async fn get_range(&self, obj: &ObjectRef, range: Range<u64>) -> PortResult<Vec<u8>> {
        let map = self.0.lock().unwrap();
        let body = map.get(obj).ok_or_else(|| PortError::not_found(obj.to_string()))?;
        let end = (range.end as usize).min(body.len());
        let start = (range.start as usize).min(end);
        Ok(body[start..end].to_vec())
    }
    async fn put(&self, obj: &ObjectRef, body: Vec<u8>) -> PortResult<ObjectMeta> {
        let meta = Self::meta(&obj.key, &body);
        self.0.lock().unwrap().insert(obj.clone(), body);
        Ok(meta)
    }
    async fn put_file(&self, obj: &ObjectRef, path: &Path) -> PortResult<ObjectMeta> {
        self.put(obj, std::fs::read(path)?).await
    }
    async fn list(&self, bucket: &str, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        let map = self.0.lock().unwrap();
        let mut out: Vec<ObjectMeta> = map
            .iter()
            .filter(|(k, _)| k.bucket == bucket && k.key.starts_with(prefix))
            .map(|(k, b)| Self::meta(&k.key, b))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
    async fn delete(&self, obj: &ObjectRef) -> PortResult<()> {
        self.0.lock().unwrap().remove(obj);
        Ok(())
    }
}

fn spec(planner: &str, dir: &Path) -> PipelineSpec {
    let text = format!("name = \"t\"\n[planner]\n{planner}\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n");
    crate::spec::load_str(&text, "t.toml", dir).unwrap_or_else(|e| panic!("{e}"))
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn uri(s: &str) -> ObjectRef {
    s.parse().unwrap()
}

#[tokio::test]
async fn lines_plans_ranges_of_the_input() {
    let store = MemObjects::with(&[("s3://inb/o.csv", b"id\n1\n2\n3\n4\n5")]);
    let s = spec("strategy = \"lines\"\nlines_per_item = 2\nheader = true", Path::new("."));
    let units = plan_units(&s, Some(&uri("s3://inb/o.csv")), &params(&[]), &store).await.unwrap();
    let ranges: Vec<LineRange> = units.into_iter().map(|u| serde_json::from_value(u).unwrap()).collect();
    assert_eq!(
        ranges,
        [
            LineRange { start: 3, end: 7, line: 2 },
            LineRange { start: 7, end: 11, line: 4 },
            LineRange { start: 11, end: 12, line: 6 }
        ]
    );
    let one =
        plan_units(&s, Some(&uri("s3://inb/o.csv")), &params(&[("lines_per_item", "10")]), &store).await;
    assert_eq!(one.unwrap(), [json!({"start": 3, "end": 12, "line": 2})]);
    let bad = plan_units(&s, Some(&uri("s3://inb/o.csv")), &params(&[("lines_per_item", "0")]), &store).await;
    assert!(matches!(bad, Err(PlanError::Invalid(m)) if m.contains("lines_per_item=0")));
}

#[tokio::test]
async fn lines_handles_missing_and_empty_inputs() {
    let store = MemObjects::with(&[("s3://inb/empty", b""), ("s3://inb/header", b"id,name\r\n")]);
    let s = spec("strategy = \"lines\"\nheader = true", Path::new("."));
    let none = params(&[]);
    assert!(plan_units(&s, Some(&uri("s3://inb/empty")), &none, &store).await.unwrap().is_empty());
    assert!(plan_units(&s, Some(&uri("s3://inb/header")), &none, &store).await.unwrap().is_empty());
    let missing = plan_units(&s, Some(&uri("s3://inb/nope")), &none, &store).await;
    assert!(matches!(missing, Err(PlanError::MissingInput(u)) if u == "s3://inb/nope"));
    assert!(matches!(plan_units(&s, None, &none, &store).await, Err(PlanError::NoInput(_))));
}

#[tokio::test]
async fn lines_reads_big_objects_in_chunks() {
    // Just over two chunks, so ranges straddle chunk boundaries.
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz012345678\n";
    let count = (2 * CHUNK_BYTES as usize) / line.len() + 1000;
    let body: Vec<u8> = line.iter().copied().cycle().take(line.len() * count).collect();
    let store = MemObjects::with(&[("s3://inb/big", &body)]);
    let s = spec("strategy = \"lines\"\nlines_per_item = 30000", Path::new("."));
    let units = plan_units(&s, Some(&uri("s3://inb/big")), &params(&[]), &store).await.unwrap();
    assert_eq!(units.len(), count.div_ceil(30_000));
    let ranges: Vec<LineRange> = units.into_iter().map(|u| serde_json::from_value(u).unwrap()).collect();
    assert!(ranges.windows(2).all(|w| w[0].end == w[1].start && w[1].line == w[0].line + 30_000));
    assert!(ranges.iter().all(|r| (r.start as usize).is_multiple_of(line.len())));
    assert_eq!(ranges.last().map(|r| r.end), Some(body.len() as u64));
}

#[tokio::test]
async fn objects_lists_one_unit_per_object_in_key_order() {
    let store = MemObjects::with(&[
        ("s3://inb/day/b.csv", b"22"),
        ("s3://inb/day/a.csv", b"1"),
        ("s3://inb/day/", b""),
        ("s3://inb/other/c.csv", b"333"),
    ]);
    let s = spec("strategy = \"objects\"", Path::new("."));
    let units = plan_units(&s, Some(&uri("s3://inb/day/")), &params(&[]), &store).await.unwrap();
    assert_eq!(
        units,
        [
            json!({"bucket": "inb", "key": "day/a.csv", "size": 1}),
            json!({"bucket": "inb", "key": "day/b.csv", "size": 2})
        ]
    );
    let none = plan_units(&s, Some(&uri("s3://inb/zzz")), &params(&[]), &store).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn range_counts_from_the_spec_or_the_param() {
    let store = MemObjects::default();
    let s = spec("strategy = \"range\"\ncount = 3", Path::new("."));
    assert_eq!(plan_units(&s, None, &params(&[]), &store).await.unwrap(), [json!(0), json!(1), json!(2)]);
    let five = plan_units(&s, None, &params(&[("count", "5")]), &store).await.unwrap();
    assert_eq!(five.len(), 5);
    let bad = plan_units(&s, None, &params(&[("count", "many")]), &store).await;
    assert!(matches!(bad, Err(PlanError::Invalid(m)) if m.contains("count=many")));
    let huge = plan_units(&s, None, &params(&[("count", "99999999999")]), &store).await;
    assert!(matches!(huge, Err(PlanError::Invalid(m)) if m.contains("99999999999")));
}

fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn custom_runs_the_command_with_input_and_params() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "plan.sh",
        "echo \"{\\\"input\\\": \\\"$BATCHFAN_INPUT\\\", \\\"region\\\": \\\"$BATCHFAN_PARAM_REGION\\\", \\\"arg\\\": \\\"$1\\\"}\"\necho\necho 7",
    );
    let text = "name = \"t\"\n[params]\nregion = \"eu\"\n[planner]\nstrategy = \"custom\"\ncommand = [\"./plan.sh\", \"--x\"]\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n";
    let s = crate::spec::load_str(text, "t.toml", dir.path()).unwrap();
    let store = MemObjects::default();
    let units = plan_units(&s, Some(&uri("s3://inb/k")), &params(&[]), &store).await.unwrap();
    assert_eq!(units, [json!({"input": "s3://inb/k", "region": "eu", "arg": "--x"}), json!(7)]);
    let us = plan_units(&s, None, &params(&[("region", "us")]), &store).await.unwrap();
    assert_eq!(us[0]["region"], "us");
    assert_eq!(us[0]["input"], "");
}

#[tokio::test]
async fn custom_failures_name_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "fail.sh", "echo starting >&2\necho 'no such table' >&2\nexit 3");
    script(dir.path(), "garbage.sh", "echo 1\necho 'not json at all'");
    let store = MemObjects::default();
    let none = params(&[]);
    let run = |cmd: &str| spec(&format!("strategy = \"custom\"\ncommand = [\"{cmd}\"]"), dir.path());

    let failed = plan_units(&run("./fail.sh"), None, &none, &store).await;
    let Err(PlanError::Custom(m)) = failed else { panic!("{failed:?}") };
    assert!(m.contains("code 3") && m.contains("no such table"), "{m}");

    let garbage = plan_units(&run("./garbage.sh"), None, &none, &store).await;
    let Err(PlanError::Custom(m)) = garbage else { panic!("{garbage:?}") };
    assert!(m.contains("line 2") && m.contains("not json at all"), "{m}");

    let missing = plan_units(&run("./absent.sh"), None, &none, &store).await;
    let Err(PlanError::Custom(m)) = missing else { panic!("{missing:?}") };
    assert!(m.contains("cannot run"), "{m}");
}

#[test]
fn programs_resolve_against_the_spec_directory() {
    assert_eq!(resolve_program("./plan.sh", Path::new("/specs")), Path::new("/specs/./plan.sh"));
    assert_eq!(resolve_program("bin/plan", Path::new("/specs")), Path::new("/specs/bin/plan"));
    assert_eq!(resolve_program("plan", Path::new("/specs")), Path::new("plan"));
    assert_eq!(resolve_program("/usr/bin/plan", Path::new("/specs")), Path::new("/usr/bin/plan"));
    assert_eq!(param_env_name("max-rows"), "BATCHFAN_PARAM_MAX_ROWS");
}

/// A million lines (120 MB) plan into the right units; how fast is the
/// benchmark's business (`batchfan-bench`'s plan column), not this test's.
#[tokio::test]
async fn plans_120_mb_of_one_million_lines() {
    let line = [b'x'; 119].iter().copied().chain([b'\n']).collect::<Vec<u8>>();
    let body: Vec<u8> = line.iter().copied().cycle().take(line.len() * 1_000_000).collect();
    let store = MemObjects::with(&[("s3://inb/big.csv", &body)]);
    drop(body);
    let s = spec("strategy = \"lines\"\nheader = true", Path::new("."));
    let units = plan_units(&s, Some(&uri("s3://inb/big.csv")), &params(&[]), &store).await.unwrap();
    // 999,999 data lines after the header, 30,000 to a unit.
    assert_eq!(units.len(), 999_999usize.div_ceil(30_000));
    assert_eq!(units[0]["start"], 120, "the first unit starts after the header");
    assert_eq!(units.last().unwrap()["end"], 120_000_000);
}
