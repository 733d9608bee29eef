//! What a retry attempt runs: pure, from which children already stored a result.
//!
//! A child of stage k is done when its result is stored (a child writes its
//! result last, after its output). A retry reruns, per stage, the children not
//! done and what depends on them: with `N_TO_N` child i of stage k+1 depends on
//! child i of stage k, so `rerun(k+1) = rerun(k) ∪ not_done(k+1)`; with
//! `SEQUENTIAL` child i depends on child i-1, so a stage reruns every child from
//! the first one it must rerun.
//!
//! Reruns are packed into arrays of at most `max_array_size` children; child
//! `a` of shard j of stage k runs global index `rerun(k)[first + a]` (the list
//! is stored in the table, [`super::retry`]). Stage k+1's shard waits `N_TO_N`
//! on stage k's when both stages rerun the same children, else on all of stage
//! k's shards.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{
    batch::{DependencyKind, MAX_DEPENDENCIES},
    env,
    graph::{self, GraphError, JobGraph, Node, NodeDep, Role},
    spec::{PipelineSpec, StageDependency},
};

/// One array (or plain job) of a retry attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryShard {
    /// Its job name: `{pipeline}-{run}_a{attempt}-{stage}-{shard}`.
    pub name: String,
    /// Stage number (0-based).
    pub stage: usize,
    /// Position of its child 0 in the stage's rerun list.
    pub first: u64,
    /// Children in it.
    pub size: u64,
}

/// A retry attempt's plan, kept in the run record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPlan {
    pub attempt: u32,
    /// Children rerun per stage, in stage order.
    pub reruns: Vec<u64>,
    /// Every array of the attempt, stage by stage.
    pub shards: Vec<RetryShard>,
    /// Per stage, the children it reruns as half-open ranges of global
    /// indices (the rerun lists in short, for the status page); `None` when
    /// more than [`MAX_RANGES_IN_RECORD`] ranges (the record stays small):
    /// then only the table's rerun lists map positions to children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<Vec<(u64, u64)>>>,
}

/// Most rerun ranges a [`RetryPlan`] keeps in the run record.
pub const MAX_RANGES_IN_RECORD: usize = 1000;

impl RetryPlan {
    /// The global index of each child of shard `shard`, position by position (`None`: not kept, see `ranges`).
    pub fn globals(&self, shard: &RetryShard) -> Option<Vec<u64>> {
        let ranges = self.ranges.as_ref()?.get(shard.stage)?;
        let all = ranges.iter().flat_map(|&(a, b)| a..b);
        Some(all.skip(shard.first as usize).take(shard.size as usize).collect())
    }
}

