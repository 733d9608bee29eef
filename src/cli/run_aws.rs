//! `batchfan run SPEC --backend aws`: a run driven from this machine —
//! planning and submission here, the jobs on AWS Batch — then followed until
//! it ends (`--detach` returns once it is submitted).
//!
//! No EventBridge events reach a laptop, so while waiting the run is
//! reconciled from the jobs' states ([`Monitor::reconcile`]): the same alert,
//! failure cleanup and final state the alert Lambda would produce. If the
//! pipeline's submit Lambda is deployed it receives the same RunPlanned; the
//! run's lease and reconciliation by job name keep every job submitted once.

use super::out::outln;
use std::time::Duration;

use serde_json::json;

use super::{
    aws_args::AwsArgs,
    inputs::{self, OnMismatch},
    progress::{Mode, Progress},
    Output, RunInputArgs, UsageError, EXIT_RUN_FAILED,
};
use crate::{
    aws::ApiTally,
    backend,
    run::{monitor::Monitor, planner, submit, RunError, RunRecord, RunState},
};

/// What `run --backend aws` needs from the command line.
pub struct AwsRun<'a> {
    pub run: &'a RunInputArgs,
    pub aws: &'a AwsArgs,
    /// `--fresh`: a new run, replacing an input snapshot that does not verify.
    pub fresh: bool,
    pub request_id: Option<&'a str>,
    pub detach: bool,
    pub poll: Duration,
    pub output: Output,
    pub quiet: bool,
}

pub async fn run(args: AwsRun<'_>) -> anyhow::Result<i32> {
    let mut spec = inputs::load_spec(&args.run.spec)?;
    let target = args.aws.target();
    target.require_for_run().map_err(UsageError)?;
    target.apply(&mut spec);
    let params = inputs::resolve_params(&spec, &args.run.params)?;
    let (ports, clients) = backend::aws_ports(&target, Some(&spec))
        .await
        .map_err(|e| UsageError(format!("cannot use AWS: {e}")))?;
    let input = match &args.run.input {
        Some(raw) => {
            let on_mismatch = if args.fresh { OnMismatch::Replace } else { OnMismatch::Refuse };
            let bucket = &spec.storage.bucket;
            Some(inputs::resolve_aws_input(raw, ports.objects.as_ref(), bucket, on_mismatch).await?)
        }
        None => None,
    };
    let trigger = inputs::manual_trigger(&spec, input.as_ref(), params, args.request_id);
    // The planner returns an existing run as it is: refuse it when its input is not ours.
    let record = match planner::plan(&ports, &spec, trigger.clone()).await {
        Ok(r) => {
            inputs::check_same_input(&r, &trigger)?;
            r
        }
        Err(e @ (RunError::Plan(_) | RunError::Invalid(_) | RunError::Graph(_))) => {
            return Err(UsageError(e.to_string()).into())
        }
        Err(e) => return Err(e.into()),
    };
    let owner = format!("cli-{}-{}", std::process::id(), crate::run::record::now_ms());
    let record = match submit::submit(&ports, &spec, &record.run_id, &owner).await {
        Ok(r) => r,
        // The deployed submitter (or another CLI) is at it: it finishes the graph.
        Err(RunError::LeaseHeld { owner, .. }) => {
            if !args.quiet {
                eprintln!("run {} is being submitted by {owner}", record.run_id);
            }
            record
        }
        Err(e) => return Err(e.into()),
    };
    if !args.quiet {
        eprintln!(
            "run {} ({}) {}: {} job(s) on queue {}",
            record.run_id,
            spec.name,
            record.state,
            record.jobs.len(),
            spec.job_queue
        );
    }
    if args.detach {
        print_result(args.output, &record, &clients.api_calls(), args.quiet);
        return Ok(0);
    }
    let monitor = Monitor::new(ports.clone(), [spec.clone()]);
    let mut last = record.state;
    let mut display = Progress::new(Mode::detect(args.quiet));
    let done = loop {
        let rec = match monitor.reconcile(&spec.name, &record.run_id).await? {
            Some(r) => r,
            None => return Err(RunError::UnknownRun(record.run_id.clone()).into()),
        };
        if rec.state != last {
            display.println(&format!("run {} {}", rec.run_id, rec.state));
        }
        last = rec.state;
        if rec.state.is_terminal() {
            break rec;
        }
        if display.is_live() {
            display.update(vec![(
                format!("run {}", rec.run_id),
                format!("{}, {} job(s)", rec.state, rec.jobs.len()),
            )]);
        }
        wait_ticking(&mut display, args.poll).await;
    };
    display.finish();
    print_result(args.output, &done, &clients.api_calls(), args.quiet);
    Ok(if done.state == RunState::Failed { EXIT_RUN_FAILED } else { 0 })
}

/// Sleeps `poll`, moving the live display's spinner meanwhile.
async fn wait_ticking(display: &mut Progress, poll: Duration) {
    let step = Duration::from_millis(250);
    let until = tokio::time::Instant::now() + poll;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(step.min(until - tokio::time::Instant::now())).await;
        display.tick();
    }
}

/// Prints the run; `calls` are the AWS API calls this command made (on
/// stderr in text, as `api_calls` in JSON).
fn print_result(output: Output, rec: &RunRecord, calls: &ApiTally, quiet: bool) {
    match output {
        Output::Json => {
            let v = json!({
                "run_id": rec.run_id, "pipeline": rec.pipeline, "state": rec.state,
                "output": rec.output.to_string(), "jobs": rec.jobs,
                "children": rec.sizing.map(|s| s.children), "failure": rec.failure,
                "items": rec.summary.as_ref().map(|s| s.items),
                "api_calls": calls,
            });
            outln!("{v}");
        }
        Output::Text => {
            if !quiet {
                eprintln!("AWS API calls by this command: {calls}");
            }
            outln!("run {} {}", rec.run_id, rec.state);
            outln!("output {}", rec.output);
            for (name, id) in &rec.jobs {
                outln!("job {name} {id}");
            }
            if let Some(f) = &rec.failure {
                outln!("{}", f.summary_line());
            }
        }
    }
}
