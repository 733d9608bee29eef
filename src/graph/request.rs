//! Turning a [`Node`] into the SubmitJob request for it.

use std::collections::BTreeMap;

use super::{GraphError, Node, Role};
use crate::{
    batch::{ContainerSpec, JobDependency, SubmitJob},
    env,
    spec::PipelineSpec,
};

/// Tag naming the pipeline.
pub const TAG_PIPELINE: &str = "batchfan:pipeline";
/// Tag naming the run.
pub const TAG_RUN: &str = "batchfan:run";
/// Tag naming the role (`stage`, `aggregation`, `cleanup`, `barrier`).
pub const TAG_ROLE: &str = "batchfan:role";
/// Tag naming the stage (stage jobs only).
pub const TAG_STAGE: &str = "batchfan:stage";

impl Node {
    /// The job definition this node runs: `{prefix}{stage}`, `{prefix}aggregation`,
    /// `{prefix}cleanup` or `{prefix}barrier`, the prefix being the spec's
    /// `job_definition_prefix` (`{pipeline}-` unless the deployment says otherwise).
    pub fn job_definition(&self, spec: &PipelineSpec) -> String {
        let what = match &self.role {
            Role::Stage { stage, .. } => spec.stages.get(*stage).map_or("stage", |s| s.name.as_str()),
            other => other.kind(),
        };
        crate::deploy::job_definition_name(&spec.job_definition_prefix, what)
    }

    /// The SubmitJob request for this node; `resolve` maps a node name to the
    /// job id it was submitted (or found) with.
    pub fn to_submit(
        &self,
        spec: &PipelineSpec,
        resolve: impl Fn(&str) -> Option<String>,
    ) -> Result<SubmitJob, GraphError> {
        let mut depends_on = Vec::with_capacity(self.depends_on.len());
        for dep in &self.depends_on {
            let job_id = match &dep.node {
                Some(name) => Some(resolve(name).ok_or_else(|| GraphError::Unresolved {
                    job: self.name.clone(),
                    dependency: name.clone(),
                })?),
                None => None,
            };
            depends_on.push(JobDependency { job_id, kind: dep.kind });
        }
        let mut tags = BTreeMap::new();
        tags.insert(TAG_PIPELINE.to_owned(), spec.name.clone());
        if let Some(run) = self.env.get(env::RUN) {
            tags.insert(TAG_RUN.to_owned(), run.clone());
        }
        tags.insert(TAG_ROLE.to_owned(), self.role.kind().to_owned());
        if let Role::Stage { stage, .. } = &self.role {
            if let Some(s) = spec.stages.get(*stage) {
                tags.insert(TAG_STAGE.to_owned(), s.name.clone());
            }
        }
        Ok(SubmitJob {
            job_name: self.name.clone(),
            job_queue: spec.job_queue.clone(),
            job_definition: self.job_definition(spec),
            array_size: self.array_size,
            depends_on,
            container: ContainerSpec {
                image: self.job.image.clone(),
                command: self.job.command.clone(),
                environment: self.env.clone(),
                vcpus: self.job.vcpus,
                memory_mib: self.job.memory_mib,
            },
            retry_strategy: self.job.retry.clone(),
            timeout_seconds: self.job.timeout_secs,
            tags,
        })
    }
}
