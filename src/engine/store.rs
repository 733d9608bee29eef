//! SQLite persistence at `{state_dir}/engine.sqlite` (WAL, synchronous=NORMAL).
//!
//! `jobs` holds each SubmitJob request as submitted; `units` one row per plain
//! job or array child with its status, attempts and the attempt in flight.
//! Changes are marked dirty in memory and written by [`State::commit`] in one
//! transaction per scheduling tick or API call (group commit).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{
    state::{Run, State},
    EngineError,
};
use crate::batch::{Attempt, JobStatus, SubmitJob};

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS units (
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    started_at INTEGER,
    stopped_at INTEGER,
    attempts TEXT,
    counted INTEGER NOT NULL,
    run TEXT,
    PRIMARY KEY (seq, idx)
) WITHOUT ROWID;
";

/// The open database.
pub(crate) struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A stored job.
pub(crate) struct JobRow {
    pub seq: i64,
    pub id: String,
    pub queue: String,
    pub request: SubmitJob,
    pub created_at: i64,
    pub reason: Option<String>,
}

/// A stored unit.
pub(crate) struct UnitRow {
    pub seq: i64,
    pub idx: u32,
    pub status: JobStatus,
    pub reason: Option<String>,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub attempts: Vec<Attempt>,
    pub counted: u32,
    pub run: Option<RunRecord>,
}

/// The stored part of the attempt in flight: what recovery needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunRecord {
    pub attempt: u32,
    pub log: String,
    pub started_at: i64,
    pub pid: Option<u32>,
    pub pid_start: Option<u64>,
}

impl From<&Run> for RunRecord {
    fn from(r: &Run) -> Self {
        RunRecord {
            attempt: r.attempt,
            log: r.log.clone(),
            started_at: r.started_at,
            pid: r.pid,
            pid_start: r.pid_start,
        }
    }
}

impl Store {
    /// Opens or creates the database.
    pub(crate) fn open(path: &Path) -> Result<Store, EngineError> {
        let db = |source| EngineError::Db { path: path.to_path_buf(), source };
        // The engine is its database's one writer (the state directory's lock).
        let conn = crate::sqlite::connect(path, 4096)
            .map_err(|e| EngineError::Corrupt { path: path.to_path_buf(), detail: e.to_string() })?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match version.as_deref() {
            None => {
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?1)", [SCHEMA_VERSION])
                    .map_err(db)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(EngineError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("schema version {other:?}, this engine knows {SCHEMA_VERSION:?}"),
                })
            }
        }
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// Every job and unit, in submission order (units by index within a job).
    pub(crate) fn load(&self) -> Result<(Vec<JobRow>, Vec<UnitRow>), EngineError> {
        let db = |source| EngineError::Db { path: self.path.clone(), source };
        let corrupt = |detail: String| EngineError::Corrupt { path: self.path.clone(), detail };
        let mut stmt = self
            .conn
            .prepare("SELECT seq, job_id, queue, request, created_at, reason FROM jobs ORDER BY seq")
            .map_err(db)?;
        let raw = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get(4)?, r.get(5)?))
            })
            .map_err(db)?;
        let mut jobs = Vec::new();
        for row in raw {
            let (seq, id, queue, request, created_at, reason): (i64, String, String, String, i64, _) =
                row.map_err(db)?;
            let request = serde_json::from_str(&request).map_err(|e| corrupt(format!("job {id}: {e}")))?;
            jobs.push(JobRow { seq, id, queue, request, created_at, reason });
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, idx, status, reason, started_at, stopped_at, attempts, counted, run \
                 FROM units ORDER BY seq, idx",
            )
            .map_err(db)?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    (r.get::<_, i64>(0)?, r.get::<_, u32>(1)?, r.get::<_, String>(2)?, r.get(3)?),
                    (
                        r.get(4)?,
                        r.get(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get(7)?,
                        r.get::<_, Option<String>>(8)?,
                    ),
                ))
            })
            .map_err(db)?;
        let mut units = Vec::new();
        for row in raw {
            let ((seq, idx, status, reason), (started_at, stopped_at, attempts, counted, run)) =
                row.map_err(db)?;
            let what = |e: String| corrupt(format!("unit {seq}/{idx}: {e}"));
            units.push(UnitRow {
                seq,
                idx,
                status: status.parse().map_err(what)?,
                reason,
                started_at,
                stopped_at,
                attempts: match attempts {
                    Some(a) => serde_json::from_str(&a).map_err(|e| what(e.to_string()))?,
                    None => Vec::new(),
                },
                counted,
                run: match run {
                    Some(r) => Some(serde_json::from_str(&r).map_err(|e| what(e.to_string()))?),
                    None => None,
                },
            });
        }
        Ok((jobs, units))
    }
}

impl State {
    /// Writes every dirty job and unit in one transaction. On error nothing is
    /// written and everything stays dirty for the next commit.
    pub(crate) fn commit(&mut self) -> rusqlite::Result<()> {
        let State { store, jobs, units, dirty_units, dirty_jobs, .. } = self;
        let Some(store) = store.as_mut() else { return Ok(()) };
        if dirty_units.is_empty() && dirty_jobs.is_empty() {
            return Ok(());
        }
        let tx = store.conn.transaction()?;
        {
            let mut insert_job = tx.prepare_cached(
                "INSERT INTO jobs (seq, job_id, queue, request, created_at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut update_job = tx.prepare_cached("UPDATE jobs SET reason = ?2 WHERE seq = ?1")?;
            for &j in dirty_jobs.iter() {
                let job = &jobs[j as usize];
                if job.new {
                    let request = json(&job.request)?;
                    insert_job.execute(params![
                        job.seq,
                        job.id,
                        job.queue,
                        request,
                        job.created_at,
                        job.reason
                    ])?;
                } else {
                    update_job.execute(params![job.seq, job.reason])?;
                }
            }
            let mut put_unit = tx.prepare_cached(
                "INSERT OR REPLACE INTO units \
                 (seq, idx, status, reason, started_at, stopped_at, attempts, counted, run) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for &u in dirty_units.iter() {
                let unit = &units[u as usize];
                let attempts = if unit.attempts.is_empty() { None } else { Some(json(&unit.attempts)?) };
                let run = match &unit.run {
                    Some(r) => Some(json(&RunRecord::from(&**r))?),
                    None => None,
                };
                put_unit.execute(params![
                    jobs[unit.job as usize].seq,
                    unit.index,
                    unit.status.as_str(),
                    unit.reason,
                    unit.started_at,
                    unit.stopped_at,
                    attempts,
                    unit.counted,
                    run,
                ])?;
            }
        }
        tx.commit()?;
        for j in dirty_jobs.drain(..) {
            let job = &mut jobs[j as usize];
            job.dirty = false;
            job.new = false;
        }
        for u in dirty_units.drain(..) {
            units[u as usize].dirty = false;
        }
        Ok(())
    }
}

fn json<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}