/// Ascending indices as half-open ranges.
pub fn to_ranges(list: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &i in list {
        match out.last_mut() {
            Some(last) if last.1 == i => last.1 = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

/// The prefix of every job name of `attempt` of a run: attempt 1 keeps the
/// names it always had (`{pipeline}-{run}-`), attempt n is `{pipeline}-{run}_a{n}-`,
/// so that listing one attempt's jobs by name (`prefix*`) never finds another's.
pub fn job_prefix(pipeline: &str, run_id: &str, attempt: u32) -> String {
    if attempt <= 1 {
        format!("{pipeline}-{run_id}-")
    } else {
        format!("{pipeline}-{run_id}_a{attempt}-")
    }
}

/// Per stage, the global child indices a retry runs, ascending.
pub fn reruns(spec: &PipelineSpec, children: u64, done: &[BTreeSet<u64>]) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::with_capacity(spec.stages.len());
    for (k, stage) in spec.stages.iter().enumerate() {
        let empty = BTreeSet::new();
        let done_k = done.get(k).unwrap_or(&empty);
        let mut set: BTreeSet<u64> = (0..children).filter(|i| !done_k.contains(i)).collect();
        if let Some(prev) = out.last() {
            set.extend(prev.iter().copied());
        }
        if stage.dependency == StageDependency::Sequential {
            if let Some(&from) = set.iter().next() {
                set = (from..children).collect();
            }
        }
        out.push(set.into_iter().collect());
    }
    out
}

/// The plan of `attempt`: the reruns packed into arrays.
pub fn plan(spec: &PipelineSpec, run_id: &str, attempt: u32, reruns: &[Vec<u64>]) -> RetryPlan {
    let per = u64::from(spec.max_array_size.max(1));
    let prefix = job_prefix(&spec.name, run_id, attempt);
    let mut shards = Vec::new();
    for (k, list) in reruns.iter().enumerate() {
        let n = list.len() as u64;
        for (j, first) in (0..n).step_by(per as usize).enumerate() {
            let name = format!("{prefix}{}-{j}", spec.stages[k].name);
            shards.push(RetryShard { name, stage: k, first, size: per.min(n - first) });
        }
    }
    let ranges: Vec<Vec<(u64, u64)>> = reruns.iter().map(|r| to_ranges(r)).collect();
    let ranges = (ranges.iter().map(Vec::len).sum::<usize>() <= MAX_RANGES_IN_RECORD).then_some(ranges);
    RetryPlan { attempt, reruns: reruns.iter().map(|r| r.len() as u64).collect(), shards, ranges }
}

/// The job graph of a retry attempt: its arrays, then the aggregation and the cleanup.
pub fn graph(spec: &PipelineSpec, run_id: &str, plan: &RetryPlan) -> Result<JobGraph, GraphError> {
    let prefix = job_prefix(&spec.name, run_id, plan.attempt);
    let mut nodes: Vec<Node> = Vec::new();
    let mut prev: Vec<&RetryShard> = Vec::new();
    for (k, stage) in spec.stages.iter().enumerate() {
        let cur: Vec<&RetryShard> = plan.shards.iter().filter(|s| s.stage == k).collect();
        if cur.is_empty() {
            continue;
        }
        for (j, shard) in cur.iter().enumerate() {
            let array = shard.size >= 2;
            let mut deps = Vec::new();
            // Rerun sets only grow stage by stage: the same count is the same children.
            let in_step = k > 0 && plan.reruns[k] == plan.reruns[k - 1] && prev.len() == cur.len();
            match stage.dependency {
                StageDependency::NToN if in_step && prev[j].size == shard.size => {
                    let kind = if array { DependencyKind::NToN } else { DependencyKind::Standard };
                    deps.push(NodeDep { node: Some(prev[j].name.clone()), kind });
                }
                StageDependency::Sequential if j > 0 => {
                    deps.push(standard(&cur[j - 1].name));
                }
                _ => deps.extend(prev.iter().map(|p| standard(&p.name))),
            }
            if stage.dependency == StageDependency::Sequential && array {
                deps.push(NodeDep { node: None, kind: DependencyKind::Sequential });
            }
            let role =
                Role::Stage { stage: k, shard: j as u64, first_child: shard.first, children: shard.size };
            let size = match array {
                true => Some(u32::try_from(shard.size).map_err(|_| {
                    GraphError::Limit(format!(
                        "retry shard {} of {} children is over an array's size",
                        shard.name, shard.size
                    ))
                })?),
                false => None,
            };
            nodes.push(node(
                spec,
                run_id,
                plan.attempt,
                shard.name.clone(),
                role,
                size,
                deps,
                stage.job.clone(),
            ));
        }
        prev = cur;
    }
    let agg_deps: Vec<NodeDep> = prev.iter().map(|p| standard(&p.name)).collect();
    let agg = format!("{prefix}aggregate");
    nodes.push(node(
        spec,
        run_id,
        plan.attempt,
        agg.clone(),
        Role::Aggregation,
        None,
        agg_deps,
        spec.aggregation.clone(),
    ));
    let cleanup = format!("{prefix}cleanup");
    nodes.push(node(
        spec,
        run_id,
        plan.attempt,
        cleanup,
        Role::Cleanup,
        None,
        vec![standard(&agg)],
        spec.cleanup.clone(),
    ));
    if let Some(n) = nodes.iter().find(|n| n.depends_on.len() > MAX_DEPENDENCIES) {
        return Err(GraphError::Limit(format!(
            "retry job {} would wait on {} jobs, over the AWS limit of {MAX_DEPENDENCIES}: this retry reruns too many \
             children ({:?} per stage); start the run again with --fresh",
            n.name,
            n.depends_on.len(),
            plan.reruns
        )));
    }
    Ok(JobGraph { nodes })
}

fn standard(name: &str) -> NodeDep {
    NodeDep { node: Some(name.to_owned()), kind: DependencyKind::Standard }
}

#[allow(clippy::too_many_arguments)]
fn node(
    spec: &PipelineSpec,
    run_id: &str,
    attempt: u32,
    name: String,
    role: Role,
    array_size: Option<u32>,
    depends_on: Vec<NodeDep>,
    job: crate::spec::JobSpec,
) -> Node {
    let mut env = graph::node_env(spec, run_id, &role, &job);
    env.insert(env::RERUN.into(), attempt.to_string());
    Node { name, role, array_size, depends_on, job, env }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(deps: &[&str]) -> PipelineSpec {
        let mut text = String::from("name = \"p\"\nmax_array_size = 3\n[planner]\nstrategy = \"range\"\n");
        for (i, d) in deps.iter().enumerate() {
            text.push_str(&format!("[[stages]]\nname = \"s{i}\"\ncommand = [\"x\"]\ndependency = \"{d}\"\n"));
        }
        crate::spec::load_str(&text, "p.toml", std::path::Path::new(".")).unwrap()
    }

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn n_to_n_reruns_what_failed_and_what_depends_on_it() {
        let s = spec(&["n_to_n", "n_to_n"]);
        // Stage 0: child 2 failed; stage 1: child 4 failed, child 2 never ran.
        let r = reruns(&s, 6, &[set(&[0, 1, 3, 4, 5]), set(&[0, 1, 3, 5])]);
        assert_eq!(r, vec![vec![2], vec![2, 4]]);
        let p = plan(&s, "r1", 2, &r);
        assert_eq!(p.reruns, [1, 2]);
        let g = graph(&s, "r1", &p).unwrap();
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["p-r1_a2-s0-0", "p-r1_a2-s1-0", "p-r1_a2-aggregate", "p-r1_a2-cleanup"]);
        assert_eq!(g.nodes[0].array_size, None);
        assert_eq!(g.nodes[1].array_size, Some(2));
        assert_eq!(g.nodes[1].depends_on, [standard("p-r1_a2-s0-0")]);
        assert_eq!(g.nodes[1].env[env::RERUN], "2");
    }

    #[test]
    fn the_same_reruns_chain_n_to_n_and_shard_by_max_array_size() {
        let s = spec(&["n_to_n", "n_to_n"]);
        let r = reruns(&s, 8, &[set(&[0]), set(&[0])]);
        assert_eq!(r[0], (1..8).collect::<Vec<_>>());
        let p = plan(&s, "r1", 3, &r);
        let sizes: Vec<u64> = p.shards.iter().map(|s| s.size).collect();
        assert_eq!(sizes, [3, 3, 1, 3, 3, 1]);
        let g = graph(&s, "r1", &p).unwrap();
        assert_eq!(g.nodes[3].depends_on[0].kind, DependencyKind::NToN);
        assert_eq!(
            g.nodes[5].depends_on[0].kind,
            DependencyKind::Standard,
            "a one-child shard is a plain job"
        );
        assert_eq!(g.nodes[6].depends_on.len(), 3, "the aggregation waits on the last stage's shards");
    }

    #[test]
    fn sequential_stages_rerun_from_the_first_child_that_must_run() {
        let s = spec(&["n_to_n", "sequential"]);
        let r = reruns(&s, 5, &[set(&[0, 1, 2, 3, 4]), set(&[0, 1, 3, 4])]);
        assert_eq!(r, vec![vec![], vec![2, 3, 4]]);
        let g = graph(&s, "r1", &plan(&s, "r1", 2, &r)).unwrap();
        assert_eq!(g.nodes[0].depends_on, [NodeDep { node: None, kind: DependencyKind::Sequential }]);
    }

    #[test]
    fn a_failed_aggregation_reruns_no_child() {
        let s = spec(&["n_to_n"]);
        let r = reruns(&s, 3, &[set(&[0, 1, 2])]);
        let g = graph(&s, "r1", &plan(&s, "r1", 2, &r)).unwrap();
        assert_eq!(g.nodes.len(), 2);
        assert!(g.nodes[0].depends_on.is_empty());
    }
}
