//! The API's own state, beside the engine's: job definitions (every
//! revision), compute environments and job queues (their AWS detail as JSON),
//! tags by ARN, and the fields of a job the engine does not keep
//! (`parameters`, `propagateTags`). One SQLite file, `batch-api.sqlite`, in the
//! state directory; every call is one short statement or transaction.

use std::{collections::BTreeMap, path::Path, sync::Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// File name of the API's database in the state directory.
pub const DB_FILE: &str = "batch-api.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS definitions (
    name TEXT NOT NULL, revision INTEGER NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (name, revision));
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS tags (
    arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (arn, key));
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, parameters TEXT NOT NULL, propagate_tags INTEGER NOT NULL);
";

/// A registered job definition revision.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionRow {
    pub name: String,
    pub revision: i64,
    pub status: String,
    /// The RegisterJobDefinition request as received.
    pub body: Value,
}

/// What the API keeps of a job beside the engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobExtras {
    pub parameters: BTreeMap<String, String>,
    pub propagate_tags: bool,
}

/// The API's database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

fn json_text(v: &impl serde::Serialize) -> ApiResult<String> {
    serde_json::to_string(v).map_err(|e| ApiError::Server(format!("cannot encode JSON: {e}")))
}

fn parse(text: &str) -> ApiResult<Value> {
    serde_json::from_str(text).map_err(|e| ApiError::Server(format!("stored JSON is unreadable: {e}")))
}

