//! Reading the engine's state from another process — `batchfan status` and
//! `batchfan logs` while a `batchfan run` or `serve` owns the state directory —
//! without taking the engine's lock. Read-only; sees what the engine committed.

use std::{collections::BTreeMap, path::Path};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::batch::{Attempt, ChildTime, JobStatus};

/// The engine's database, read-only; `None` when the state directory has no engine.
fn open(state_dir: &Path) -> Result<Option<Connection>, rusqlite::Error> {
    let path = state_dir.join("engine.sqlite");
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(Some(conn))
}

/// Children per status of each job (a plain job counts as one), by job id.
/// Unknown ids are omitted; a state directory without an engine gives nothing.
pub fn status_counts(
    state_dir: &Path,
    job_ids: &[String],
) -> Result<BTreeMap<String, BTreeMap<JobStatus, u64>>, rusqlite::Error> {
    let mut out = BTreeMap::new();
    let Some(conn) = open(state_dir)? else { return Ok(out) };
    let mut seq_of = conn.prepare("SELECT seq FROM jobs WHERE job_id = ?1")?;
    let mut counts = conn.prepare("SELECT status, COUNT(*) FROM units WHERE seq = ?1 GROUP BY status")?;
    for id in job_ids {
        let Some(seq) = seq_of.query_row([id], |r| r.get::<_, i64>(0)).optional()? else { continue };
        let mut by_status = BTreeMap::new();
        let rows = counts.query_map([seq], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            if let Ok(st) = status.parse::<JobStatus>() {
                by_status.insert(st, n as u64);
            }
        }
        out.insert(id.clone(), by_status);
    }
    Ok(out)
}

/// Each job's children (one entry for a plain job) with their times, by job
/// id, as [`crate::run::timings::collect`] gets them from the Batch port.
/// Unknown ids are omitted; a state directory without an engine gives nothing.
pub fn child_times(
    state_dir: &Path,
    job_ids: &[String],
) -> Result<BTreeMap<String, Vec<ChildTime>>, rusqlite::Error> {
    let mut out = BTreeMap::new();
    let Some(conn) = open(state_dir)? else { return Ok(out) };
    let mut job = conn.prepare("SELECT seq, created_at FROM jobs WHERE job_id = ?1")?;
    let mut units = conn.prepare(
        "SELECT idx, status, started_at, stopped_at, attempts FROM units WHERE seq = ?1 ORDER BY idx",
    )?;
    for id in job_ids {
        let Some((seq, created_at)) =
            job.query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).optional()?
        else {
            continue;
        };
        let rows = units.query_map([seq], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut children = Vec::new();
        for row in rows {
            let (index, status, started_at, stopped_at, attempts) = row?;
            let Ok(status) = status.parse::<JobStatus>() else { continue };
            let attempts: Vec<Attempt> =
                attempts.and_then(|a| serde_json::from_str(&a).ok()).unwrap_or_default();
            children.push(ChildTime {
                job_id: id.clone(),
                index,
                status,
                created_at,
                started_at,
                stopped_at,
                exit_code: attempts.last().and_then(|a| a.exit_code),
            });
        }
        // An array has 2 or more children (AWS's minimum size): name them `parent:index`.
        if children.len() > 1 {
            for c in &mut children {
                c.job_id = format!("{id}:{}", c.index);
            }
        }
        out.insert(id.clone(), children);
    }
    Ok(out)
}

/// How many attempts of one job or array child (`parent:index`) have begun —
/// the ended ones and the one under way — as the engine last committed it.
/// Each has a log, empty (no file: see `engine::output`) if it printed nothing.
pub fn attempts_begun(state_dir: &Path, job_id: &str) -> Result<u32, rusqlite::Error> {
    let row: Option<(Option<String>, Option<String>)> =
        unit_row(state_dir, job_id, "u.attempts, u.run", |r| Ok((r.get(0)?, r.get(1)?)))?;
    let Some((attempts, run)) = row else { return Ok(0) };
    let ended = attempts.and_then(|a| serde_json::from_str::<Vec<Attempt>>(&a).ok()).map_or(0, |a| a.len());
    let running =
        run.and_then(|r| serde_json::from_str::<super::store::RunRecord>(&r).ok()).map(|r| r.attempt);
    Ok(running.unwrap_or(0).max(ended as u32))
}

/// `columns` of the `units` row of one job or array child (`parent:index`),
/// read by `read`; `None` when the engine does not know it.
fn unit_row<T>(
    state_dir: &Path,
    job_id: &str,
    columns: &str,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, rusqlite::Error> {
    let Some(conn) = open(state_dir)? else { return Ok(None) };
    let (parent, index) = match job_id.split_once(':') {
        Some((parent, index)) => match index.parse::<i64>() {
            Ok(i) => (parent, i),
            Err(_) => return Ok(None),
        },
        None => (job_id, 0),
    };
    let sql = format!(
        "SELECT {columns} FROM units u JOIN jobs j ON j.seq = u.seq WHERE j.job_id = ?1 AND u.idx = ?2"
    );
    conn.query_row(&sql, rusqlite::params![parent, index], read).optional()
}

/// The status of one job or array child (`parent:index`), as the engine last
/// committed it; `None` when the engine does not know it (yet).
pub fn unit_status(state_dir: &Path, job_id: &str) -> Result<Option<JobStatus>, rusqlite::Error> {
    let status: Option<String> = unit_row(state_dir, job_id, "u.status", |r| r.get(0))?;
    Ok(status.and_then(|s| s.parse().ok()))
}
