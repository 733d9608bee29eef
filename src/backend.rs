//! Assembling the ports for a backend: the embedded local backend (the
//! default) and, for jobs, whichever backend their environment names.
//!
//! Local state directory layout:
//!
//! ```text
//! .batchfan/
//!   engine.sqlite, engine.lock   the local Batch engine
//!   logs/                        one file per job attempt
//!   tables/{table}/NN.sqlite     the Table port, hash-sharded by pk (batchfan's records, job tables like Orders)
//!   buckets/{bucket}/{key}       the Objects port
//!   bus.sqlite                   the Topic port (plan and alert topics)
//! ```

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    engine::{EngineConfig, LocalEngine},
    env,
    objects::{dir::DirObjects, Objects},
    run::{BackendKind, FileLogTail, Ports},
    runtime::{JobEnv, JobError},
    table::{sqlite::SqliteTable, Table},
    topic::bus::{Bus, BusConfig},
};

/// Paths inside a local state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLayout {
    pub root: PathBuf,
}

impl LocalLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalLayout { root: root.into() }
    }
    pub fn tables(&self) -> PathBuf {
        self.root.join("tables")
    }
    pub fn buckets(&self) -> PathBuf {
        self.root.join("buckets")
    }
    pub fn bus(&self) -> PathBuf {
        self.root.join("bus.sqlite")
    }
}

/// The ports a job process uses: Table and Objects.
pub type JobPorts = (Arc<dyn Table>, Arc<dyn Objects>);

/// The Table and Objects ports a job process uses.
pub fn job_ports(env: &JobEnv) -> Result<JobPorts, JobError> {
    match env.backend {
        BackendKind::Local => {
            let root = env.state_dir.as_deref().unwrap_or(Path::new(".batchfan"));
            let layout = LocalLayout::new(root);
            let table = SqliteTable::open(&layout.tables())?;
            Ok((Arc::new(table), Arc::new(DirObjects::new(layout.buckets()))))
        }
        BackendKind::Aws => Err(JobError::permanent(
            "the aws backend is not built into this binary yet: run with BATCHFAN_BACKEND=local",
        )),
    }
}

/// Options of the embedded backend.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// vCPU capacity (default: this machine's cores).
    pub vcpus: Option<f64>,
    /// Memory capacity in MiB (default: this machine's memory).
    pub memory_mib: Option<u64>,
    /// Multiplies timeouts and kill grace (tests).
    pub time_scale: f64,
    /// Extra directories searched for job commands, before PATH.
    pub path_prefix: Vec<PathBuf>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions { vcpus: None, memory_mib: None, time_scale: 1.0, path_prefix: Vec::new() }
    }
}

/// The embedded backend: engine, tables, buckets and bus under one state directory.
pub struct LocalBackend {
    pub layout: LocalLayout,
    pub engine: LocalEngine,
    pub table: SqliteTable,
    pub objects: DirObjects,
    pub bus: Bus,
    pub ports: Ports,
}

impl LocalBackend {
    /// Opens (creating) the state directory and starts the engine.
    pub async fn open(state_dir: &Path, options: LocalOptions) -> anyhow::Result<LocalBackend> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| anyhow::anyhow!("cannot create state directory {}: {e}", state_dir.display()))?;
        let root = state_dir.canonicalize()?;
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
        config.base_env.insert(env::BACKEND.into(), "local".into());
        config.base_env.insert(env::STATE_DIR.into(), root.to_string_lossy().into_owned());
        let engine = LocalEngine::open(config).await?;
        let table = SqliteTable::open(&layout.tables())?;
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
        Ok(LocalBackend { layout, engine, table, objects, bus, ports })
    }
}