impl Store {
    /// Opens (or creates) `DIR/batch-api.sqlite`.
    pub fn open(dir: &Path) -> Result<Store, rusqlite::Error> {
        let conn = Connection::open(dir.join(DB_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds the next revision of definition `name` (ACTIVE) and returns its number.
    pub fn add_definition(&self, name: &str, body: &Value) -> ApiResult<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let last: Option<i64> =
            tx.query_row("SELECT MAX(revision) FROM definitions WHERE name = ?1", [name], |r| r.get(0))?;
        let revision = last.unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO definitions (name, revision, status, body) VALUES (?1, ?2, 'ACTIVE', ?3)",
            params![name, revision, json_text(body)?],
        )?;
        tx.commit()?;
        Ok(revision)
    }

    /// Every revision, by name then revision; `name` narrows to one definition.
    pub fn definitions(&self, name: Option<&str>) -> ApiResult<Vec<DefinitionRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, revision, status, body FROM definitions
             WHERE ?1 IS NULL OR name = ?1 ORDER BY name, revision",
        )?;
        let rows =
            stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, revision, status, body) = row?;
            out.push(DefinitionRow { name, revision, status, body: parse(&body)? });
        }
        Ok(out)
    }

    /// Marks a revision INACTIVE; false when it does not exist.
    pub fn deactivate_definition(&self, name: &str, revision: i64) -> ApiResult<bool> {
        let n = self.conn().execute(
            "UPDATE definitions SET status = 'INACTIVE' WHERE name = ?1 AND revision = ?2",
            params![name, revision],
        )?;
        Ok(n > 0)
    }

    /// Inserts a compute environment or job queue (`kind`); false when the name is taken.
    pub fn insert_resource(&self, kind: &str, name: &str, body: &Value) -> ApiResult<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO resources (kind, name, seq, body)
             VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM resources), ?3)",
            params![kind, name, json_text(body)?],
        )?;
        Ok(n > 0)
    }

    /// Replaces the detail of an existing resource.
    pub fn update_resource(&self, kind: &str, name: &str, body: &Value) -> ApiResult<()> {
        self.conn().execute(
            "UPDATE resources SET body = ?3 WHERE kind = ?1 AND name = ?2",
            params![kind, name, json_text(body)?],
        )?;
        Ok(())
    }

    /// Stores `body` (or deletes the resource and its tags, for `None`) only if
    /// its detail is still `expected`: whether it was. A transition that
    /// settles on a read must not overwrite a change another request made
    /// since (a Delete's DELETING turned back into VALID).
    pub fn settle_resource(
        &self,
        kind: &str,
        name: &str,
        expected: &Value,
        body: Option<&Value>,
        arn: &str,
    ) -> ApiResult<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let expected = json_text(expected)?;
        let changed = match body {
            Some(body) => tx.execute(
                "UPDATE resources SET body = ?4 WHERE kind = ?1 AND name = ?2 AND body = ?3",
                params![kind, name, expected, json_text(body)?],
            )?,
            None => {
                let n = tx.execute(
                    "DELETE FROM resources WHERE kind = ?1 AND name = ?2 AND body = ?3",
                    params![kind, name, expected],
                )?;
                if n == 1 {
                    tx.execute("DELETE FROM tags WHERE arn = ?1", [arn])?;
                }
                n
            }
        };
        tx.commit()?;
        Ok(changed == 1)
    }

    /// One resource's detail.
    pub fn resource(&self, kind: &str, name: &str) -> ApiResult<Option<Value>> {
        let text: Option<String> = self
            .conn()
            .query_row("SELECT body FROM resources WHERE kind = ?1 AND name = ?2", params![kind, name], |r| {
                r.get(0)
            })
            .optional()?;
        text.as_deref().map(parse).transpose()
    }

    /// Every resource of `kind`, in creation order.
    pub fn resources(&self, kind: &str) -> ApiResult<Vec<Value>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT body FROM resources WHERE kind = ?1 ORDER BY seq")?;
        let texts = stmt.query_map([kind], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        texts.iter().map(|t| parse(t)).collect()
    }

    /// The tags of `arn`.
    pub fn tags(&self, arn: &str) -> ApiResult<BTreeMap<String, String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT key, value FROM tags WHERE arn = ?1")?;
        let rows = stmt.query_map([arn], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds or replaces tags of `arn`.
    pub fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> ApiResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (k, v) in tags {
            tx.execute(
                "INSERT OR REPLACE INTO tags (arn, key, value) VALUES (?1, ?2, ?3)",
                params![arn, k, v],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes tags of `arn` by key (absent keys are ignored, as AWS does).
    pub fn untag(&self, arn: &str, keys: &[String]) -> ApiResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for k in keys {
            tx.execute("DELETE FROM tags WHERE arn = ?1 AND key = ?2", params![arn, k])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records what the API keeps of a submitted job.
    pub fn put_job(&self, job_id: &str, extras: &JobExtras) -> ApiResult<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO jobs (job_id, parameters, propagate_tags) VALUES (?1, ?2, ?3)",
            params![job_id, json_text(&extras.parameters)?, extras.propagate_tags],
        )?;
        Ok(())
    }

    /// What the API keeps of a job (defaults for a job submitted through the other door).
    pub fn job(&self, job_id: &str) -> ApiResult<JobExtras> {
        let row: Option<(String, bool)> = self
            .conn()
            .query_row("SELECT parameters, propagate_tags FROM jobs WHERE job_id = ?1", [job_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((parameters, propagate_tags)) = row else { return Ok(JobExtras::default()) };
        let parameters = serde_json::from_value(parse(&parameters)?).map_err(|e| {
            ApiError::Server(format!("stored parameters of job {job_id} are unreadable: {e}"))
        })?;
        Ok(JobExtras { parameters, propagate_tags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_count_up_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let body = serde_json::json!({"type": "container"});
        assert_eq!(store.add_definition("d", &body).unwrap(), 1);
        assert_eq!(store.add_definition("d", &body).unwrap(), 2);
        assert!(store.deactivate_definition("d", 1).unwrap());
        assert!(!store.deactivate_definition("d", 9).unwrap());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let rows = store.definitions(Some("d")).unwrap();
        let seen: Vec<_> = rows.iter().map(|r| (r.revision, r.status.as_str())).collect();
        assert_eq!(seen, [(1, "INACTIVE"), (2, "ACTIVE")]);
        assert!(store.insert_resource("queue", "q", &body).unwrap());
        assert!(!store.insert_resource("queue", "q", &body).unwrap(), "a second create with the same name");
    }

    // Regression: a Describe that settled an UPDATING compute environment
    // (read, then VALID written) overwrote the DELETING a concurrent Delete
    // had stored in between; Terraform's destroy then waited on a VALID one.
    #[test]
    fn a_settle_from_a_stale_read_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let updating = serde_json::json!({"status": "UPDATING"});
        let deleting = serde_json::json!({"status": "DELETING"});
        let valid = serde_json::json!({"status": "VALID"});
        assert!(store.insert_resource("ce", "c", &updating).unwrap());
        store.update_resource("ce", "c", &deleting).unwrap();
        assert!(!store.settle_resource("ce", "c", &updating, Some(&valid), "arn").unwrap());
        assert_eq!(store.resource("ce", "c").unwrap(), Some(deleting.clone()));
        assert!(!store.settle_resource("ce", "c", &updating, None, "arn").unwrap(), "nor deletes it");
        assert!(store.settle_resource("ce", "c", &deleting, None, "arn").unwrap());
        assert_eq!(store.resource("ce", "c").unwrap(), None);
    }
}
