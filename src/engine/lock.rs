//! `{state_dir}/engine.lock`: an exclusive `flock` so two engines never share a
//! state directory. The file records the holder's pid for the error message.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
};

use super::{sys, EngineError};

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock on `state_dir` without waiting.
    pub(crate) fn acquire(state_dir: &Path) -> Result<StateLock, EngineError> {
        let path = state_dir.join("engine.lock");
        let io_err = |action, source| EngineError::Io { action, path: path.clone(), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err("open the lock file", e))?;
        if !sys::try_lock_exclusive(&file).map_err(|e| io_err("lock", e))? {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let pid = match holder.trim() {
                "" => "unknown (it has not written its pid yet)".to_string(),
                pid => pid.to_string(),
            };
            return Err(EngineError::Locked { dir: state_dir.to_path_buf(), pid });
        }
        file.set_len(0).map_err(|e| io_err("write the lock file", e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io_err("write the lock file", e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| io_err("write the lock file", e))?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder_and_first_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert!(msg.contains("use another --state directory"), "{msg}");
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }
}
