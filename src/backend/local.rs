//! The embedded backend: the local Batch engine, the SQLite tables, the
//! bucket directories and the bus under one state directory (the `local`
//! feature).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use super::LocalLayout;
use crate::{
    engine::{EngineConfig, EngineError, LocalEngine},
    env,
    error::PortError,
    objects::dir::DirObjects,
    run::{BackendKind, FileLogTail, Ports},
    table::{relay::RelayServer, sqlite::SqliteTable},
    topic::bus::{Bus, BusConfig},
};

/// Options of the embedded backend.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// vCPU capacity (default: this machine's cores).
    pub vcpus: Option<f64>,
    /// Memory capacity in MiB (default: this machine's memory).
    pub memory_mib: Option<u64>,
    /// Multiplies timeouts and kill grace (tests).
    pub time_scale: f64,
    /// Extra directories searched for job commands, before the container PATH.
    pub path_prefix: Vec<PathBuf>,
    /// Host variables passed on to jobs (`[local] pass_env`); jobs see nothing else of the host's.
    pub pass_env: Vec<String>,
    /// Keep each attempt's working directory under `{state}/work/` after it ends.
    pub keep_workdirs: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            vcpus: None,
            memory_mib: None,
            time_scale: 1.0,
            path_prefix: Vec::new(),
            pass_env: Vec::new(),
            keep_workdirs: false,
        }
    }
}

/// Why the embedded backend cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The state directory cannot be created or read.
    #[error("cannot create state directory {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The local Batch engine cannot start (its lock, its database).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A table or the bus cannot be opened.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Creates the state directory readable by its owner only (0700), or makes an
/// existing one so: nothing under it is then reachable by other users.
fn private_dir(state_dir: &Path) -> Result<(), BackendError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|source| BackendError::StateDir { path: state_dir.to_path_buf(), source })?;
    let mode = std::fs::metadata(state_dir)
        .map_err(|source| BackendError::StateDir { path: state_dir.to_path_buf(), source })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        if let Err(e) = std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(mode & 0o700)) {
            tracing::warn!(
                "state directory {} is readable by other users and cannot be made private ({e}): chmod 700 it, or use another --state",
                state_dir.display()
            );
        }
    }
    Ok(())
}

/// The embedded backend: engine, tables, buckets and bus under one state directory.
pub struct LocalBackend {
    pub layout: LocalLayout,
    pub engine: LocalEngine,
    pub table: SqliteTable,
    pub objects: DirObjects,
    pub bus: Bus,
    pub ports: Ports,
    /// Serves the tables to this backend's jobs while the backend lives.
    relay: Option<RelayServer>,
}

impl LocalBackend {
    /// Table calls this backend's jobs made through its relay (`None`: it runs none).
    pub fn relay_calls(&self) -> Option<u64> {
        self.relay.as_ref().map(RelayServer::calls)
    }

    /// Attempts this backend's engine started from fork servers.
    pub fn forked_starts(&self) -> u64 {
        self.engine.forked_starts()
    }

    /// Opens (creating) the state directory and starts the engine.
    pub async fn open(state_dir: &Path, options: LocalOptions) -> Result<LocalBackend, BackendError> {
        private_dir(state_dir)?;
        let root = state_dir
            .canonicalize()
            .map_err(|source| BackendError::StateDir { path: state_dir.to_path_buf(), source })?;
        let layout = LocalLayout::new(&root);
        let mut config = EngineConfig::new(&root);
        if let Some(v) = options.vcpus {
            config.vcpus = v;
        }
        if let Some(m) = options.memory_mib {
            config.memory_mib = m;
        }
        config.time_scale = options.time_scale;
        config.path_prefix = options.path_prefix.clone();
        if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
            config.path_prefix.push(dir);
        }
        // What batchfan's own job binaries need to find the local backend: set by
        // batchfan for every job, like a job definition's environment, never inherited.
        config.base_env.insert(env::BACKEND.into(), "local".into());
        config.base_env.insert(env::STATE_DIR.into(), root.to_string_lossy().into_owned());
        config.pass_env = options.pass_env.clone();
        config.keep_workdirs = options.keep_workdirs;
        let table = SqliteTable::open(&layout.tables())?;
        // Jobs reach the tables through this process, which holds them open.
        let relay = match RelayServer::start(&layout.relay(), table.clone()) {
            Ok(relay) => relay,
            Err(e) => {
                tracing::warn!(
                    "no table relay in {} ({e}): jobs open the tables themselves",
                    layout.relay().display()
                );
                None
            }
        };
        if let Some(relay) = &relay {
            config.base_env.insert(env::TABLE_SOCKET.into(), relay.path().to_string_lossy().into_owned());
        }
        let engine = LocalEngine::open(config).await?;
        let objects = DirObjects::new(layout.buckets());
        let bus = Bus::open(&layout.bus(), BusConfig::default()).await?;
        let ports = Ports {
            kind: BackendKind::Local,
            batch: Arc::new(engine.clone()),
            table: Arc::new(table.clone()),
            objects: Arc::new(objects.clone()),
            topic: Arc::new(bus.clone()),
            logs: Arc::new(FileLogTail),
        };
        Ok(LocalBackend { layout, engine, table, objects, bus, ports, relay })
    }
}
