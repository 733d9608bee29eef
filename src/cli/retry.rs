//! `batchfan retry RUN`: the next attempt of a FAILED or CANCELLED run, reusing
//! every child result stored ([`crate::run::retry`]). Exit 0 when the attempt
//! succeeded, 1 when it failed, 2 when the run cannot be retried (it
//! succeeded, or has not ended) or is unknown.

use super::{
    cancel::{self, Args},
    UsageError, EXIT_ERROR, EXIT_RUN_FAILED,
};
use crate::run::{
    retry::{self, RetryError},
    submit, RunError, RunState,
};

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let op = cancel::open(&args).await?;
    let Some(ports) = op.ports.clone() else {
        let pid = op.owner().unwrap_or("?").to_owned();
        eprintln!(
            "error: the engine in {} is in use by process {pid}: retry from its status page (batchfan serve), or stop it and run batchfan retry again",
            args.state.dir.display()
        );
        return Ok(EXIT_ERROR);
    };
    let rec = match retry::start(&ports, &op.spec, &args.run).await {
        Ok(rec) => rec,
        Err(e) => {
            op.close().await;
            return Err(match e {
                RetryError::NotRetryable { .. }
                | RetryError::Run(RunError::UnknownRun(_) | RunError::Invalid(_) | RunError::Graph(_)) => {
                    UsageError(e.to_string()).into()
                }
                e => e.into(),
            });
        }
    };
    if let Some(plan) = &rec.retry {
        let per_stage: Vec<String> =
            op.spec.stages.iter().zip(&plan.reruns).map(|(s, n)| format!("{} {n}", s.name)).collect();
        eprintln!("run {} attempt {}: rerunning {}", rec.run_id, rec.attempt(), per_stage.join(", "));
    }
    if ports.kind == crate::run::BackendKind::Aws {
        let owner = format!("cli-{}-{}", std::process::id(), crate::run::record::now_ms());
        match submit::submit(&ports, &op.spec, &args.run, &owner).await {
            Ok(_) | Err(RunError::LeaseHeld { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if args.detach {
        op.close().await;
        cancel::print(args.output, &rec);
        return Ok(0);
    }
    let done = op.wait(&args.run).await?;
    cancel::print(args.output, &done);
    Ok(if done.state == RunState::Succeeded { 0 } else { EXIT_RUN_FAILED })
}
