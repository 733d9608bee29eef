//! [`JobContext`]: a job's view of its run, over the Table and Objects ports.

use std::{future::Future, path::Path, sync::Arc};

use tokio::sync::OnceCell;

use super::{JobEnv, JobError};
use crate::{
    aws::{self, AwsSettings},
    backend::LocalLayout,
    objects::{dir::DirObjects, ObjectRef, Objects},
    plan::WorkItem,
    run::{layout, BackendKind, ChildResult, RunRecord, RunStore},
    table::{relay::RelayTable, sqlite::SqliteTable, Table},
};

/// The start of the stderr line an AWS job ends with: its API calls as JSON.
pub const API_CALLS_LINE: &str = "batchfan: api_calls ";

fn report_calls(calls: Option<&crate::aws::CallCounter>) {
    if let Some(calls) = calls {
        let tally = serde_json::to_string(&calls.snapshot()).unwrap_or_default();
        eprintln!("{API_CALLS_LINE}{tally}");
    }
}

/// The ports a job process uses: Table and Objects, and on AWS the counter
/// of the API calls they make.
pub type JobPorts = (Arc<dyn Table>, Arc<dyn Objects>, Option<aws::CallCounter>);

/// The Table and Objects ports a job process uses: SQLite and directories
/// under the state directory locally; DynamoDB and S3 on AWS (the SDK's
/// configuration: the job role's credentials, `AWS_REGION`, endpoint overrides).
pub async fn job_ports(env: &JobEnv) -> Result<JobPorts, JobError> {
    match env.backend {
        BackendKind::Local => {
            let root = env.state_dir.as_deref().unwrap_or(Path::new(".batchfan"));
            let layout = LocalLayout::new(root);
            let direct = SqliteTable::open(&layout.tables())?;
            // Used only without the service's relay: the service holds batchfan's
            // table open and checkpoints it.
            direct.leave_checkpoints_to_holder(&env.table);
            let table: Arc<dyn Table> = match &env.table_socket {
                Some(socket) => Arc::new(RelayTable::new(socket, direct)),
                None => Arc::new(direct),
            };
            Ok((table, Arc::new(DirObjects::new(layout.buckets())), None))
        }
        BackendKind::Aws => {
            let clients = aws::connect(AwsSettings::default()).await?;
            Ok((Arc::new(clients.table()), Arc::new(clients.objects()), Some(clients.call_counter())))
        }
    }
}

/// Everything a running job needs: its pointers and the ports to follow them.
pub struct JobContext {
    pub env: JobEnv,
    table: Arc<dyn Table>,
    objects: Arc<dyn Objects>,
    record: OnceCell<RunRecord>,
    calls: Option<crate::aws::CallCounter>,
}

impl JobContext {
    pub fn new(env: JobEnv, table: Arc<dyn Table>, objects: Arc<dyn Objects>) -> Self {
        JobContext { env, table, objects, record: OnceCell::new(), calls: None }
    }

    /// Builds the context for the backend the environment names.
    pub async fn connect(mut env: JobEnv) -> Result<JobContext, JobError> {
        let (table, objects, calls) = job_ports(&env).await?;
        if let (Some(attempt), Some(stage), "stage") = (env.rerun, env.stage.clone(), env.role.as_str()) {
            // A retry's child: its global index is stored at its position in the rerun list.
            let position = env.index();
            let index = crate::run::retry::global_index(table.as_ref(), &env.table, &env.run_id, attempt, &stage, position)
                .await?
                .ok_or_else(|| {
                    JobError::permanent(format!(
                        "no rerun entry {position} of stage {stage} for attempt {attempt} of run {}: was the run retried again or cleaned up?",
                        env.run_id
                    ))
                })?;
            (env.index_offset, env.array_index) = (index, 0);
        }
        Ok(JobContext { calls, ..JobContext::new(env, table, objects) })
    }

    /// On AWS, prints the API calls the job made, by kind, as one stderr
    /// line (`batchfan: api_calls {json}`, in the job's CloudWatch log).
    pub fn report_api_calls(&self) {
        report_calls(self.calls.as_ref());
    }

    /// The child's global index.
    pub fn index(&self) -> u64 {
        self.env.index()
    }

    pub fn table(&self) -> &dyn Table {
        self.table.as_ref()
    }

    pub fn objects(&self) -> &dyn Objects {
        self.objects.as_ref()
    }

