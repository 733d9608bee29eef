//! Compact rows: attribute names stored once per file, not once per row.
//!
//! Items written by `put_rows` share their attribute names, which in a typical
//! row take as many bytes as the values. Such a row's `attrs` column holds a
//! JSON array `[H, v1, v2, ...]` instead of an object: `H` identifies the names
//! (a hash of them) and the values follow in the names' order. The names are
//! kept in each file's `attr_names` table, written in the same transaction as
//! the rows. Other items keep `attrs` as a JSON object, and a reader tells the
//! two apart by the first character.
//!
//! `H` is the first 63 bits of the SHA-256 of the names' JSON array: content
//! addressed, so every process and file agrees on it, and a process caches
//! the names of a hash for good. A stored hash with different names (a
//! collision) is refused rather than mixed up.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::PortError;
use crate::sqlite::lock;

const INSERT: &str = "INSERT OR IGNORE INTO attr_names (hash, names) VALUES (?1, ?2)";
const SELECT: &str = "SELECT names FROM attr_names WHERE hash = ?1";

/// A set of attribute names, with its hash and JSON text.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) hash: i64,
    pub(super) json: String,
}

impl Names {
    pub(super) fn new(names: &[String]) -> Result<Names, PortError> {
        let json = serde_json::to_string(names)
            .map_err(|e| PortError::invalid(format!("cannot encode attribute names: {e}")).caused_by(e))?;
        let digest = Sha256::digest(json.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let hash = (u64::from_be_bytes(first) >> 1) as i64;
        Ok(Names { hash, json })
    }

    /// Records the names in `conn`'s file (inside the caller's transaction);
    /// refuses a hash already stored with other names.
    pub(super) fn store(&self, conn: &Connection) -> Result<(), PortError> {
        if conn.prepare_cached(INSERT)?.execute(params![self.hash, self.json])? == 0 {
            let stored: String = conn.prepare_cached(SELECT)?.query_row(params![self.hash], |r| r.get(0))?;
            if stored != self.json {
                return Err(PortError::backend(format!(
                    "attribute names {} and {stored} share the hash {}: write one of them with put_batch",
                    self.json, self.hash
                )));
            }
        }
        Ok(())
    }
}

type Cache = Mutex<HashMap<i64, Arc<Vec<String>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

fn cached(hash: i64) -> Option<Arc<Vec<String>>> {
    lock(cache()).get(&hash).cloned()
}

fn remember(hash: i64, json: &str) -> Result<Arc<Vec<String>>, PortError> {
    let names: Vec<String> = serde_json::from_str(json).map_err(|e| {
        PortError::backend(format!("stored attribute names are not a json array: {e}")).caused_by(e)
    })?;
    let names = Arc::new(names);
    lock(cache()).insert(hash, names.clone());
    Ok(names)
}

/// Decodes a row's `attrs` column: a JSON object, or a compact `[H, values...]` row.
pub(super) fn decode(conn: &Connection, attrs: &str) -> Result<Map<String, Value>, PortError> {
    let corrupt = |what: String| PortError::backend(format!("stored attributes are not valid: {what}"));
    if !attrs.starts_with('[') {
        return serde_json::from_str(attrs).map_err(|e| corrupt(format!("not a json object: {e}")));
    }
    let values: Vec<Value> =
        serde_json::from_str(attrs).map_err(|e| corrupt(format!("not a json array: {e}")))?;
    let mut values = values.into_iter();
    let hash = values
        .next()
        .and_then(|h| h.as_i64())
        .ok_or_else(|| corrupt("a compact row without a names hash".into()))?;
    let names = match cached(hash) {
        Some(names) => names,
        None => {
            let json: Option<String> =
                conn.prepare_cached(SELECT)?.query_row(params![hash], |r| r.get(0)).optional()?;
            let json = json.ok_or_else(|| corrupt(format!("no attribute names with hash {hash}")))?;
            remember(hash, &json)?
        }
    };
    if values.len() != names.len() {
        return Err(corrupt(format!("{} values for {} attribute names", values.len(), names.len())));
    }
    Ok(names.iter().cloned().zip(values).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::sqlite::SCHEMA;

    #[test]
    fn hashes_are_stable_and_positive() {
        let a = Names::new(&["a".into(), "b".into()]).unwrap();
        assert_eq!(a.hash, Names::new(&["a".into(), "b".into()]).unwrap().hash);
        assert_ne!(a.hash, Names::new(&["b".into(), "a".into()]).unwrap().hash);
        assert!(a.hash >= 0);
        assert_eq!(a.json, r#"["a","b"]"#);
    }

    #[test]
    fn decodes_objects_and_compact_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let names = Names::new(&["x".into(), "y".into()]).unwrap();
        names.store(&conn).unwrap();
        names.store(&conn).unwrap();
        let row = format!(r#"[{},"1",{{"z":2}}]"#, names.hash);
        let map = decode(&conn, &row).unwrap();
        assert_eq!(Value::Object(map), serde_json::json!({"x": "1", "y": {"z": 2}}));
        assert_eq!(Value::Object(decode(&conn, r#"{"a":1}"#).unwrap()), serde_json::json!({"a": 1}));
        assert!(decode(&conn, r#"[1,"a"]"#).unwrap_err().to_string().contains("no attribute names"));
        let short = format!(r#"[{},"1"]"#, names.hash);
        assert!(decode(&conn, &short).unwrap_err().to_string().contains("1 values for 2"));
    }

    #[test]
    fn a_hash_stored_with_other_names_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let names = Names::new(&["only-in-this-test".into()]).unwrap();
        conn.execute(INSERT, params![names.hash, r#"["other"]"#]).unwrap();
        assert!(names.store(&conn).unwrap_err().to_string().contains("share the hash"));
    }
}
