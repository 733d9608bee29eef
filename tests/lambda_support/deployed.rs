//! The orders example deployed as a user deploys it, on one machine: moto
//! server and `batchfan batch-api` on free ports, the three dispatchers
//! packaged by `scripts/package-lambdas.sh` for this machine, then
//! `terraform init/plan/apply` of `terraform/examples/orders` with every
//! trigger on and the real zips (`scripts/checks/43-terraform-apply.sh apply`,
//! which also checks that a second plan shows no changes).
//!
//! Nothing of the pipeline is created here: the functions, their
//! environment, the routes between them ([`super::routes`]) are read back
//! from moto.
//!
//! The jobs run in batch-api as local processes. The job definitions'
//! image (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/batchfan-jobs:latest`) holds
//! the job binaries on its `PATH`; here the same binaries are in
//! `target/debug`, so batch-api hands its jobs a `PATH` starting there
//! (`--pass-env PATH`), and the variables a container on AWS gets from its
//! task role and region (credentials, region, the endpoint of moto).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use super::{
    aws_fixtures::Fixtures,
    batch_api::Server,
    deploy,
    function::Function,
    moto::{Moto, REGION},
    package,
};

/// The dispatchers, by role.
pub const FUNCTIONS: [&str; 3] = ["trigger", "submit", "alert"];

/// The applied example and the servers it is deployed on.
pub struct Deployment {
    pub moto: Moto,
    pub batch: Server,
    pub fx: Fixtures,
    pub dir: tempfile::TempDir,
    /// `terraform output -json` of the example.
    pub outputs: Value,
    /// batch-api's job state change events: one EventBridge envelope a line.
    pub events_file: PathBuf,
}

/// The directory of the workspace's debug binaries (`batchfan`, the job binaries).
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_batchfan")).parent().expect("target/debug").to_owned()
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Deployment {
    /// Starts the servers, packages the dispatchers and applies the example.
    pub async fn apply() -> Deployment {
        let moto = Moto::start();
        let fx = Fixtures::new(&moto.sdk_config());
        let dir = tempfile::tempdir().expect("a temp dir");
        let events_file = dir.path().join("batch-events.jsonl");
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
        let endpoint = moto.endpoint();
        let job_env = [
            ("PATH", path.as_str()),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ];
        // Job state change events go to a file the harness reads, logs to moto's CloudWatch Logs.
        let events = events_file.display().to_string();
        let mut args = vec!["--events-file", events.as_str(), "--logs-url", endpoint.as_str()];
        for (name, _) in &job_env {
            args.extend(["--pass-env", name]);
        }
        let batch = Server::start_with_env(&args, &job_env);
        let lambda_dir = dir.path().join("lambda");
        for function in FUNCTIONS {
            package::package(function, &lambda_dir);
        }
        let work = dir.path().join("terraform");
        terraform(
            "apply",
            &work,
            &[
                ("BATCHFAN_TF_MOTO", moto.endpoint()),
                ("BATCHFAN_TF_BATCH", batch.endpoint.clone()),
                ("BATCHFAN_TF_LAMBDA_DIR", lambda_dir.display().to_string()),
                ("BATCHFAN_TF_REGION", REGION.to_owned()),
                ("BATCHFAN_TF_ARCH", deploy::architecture().to_owned()),
            ],
        );
        let outputs = std::fs::read_to_string(work.join("outputs.json")).expect("terraform output -json");
        let outputs = serde_json::from_str(&outputs).expect("terraform's outputs are JSON");
        Deployment { moto, batch, fx, dir, outputs, events_file }
    }

    /// The example's output `name` (a string).
    pub fn output(&self, name: &str) -> String {
        self.outputs[name]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no string output {name} in {}", self.outputs))
            .to_owned()
    }

    /// Deployed function `name`, ready to invoke (its zip is the one
    /// packaged for the apply: moto's CodeSha256 says so).
    pub async fn function(&self, name: &str) -> Function {
        let role = FUNCTIONS
            .into_iter()
            .find(|r| name.ends_with(&format!("-{r}")))
            .unwrap_or_else(|| panic!("function {name} is none of the dispatchers {FUNCTIONS:?}"));
        let zip = self.dir.path().join("lambda").join(role).join("bootstrap.zip");
        let task_root = self.dir.path().join("task").join(role);
        let vars: BTreeMap<String, String> = [
            ("AWS_ENDPOINT_URL".to_owned(), self.moto.endpoint()),
            ("AWS_ENDPOINT_URL_BATCH".to_owned(), self.batch.endpoint.clone()),
        ]
        .into();
        let log = self.log_of(role);
        deploy::deployed_function(&self.moto, &self.fx, name, &zip, &task_root, vars, &log).await
    }

    /// The output of function `role` so far.
    pub fn log_of(&self, role: &str) -> PathBuf {
        self.dir.path().join(format!("{role}.log"))
    }

    /// The spec changed as `edit` changes it, then `terraform plan` and
    /// `apply` again, as a user changing their spec does; returns what
    /// Terraform printed (its `Plan:` line included).
    pub fn update_spec(&self, edit: impl FnOnce(&str) -> String) -> String {
        let work = self.dir.path().join("terraform");
        let spec = work.join("orders.toml");
        let text = std::fs::read_to_string(&spec).unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
        let changed = edit(&text);
        assert_ne!(changed, text, "the edit changes the spec");
        std::fs::write(&spec, changed).expect("write the spec");
        terraform("update", &work, &[])
    }

    /// `terraform destroy`: the state ends empty.
    pub fn destroy(&self) {
        terraform("destroy", &self.dir.path().join("terraform"), &[]);
    }
}

/// `scripts/checks/43-terraform-apply.sh MODE WORK` with `vars`; panics with
/// its output on failure, else returns it.
fn terraform(mode: &str, work: &Path, vars: &[(&str, String)]) -> String {
    let script = workspace_root().join("scripts/checks/43-terraform-apply.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(mode)
        .arg(work)
        .env("BATCHFAN_BIN", env!("CARGO_BIN_EXE_batchfan"))
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let printed =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "terraform {mode} failed ({}):\n{printed}", output.status);
    eprintln!("terraform {mode}:\n{printed}");
    printed
}