    fn store(&self) -> RunStore<'_> {
        RunStore::new(self.table.as_ref(), &self.env.table).keeping_scratch(self.env.scratch_days)
    }

    /// The run record (read once).
    pub async fn run(&self) -> Result<&RunRecord, JobError> {
        self.record
            .get_or_try_init(|| async {
                self.store().get(&self.env.run_id).await?.ok_or_else(|| {
                    JobError::permanent(format!(
                        "run {} is not in table {}: was it cleaned up already?",
                        self.env.run_id, self.env.table
                    ))
                })
            })
            .await
    }

    /// A run parameter (`--param name=value`).
    pub async fn param(&self, name: &str) -> Result<Option<String>, JobError> {
        Ok(self.run().await?.trigger.params.get(name).cloned())
    }

    /// This stage's name (an error outside a stage).
    pub fn stage(&self) -> Result<&str, JobError> {
        self.env
            .stage
            .as_deref()
            .ok_or_else(|| JobError::permanent("BATCHFAN_STAGE is not set: this job is not a stage child"))
    }

    /// This child's work item: computed from its index for a `range` run
    /// ([`crate::env::RANGE`]), read from the table otherwise.
    pub async fn work_item(&self) -> Result<WorkItem, JobError> {
        let item = match self.env.range {
            Some((units, per)) => crate::plan::range_item(units, per, self.index()),
            None => self.store().work_item(&self.env.run_id, self.index()).await?,
        };
        item.ok_or_else(|| {
            JobError::permanent(format!(
                "no work item for run {} index {}: the planner did not plan it, or it expired ([storage] scratch_days)",
                self.env.run_id,
                self.index()
            ))
        })
    }

    /// The run's input object, if it has one: from the job's environment
    /// ([`crate::env::INPUT`]), else from the run record.
    pub async fn input(&self) -> Result<Option<ObjectRef>, JobError> {
        match &self.env.input {
            Some(input) => Ok(Some(input.clone())),
            None => Ok(self.run().await?.trigger.input.clone()),
        }
    }

    /// The run's stages in order: from the job's environment
    /// ([`crate::env::STAGES`]), else from the run record.
    pub async fn stages(&self) -> Result<Vec<String>, JobError> {
        if !self.env.stages.is_empty() {
            return Ok(self.env.stages.clone());
        }
        Ok(self.run().await?.stages.clone())
    }

    /// The stage before this child's (an error in the first stage or outside a stage).
    pub async fn previous_stage(&self) -> Result<String, JobError> {
        let stage = self.stage()?;
        let stages = self.stages().await?;
        let pos = stages.iter().position(|s| s == stage);
        pos.and_then(|p| p.checked_sub(1)).and_then(|p| stages.get(p)).cloned().ok_or_else(|| {
            JobError::permanent(format!(
                "stage {stage} has no previous stage (stages: {}): put it after another",
                stages.join(", ")
            ))
        })
    }

    /// The result child `index` of `stage` stored.
    pub async fn result_of(&self, stage: &str, index: u64) -> Result<Option<ChildResult>, JobError> {
        Ok(self.store().result(&self.env.run_id, stage, index).await?)
    }

    /// Stores this child's result for this stage.
    pub async fn put_result(&self, result: &ChildResult) -> Result<(), JobError> {
        let stage = self.stage()?.to_owned();
        Ok(self.store().put_result(&self.env.run_id, &stage, self.index(), result).await?)
    }

    /// This child's output object.
    pub fn output_ref(&self) -> Result<ObjectRef, JobError> {
        Ok(layout::child_output(
            &self.env.bucket,
            &self.env.pipeline,
            &self.env.run_id,
            self.stage()?,
            self.index(),
        ))
    }

    /// This child's rejects object.
    pub fn rejects_ref(&self) -> Result<ObjectRef, JobError> {
        Ok(layout::child_rejects(
            &self.env.bucket,
            &self.env.pipeline,
            &self.env.run_id,
            self.stage()?,
            self.index(),
        ))
    }
}

/// Runs a job body and exits the process with its exit code: 0, 75 or 1.
///
/// On the local engine, the array children of a program built on `run_job`
/// may start as forks of a *fork server*: the program started once more with
/// `BATCHFAN_FORK_SERVER=1`, stopped here before any job code runs. Each child
/// is still a process of its own, with its attempt's environment, directory,
/// group and limits. So keep `main` to calling `run_job`: code before it runs
/// once per server, not per child, and without batchfan's variables.
/// `BATCHFAN_FORK_SERVERS=off` in the engine's environment turns this off.
pub fn run_job<F, Fut>(body: F) -> !
where
    F: FnOnce(JobContext) -> Fut,
    Fut: Future<Output = Result<(), JobError>>,
{
    // Started as a fork server, this returns only in each forked child.
    crate::engine::forks::job::serve_if_asked();
    let code = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(async {
            let ctx = match JobEnv::from_env() {
                Ok(env) => JobContext::connect(env).await,
                Err(e) => Err(e),
            };
            let result = match ctx {
                Ok(ctx) => {
                    let calls = ctx.calls.clone();
                    let result = body(ctx).await;
                    report_calls(calls.as_ref());
                    result
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {}", e.message);
                    e.exit_code()
                }
            }
        }),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            crate::env::EXIT_RETRYABLE
        }
    };
    std::process::exit(code)
}
