//! Building the job graph of a run: one array job per (stage, shard), chained
//! N_TO_N or SEQUENTIAL, then aggregation and cleanup, with barrier jobs
//! wherever a job would wait on more than 20 others.
//!
//! ```
//! use batchfan::{graph, plan::Sizing};
//! let text = "name = \"p\"\n[planner]\nstrategy = \"range\"\n\
//!             [[stages]]\nname = \"a\"\ncommand = [\"a\"]\n\
//!             [[stages]]\nname = \"b\"\ncommand = [\"b\"]\n";
//! let spec = batchfan::spec::load_str(text, "p.toml", std::path::Path::new(".")).unwrap();
//! // 25,000 children: three arrays per stage, b's shard j waits N_TO_N on a's shard j.
//! let g = graph::build(&spec, "r1", &Sizing::new(25_000, 1, spec.max_array_size)).unwrap();
//! let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
//! assert_eq!(names, ["p-r1-a-0", "p-r1-a-1", "p-r1-a-2", "p-r1-b-0", "p-r1-b-1", "p-r1-b-2",
//!                    "p-r1-aggregate", "p-r1-cleanup"]);
//! assert!(graph::check_limits(&spec, &g).is_empty());
//! let request = g.nodes[3].to_submit(&spec, |name| Some(format!("id-of-{name}"))).unwrap();
//! assert_eq!(request.depends_on[0].job_id.as_deref(), Some("id-of-p-r1-a-0"));
//! ```

use std::collections::BTreeMap;

use super::{JobGraph, Node, NodeDep, Role};
use crate::{
    batch::{check_job_name, DependencyKind, MAX_DEPENDENCIES},
    plan::Sizing,
    spec::{
        overrides::{job_env, JobPlace},
        JobSpec, PipelineSpec, StageDependency,
    },
};

/// What a barrier job runs.
pub const BARRIER_COMMAND: [&str; 3] = ["batchfan", "job", "barrier"];

/// Errors building a graph or a request from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The graph would break an AWS limit, or the sizing does not fit the rules.
    #[error("{0}")]
    Limit(String),
    /// A job name would not be valid for AWS (e.g. a run id with bad characters).
    #[error("{0}")]
    Name(String),
    /// A dependency has no job id yet: it must be submitted (or found by name) first.
    #[error("job {job} depends on {dependency}, which has no job id: submit {dependency} first")]
    Unresolved { job: String, dependency: String },
}

impl Role {
    /// `stage`, `aggregation`, `cleanup` or `barrier`: the `BATCHFAN_ROLE` value and `batchfan:role` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Role::Stage { .. } => "stage",
            Role::Barrier { .. } => "barrier",
            Role::Aggregation => "aggregation",
            Role::Cleanup => "cleanup",
        }
    }
}

/// The environment of a node: the job's own env plus the run's pointers
/// (never data), as [`crate::spec::overrides::job_env`] makes it.
pub fn node_env(spec: &PipelineSpec, run_id: &str, role: &Role, job: &JobSpec) -> BTreeMap<String, String> {
    let place = match role {
        Role::Stage { stage, first_child, .. } => {
            JobPlace::Stage { stage: *stage, first_child: *first_child }
        }
        other => JobPlace::Other(other.kind()),
    };
    job_env(spec, run_id, place, job)
}

/// The barrier's job: the aggregation's, running [`BARRIER_COMMAND`].
pub fn barrier_job(spec: &PipelineSpec) -> JobSpec {
    JobSpec { command: BARRIER_COMMAND.iter().map(|s| (*s).to_owned()).collect(), ..spec.aggregation.clone() }
}

/// The deterministic name of a run's job: `{pipeline}-{run}-{suffix}`, where the
/// suffix is `{stage}-{shard}`, `aggregate`, `cleanup` or `barrier-{level}-{index}`.
pub fn job_name(pipeline: &str, run_id: &str, suffix: &str) -> String {
    format!("{pipeline}-{run_id}-{suffix}")
}

struct Builder<'a> {
    spec: &'a PipelineSpec,
    run_id: &'a str,
    nodes: Vec<Node>,
    /// Next barrier index per level.
    barriers: Vec<u64>,
}

