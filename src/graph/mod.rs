//! The job graph of a run: which jobs to submit, with which dependencies.
//!
//! Pure: built from the spec, the run id and the [`crate::plan::Sizing`]; the
//! submitter turns [`Node`]s into SubmitJob requests in order, resolving
//! dependency names to the job ids it got back (or found by name).

pub mod build;
pub mod limits;
pub mod request;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::{
    build::{build, job_name, node_env, GraphError},
    limits::check_limits,
};
use crate::{batch::DependencyKind, spec::JobSpec};

/// What a node is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// Shard `shard` of stage number `stage` (0-based): global children
    /// `first_child..first_child + children`.
    Stage {
        stage: usize,
        shard: u64,
        first_child: u64,
        children: u64,
    },
    /// A no-op job that waits on up to 20 others, so no job has more than 20 dependencies.
    Barrier {
        level: u32,
        index: u64,
    },
    Aggregation,
    Cleanup,
}

/// A dependency on another node of the graph, by name (`None` for SEQUENTIAL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDep {
    pub node: Option<String>,
    pub kind: DependencyKind,
}

/// One job to submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Deterministic job name, unique in the run: the reconciliation key.
    pub name: String,
    pub role: Role,
    /// `Some(n ≥ 2)` for an array job, `None` for a plain job.
    pub array_size: Option<u32>,
    /// Dependencies on earlier nodes (≤ 20).
    pub depends_on: Vec<NodeDep>,
    pub job: JobSpec,
    /// Environment for this node: the run's pointers (`BATCHFAN_*`) and the job's own env.
    pub env: BTreeMap<String, String>,
}

/// Every job of a run, in submission order (a node only depends on earlier nodes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobGraph {
    pub nodes: Vec<Node>,
}

impl JobGraph {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}
