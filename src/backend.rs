//! Assembling the ports for a backend: the embedded local backend (the
//! default) and the AWS backend ([`aws_ports`] at an [`AwsTarget`]). Jobs
//! take theirs in [`crate::runtime`].
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
    aws::{self, AwsSettings},
    engine::{EngineConfig, EngineError, LocalEngine},
    env,
    error::PortError,
    objects::dir::DirObjects,
    run::{plan_topic, BackendKind, FileLogTail, Ports},
    spec::PipelineSpec,
    table::sqlite::SqliteTable,
    topic::{
        bus::{Bus, BusConfig},
        routes::Routed,
    },
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

/// Where a pipeline is deployed on AWS: the names `--backend aws` and the
/// dispatchers use over the spec's (each from a flag or its `BATCHFAN_*` env var).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsTarget {
    /// AWS region; `None`: the SDK's (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// batchfan's DynamoDB table (`BATCHFAN_TABLE`; default: the spec's `storage.table`).
    pub table: Option<String>,
    /// The run bucket (`BATCHFAN_BUCKET`; default: the spec's `storage.bucket`).
    pub bucket: Option<String>,
    /// The Batch job queue (`BATCHFAN_JOB_QUEUE`).
    pub job_queue: Option<String>,
    /// Job definitions are `{prefix}{stage|aggregation|cleanup|barrier}` (`BATCHFAN_JOB_DEFINITION_PREFIX`).
    pub job_definition_prefix: Option<String>,
    /// The plan topic's ARN (`BATCHFAN_PLAN_TOPIC_ARN`).
    pub plan_topic_arn: Option<String>,
    /// The alerts topic's ARN (`BATCHFAN_ALERTS_TOPIC_ARN`).
    pub alerts_topic_arn: Option<String>,
}

impl AwsTarget {
    /// The target's names over the spec's: table, bucket, queue, job definition prefix.
    pub fn apply(&self, spec: &mut PipelineSpec) {
        if let Some(t) = &self.table {
            spec.storage.table = t.clone();
        }
        if let Some(b) = &self.bucket {
            spec.storage.bucket = b.clone();
        }
        if let Some(q) = &self.job_queue {
            spec.job_queue = q.clone();
        }
        if let Some(p) = &self.job_definition_prefix {
            spec.job_definition_prefix = p.clone();
        }
    }

    /// Routes the pipeline's topic names (`{pipeline}-plan`, the spec's
    /// alerts topic) to the target's ARNs in front of `ports.topic`.
    pub fn route_topics(&self, spec: &PipelineSpec, ports: &mut Ports) {
        let mut routed = Routed::new(ports.topic.clone());
        if let Some(arn) = &self.plan_topic_arn {
            routed = routed.route(plan_topic(&spec.name), arn.clone());
        }
        if let Some(arn) = &self.alerts_topic_arn {
            routed = routed.route(spec.alerts.topic.clone(), arn.clone());
        }
        ports.topic = Arc::new(routed);
    }

    /// The names a run driven from here needs, each missing one named with
    /// its flag and env var.
    pub fn require_for_run(&self) -> Result<(), String> {
        let missing: Vec<String> = [
            (self.job_queue.is_none(), "--job-queue", env::JOB_QUEUE),
            (self.job_definition_prefix.is_none(), "--job-definition-prefix", env::JOB_DEFINITION_PREFIX),
            (self.plan_topic_arn.is_none(), "--plan-topic-arn", env::PLAN_TOPIC_ARN),
            (self.alerts_topic_arn.is_none(), "--alerts-topic-arn", env::ALERTS_TOPIC_ARN),
        ]
        .into_iter()
        .filter(|(missing, _, _)| *missing)
        .map(|(_, flag, var)| format!("{flag} (or {var})"))
        .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "--backend aws needs where the pipeline is deployed: pass {}; the pipeline's Terraform module outputs each",
            missing.join(", ")
        ))
    }
}

/// Every port on AWS, on `clients`.
pub fn ports_on_aws(clients: &aws::AwsClients) -> Ports {
    Ports {
        kind: BackendKind::Aws,
        batch: Arc::new(clients.batch()),
        table: Arc::new(clients.table()),
        objects: Arc::new(clients.objects()),
        topic: Arc::new(clients.topic()),
        logs: Arc::new(clients.logs()),
    }
}

/// Every port on AWS for `spec` (if given) at `target`: the adapters on the
/// SDK's configuration, topics routed to the target's ARNs; and the clients
/// behind them (for their API-call tally).
pub async fn aws_ports(
    target: &AwsTarget,
    spec: Option<&PipelineSpec>,
) -> Result<(Ports, aws::AwsClients), PortError> {
    let settings = AwsSettings { region: target.region.clone(), ..AwsSettings::default() };
    let clients = aws::connect(settings).await?;
    let mut ports = ports_on_aws(&clients);
    if let Some(spec) = spec {
        target.route_topics(spec, &mut ports);
    }
    Ok((ports, clients))
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
}

impl LocalBackend {
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
