//! Where a pipeline runs: `compute` (the AWS compute its jobs are sized for,
//! as the Terraform module's `compute.type`) and `[local]` (what the embedded
//! backend does that AWS cannot: pass chosen host variables to jobs).
//!
//! ```toml
//! compute = "fargate_spot"   # fargate (default), fargate_spot, ec2, spot
//! [local]
//! pass_env = ["AWS_PROFILE"] # host variables the local jobs see; nothing else is inherited
//! ```

use serde::{Deserialize, Serialize};

use super::{
    reader::{Reader, Tab},
    JobSpec, PipelineSpec,
};
use crate::batch::check::fargate_resources;

/// The compute the jobs run on, as the Terraform module's `compute.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compute {
    /// The module's default.
    #[default]
    Fargate,
    FargateSpot,
    Ec2,
    Spot,
}

impl Compute {
    const NAMES: [&'static str; 4] = ["fargate", "fargate_spot", "ec2", "spot"];
    const ALL: [Compute; 4] = [Compute::Fargate, Compute::FargateSpot, Compute::Ec2, Compute::Spot];

    /// Whether jobs run on Fargate, which takes only some vCPU/memory combinations.
    pub fn is_fargate(self) -> bool {
        matches!(self, Compute::Fargate | Compute::FargateSpot)
    }
}

/// `[local]`: what only the embedded backend uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocalSettings {
    /// Host environment variables passed on to local jobs (a job sees nothing else of the host's).
    #[serde(default)]
    pub pass_env: Vec<String>,
}

/// Reads `compute` (default fargate).
pub(crate) fn read_compute(r: &mut Reader<'_>, root: &Tab<'_>) -> Compute {
    r.choice(root, "compute", &Compute::NAMES, true).map_or(Compute::default(), |c| Compute::ALL[c.v])
}

/// Reads `[local]`.
pub(crate) fn read_local(r: &mut Reader<'_>, root: &Tab<'_>) -> LocalSettings {
    let Some(t) = r.table(root, "local") else { return LocalSettings::default() };
    r.check_keys(&t, &["pass_env"]);
    let mut local = LocalSettings::default();
    if let Some(names) = r.str_list(&t, "pass_env") {
        for name in names.v {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                r.error(
                    &names.span,
                    format!("pass_env {name:?} is not a variable name: use letters, digits and '_', e.g. \"AWS_PROFILE\""),
                );
            } else if name.starts_with("AWS_BATCH_") {
                r.error(
                    &names.span,
                    format!("pass_env {name:?} is set by AWS Batch (and the local engine) for each job: remove it"),
                );
            } else {
                local.pass_env.push(name);
            }
        }
    }
    local
}

impl PipelineSpec {
    /// The jobs whose vCPU/memory AWS would refuse on this spec's compute, each
    /// as `job: problem and the nearest valid combination` (empty off Fargate).
    pub fn compute_problems(&self) -> Vec<String> {
        if !self.compute.is_fargate() {
            return Vec::new();
        }
        let jobs = self
            .stages
            .iter()
            .map(|s| (format!("stage {}", s.name), &s.job))
            .chain([("aggregation".to_owned(), &self.aggregation), ("cleanup".to_owned(), &self.cleanup)]);
        jobs.filter_map(|(name, job): (String, &JobSpec)| {
            fargate_resources(job.vcpus, job.memory_mib).err().map(|e| format!("{name}: {}", e.message()))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const BASE: &str = "name = \"p\"\n[planner]\nstrategy = \"range\"\ncount = 2\n";

    #[test]
    fn compute_defaults_to_fargate_and_is_checked_there_only() {
        let text = format!("{BASE}[[stages]]\nname = \"s\"\ncommand = [\"x\"]\nmemory = 64\n");
        let spec = crate::spec::load_str(&text, "p.toml", Path::new(".")).unwrap();
        assert_eq!(spec.compute, super::Compute::Fargate);
        let problems = spec.compute_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("stage s: vcpus 1 with memory 64 MiB"), "{problems:?}");
        assert!(problems[0].contains("use vcpus = 1, memory = 2048"), "{problems:?}");
        let ec2 =
            crate::spec::load_str(&format!("compute = \"EC2\"\n{text}"), "p.toml", Path::new(".")).unwrap();
        assert!(ec2.compute_problems().is_empty());
    }

    #[test]
    fn local_pass_env_is_checked() {
        let text = format!("{BASE}[local]\npass_env = [\"AWS_PROFILE\", \"MY_VAR\"]\n[[stages]]\nname = \"s\"\ncommand = [\"x\"]\n");
        let spec = crate::spec::load_str(&text, "p.toml", Path::new(".")).unwrap();
        assert_eq!(spec.local.pass_env, ["AWS_PROFILE", "MY_VAR"]);
        let bad = text.replace("\"MY_VAR\"", "\"MY-VAR\"");
        let err = crate::spec::load_str(&bad, "p.toml", Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("pass_env \"MY-VAR\" is not a variable name"), "{err}");
        let bad = text.replace("\"MY_VAR\"", "\"AWS_BATCH_JOB_ID\"");
        assert!(crate::spec::load_str(&bad, "p.toml", Path::new(".")).is_err());
    }
}