impl Builder<'_> {
    fn name(&self, suffix: &str) -> String {
        job_name(&self.spec.name, self.run_id, suffix)
    }

    fn push(
        &mut self,
        name: String,
        role: Role,
        array_size: Option<u32>,
        depends_on: Vec<NodeDep>,
        job: JobSpec,
    ) {
        let env = node_env(self.spec, self.run_id, &role, &job);
        self.nodes.push(Node { name, role, array_size, depends_on, job, env });
    }

    /// `fixed` plus a Standard dependency on each of `targets`, with barrier
    /// levels inserted until the total is at most 20.
    fn fan_in(&mut self, mut fixed: Vec<NodeDep>, mut targets: Vec<String>) -> Vec<NodeDep> {
        let budget = MAX_DEPENDENCIES.saturating_sub(fixed.len()).max(1);
        let mut level = 0u32;
        while targets.len() > budget {
            if self.barriers.len() <= level as usize {
                self.barriers.push(0);
            }
            let mut next = Vec::with_capacity(targets.len().div_ceil(MAX_DEPENDENCIES));
            for group in targets.chunks(MAX_DEPENDENCIES) {
                if let [single] = group {
                    next.push(single.clone());
                    continue;
                }
                let index = self.barriers[level as usize];
                self.barriers[level as usize] += 1;
                let name = self.name(&format!("barrier-{level}-{index}"));
                let deps = group.iter().map(|n| standard(n)).collect();
                self.push(name.clone(), Role::Barrier { level, index }, None, deps, barrier_job(self.spec));
                next.push(name);
            }
            targets = next;
            level += 1;
        }
        fixed.extend(targets.iter().map(|n| standard(n)));
        fixed
    }
}

fn standard(name: &str) -> NodeDep {
    NodeDep { node: Some(name.to_owned()), kind: DependencyKind::Standard }
}

/// Builds the job graph of a run: pure, and the same for the same inputs.
pub fn build(spec: &PipelineSpec, run_id: &str, sizing: &Sizing) -> Result<JobGraph, GraphError> {
    let shards: Vec<(u64, std::ops::Range<u64>)> =
        (0..sizing.shards).map(|j| (j, sizing.shard_range(j))).filter(|(_, r)| !r.is_empty()).collect();
    let covered: u64 = shards.iter().map(|(_, r)| r.end - r.start).sum();
    if covered != sizing.children {
        return Err(GraphError::Limit(format!(
            "sizing covers {covered} of its {} children: make it with Sizing::new",
            sizing.children
        )));
    }
    let mut b = Builder { spec, run_id, nodes: Vec::new(), barriers: Vec::new() };
    let mut prev: Vec<String> = Vec::new();
    for (k, stage) in spec.stages.iter().enumerate() {
        let mut cur: Vec<String> = Vec::with_capacity(shards.len());
        for (idx, (j, range)) in shards.iter().enumerate() {
            let children = range.end - range.start;
            let array_size = match u32::try_from(children) {
                Ok(1) => None,
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(GraphError::Limit(format!(
                        "shard {j} has {children} children, far over the AWS limit of 10000: lower max_array_size"
                    )))
                }
            };
            let mut fixed = Vec::new();
            let mut fan = Vec::new();
            match stage.dependency {
                StageDependency::NToN if k > 0 => {
                    let kind =
                        if array_size.is_some() { DependencyKind::NToN } else { DependencyKind::Standard };
                    fixed.push(NodeDep { node: Some(prev[idx].clone()), kind });
                }
                StageDependency::NToN => {}
                StageDependency::Sequential => {
                    if array_size.is_some() {
                        fixed.push(NodeDep { node: None, kind: DependencyKind::Sequential });
                    }
                    if idx > 0 {
                        fixed.push(standard(&cur[idx - 1]));
                    } else {
                        // Later shards wait on shard 0 (through the chain), so it alone waits on the previous stage.
                        fan = prev.clone();
                    }
                }
            }
            let deps = b.fan_in(fixed, fan);
            let name = b.name(&format!("{}-{j}", stage.name));
            let role = Role::Stage { stage: k, shard: *j, first_child: range.start, children };
            b.push(name.clone(), role, array_size, deps, stage.job.clone());
            cur.push(name);
        }
        prev = cur;
    }
    let agg_deps = b.fan_in(Vec::new(), prev);
    let agg = b.name("aggregate");
    b.push(agg.clone(), Role::Aggregation, None, agg_deps, spec.aggregation.clone());
    b.push(b.name("cleanup"), Role::Cleanup, None, vec![standard(&agg)], spec.cleanup.clone());
    for node in &b.nodes {
        check_job_name(&node.name)
            .map_err(|e| GraphError::Name(format!("{} (check the run id {run_id:?})", e.message())))?;
    }
    Ok(JobGraph { nodes: b.nodes })
}
