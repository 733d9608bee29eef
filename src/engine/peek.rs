//! Reading the engine's state from another process — `batchfan status` and
//! `batchfan logs` while a `batchfan run` or `serve` owns the state directory —
//! without taking the engine's lock. Read-only; sees what the engine committed.

use std::{collections::BTreeMap, path::Path};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::batch::JobStatus;

/// Children per status of each job (a plain job counts as one), by job id.
/// Unknown ids are omitted; a state directory without an engine gives nothing.
pub fn status_counts(
    state_dir: &Path,
    job_ids: &[String],
) -> Result<BTreeMap<String, BTreeMap<JobStatus, u64>>, rusqlite::Error> {
    let path = state_dir.join("engine.sqlite");
    let mut out = BTreeMap::new();
    if !path.exists() {
        return Ok(out);
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
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

/// The attempt log files of a job (`parent:index` for a child), oldest first.
pub fn attempt_logs(state_dir: &Path, job_id: &str) -> Vec<(u32, std::path::PathBuf)> {
    (1..=crate::batch::retry::MAX_ATTEMPTS)
        .map(|n| (n, super::log_path(state_dir, job_id, n)))
        .filter(|(_, p)| p.exists())
        .collect()
}

/// The status of one job or array child (`parent:index`), as the engine last
/// committed it; `None` when the engine does not know it (yet).
pub fn unit_status(state_dir: &Path, job_id: &str) -> Result<Option<JobStatus>, rusqlite::Error> {
    let path = state_dir.join("engine.sqlite");
    if !path.exists() {
        return Ok(None);
    }
    let (parent, index) = match job_id.split_once(':') {
        Some((parent, index)) => match index.parse::<i64>() {
            Ok(i) => (parent, i),
            Err(_) => return Ok(None),
        },
        None => (job_id, 0),
    };
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let status: Option<String> = conn
        .query_row(
            "SELECT u.status FROM units u JOIN jobs j ON j.seq = u.seq WHERE j.job_id = ?1 AND u.idx = ?2",
            rusqlite::params![parent, index],
            |r| r.get(0),
        )
        .optional()?;
    Ok(status.and_then(|s| s.parse().ok()))
}
