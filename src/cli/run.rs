//! `batchfan run SPEC --input URI`: one run on the embedded backend.

use super::out::outln;
use std::{collections::BTreeMap, time::Duration};

use serde_json::json;

use super::{
    aws_args::{AwsArgs, BackendArg},
    inputs::{self, OnMismatch},
    limits,
    progress::{Mode, Progress},
    run_aws, Output, RunInputArgs, StateArgs, UsageError, EXIT_RUN_FAILED,
};
use crate::{
    backend::{LocalBackend, LocalOptions},
    batch::{JobDetail, JobStatus},
    engine::ShutdownMode,
    inputs::snapshot::LineScan,
    run::{monitor::TAG_ROLE, RunRecord, RunState, RunStore},
    service::Service,
    spec::{PipelineSpec, Planner},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) run: RunInputArgs,
    /// Start a new run even if this exact command already ran.
    #[arg(long)]
    pub(crate) fresh: bool,
    /// Idempotency key of this request: the same id always means the same run.
    /// 1-100 characters: letters, digits, '-', '_', '.', ':'.
    #[arg(long, conflicts_with = "fresh", value_parser = limits::RequestId)]
    pub(crate) request_id: Option<String>,
    /// vCPUs the local engine may use, above 0 and at most 4096 (default: this machine's).
    #[arg(long, value_parser = limits::vcpus)]
    pub(crate) vcpus: Option<f64>,
    /// Memory (MiB) the local engine may use, 1 to 16777216 (default: this machine's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=limits::MAX_MEMORY_MIB))]
    pub(crate) memory: Option<u64>,
    /// Keep each job attempt's working directory (STATE/work/JOB.ATTEMPT) after it ends, for debugging.
    #[arg(long)]
    pub(crate) keep_workdirs: bool,
    #[command(flatten)]
    pub(crate) state: StateArgs,
    /// Print the result as text or JSON (stdout).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
    /// No progress on stderr.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Where the run happens: this machine, or AWS (planning and submission
    /// here, the jobs on AWS Batch).
    #[arg(long, value_enum, default_value_t, env = "BATCHFAN_BACKEND")]
    pub(crate) backend: BackendArg,
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// --backend aws: return once the run is submitted instead of following it.
    #[arg(long)]
    pub(crate) detach: bool,
    /// --backend aws: seconds between two looks at the run's jobs (above 0, at most 3600).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS", value_parser = limits::poll_seconds)]
    pub(crate) poll: f64,
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    if args.backend == BackendArg::Aws {
        let fresh_id = args.fresh.then(|| format!("fresh-{}", crate::run::record::now_ms()));
        // In range: checked by `limits::poll_seconds`.
        let poll = Duration::from_secs_f64(args.poll);
        return run_aws::run(run_aws::AwsRun {
            run: &args.run,
            fresh: args.fresh,
            aws: &args.aws,
            request_id: args.request_id.as_deref().or(fresh_id.as_deref()),
            detach: args.detach,
            poll,
            output: args.output,
            quiet: args.quiet,
        })
        .await;
    }
    let spec = inputs::load_spec(&args.run.spec)?;
    let params = inputs::resolve_params(&spec, &args.run.params)?;
    let options = LocalOptions {
        vcpus: args.vcpus,
        memory_mib: args.memory,
        pass_env: spec.local.pass_env.clone(),
        keep_workdirs: args.keep_workdirs,
        ..Default::default()
    };
    if !args.quiet {
        announce_pass_env(&spec.local.pass_env);
    }
    let backend = LocalBackend::open(&args.state.dir, options).await?;
    if !args.quiet {
        eprintln!("limits: {}", backend.engine.limits_in_force());
    }
    let on_mismatch = if args.fresh { OnMismatch::Replace } else { OnMismatch::Refuse };
    let input = match &args.run.input {
        Some(raw) => Some(
            inputs::resolve_input_scanning(raw, &backend.objects, on_mismatch, line_scan(&spec, &params))
                .await?,
        ),
        None => None,
    };
    let fresh_id = args.fresh.then(|| format!("fresh-{}", crate::run::record::now_ms()));
    let request_id = args.request_id.as_deref().or(fresh_id.as_deref());
    let trigger = inputs::manual_trigger(&spec, input.as_ref(), params, request_id);
    inputs::check_resume(&RunStore::new(backend.ports.table.as_ref(), &spec.storage.table), &trigger).await?;
    let service = Service::start(backend, vec![spec.clone()]).await?;
    let record = match service.trigger(trigger).await {
        Ok(r) => r,
        Err(e @ crate::run::RunError::Plan(_)) | Err(e @ crate::run::RunError::Invalid(_)) => {
            service.shutdown(ShutdownMode::Drain).await;
            return Err(UsageError(e.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    };
    if !args.quiet {
        eprintln!("run {} ({}) {}", record.run_id, spec.name, record.state);
    }
    let ports = service.backend.ports.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ticker = (!args.quiet).then(|| {
        let (ports, spec, run_id) = (ports.clone(), spec.clone(), record.run_id.clone());
        tokio::spawn(async move { progress(ports, spec, run_id, stopped).await })
    });
    let done = service.wait(&spec.name, &record.run_id, Duration::from_millis(100), |_| {}).await;
    if let Some(t) = ticker {
        let _ = stop.send(true);
        let _ = t.await; // the display ends cleanly before the result is printed
    }
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            service.shutdown(ShutdownMode::Drain).await;
            return Err(e.into());
        }
    };
    let ids: Vec<String> = done.jobs.values().cloned().collect();
    let details = ports.batch.describe_jobs(&ids).await.unwrap_or_default();
    let output_path = service.backend.objects.path_of(&done.output);
    service.shutdown(ShutdownMode::Drain).await;
    let phases = phases(&done, &details);
    let stages = stage_children(&done, &details);
    let counters = Counters {
        table_relay_calls: service.backend.relay_calls(),
        forked_starts: service.backend.forked_starts(),
    };
    print_result(args.output, &done, &output_path, &phases, &stages, &counters);
    Ok(if done.state == RunState::Succeeded { 0 } else { EXIT_RUN_FAILED })
}

/// What to scan the input snapshot for while it is hashed: the `lines`
/// planner's ranges, with `--param lines_per_item` as the planner reads it
/// (a value it would refuse scans nothing: planning reports it).
fn line_scan(spec: &PipelineSpec, params: &BTreeMap<String, String>) -> Option<LineScan> {
    let Planner::Lines { lines_per_item, header, .. } = &spec.planner else { return None };
    let lines_per_item = match params.get("lines_per_item") {
        Some(v) => v.parse().ok().filter(|&n: &u64| n >= 1)?,
        None => *lines_per_item,
    };
    Some(LineScan { lines_per_item, header: *header })
}

/// Says on stderr which host variables the jobs get (`[local] pass_env`): nothing else is inherited.
fn announce_pass_env(names: &[String]) {
    if names.is_empty() {
        return;
    }
    let (set, unset): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| std::env::var_os(n).is_some());
    let list = |v: Vec<&String>| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let mut line =
        format!("jobs get host variables: {}", if set.is_empty() { "none".into() } else { list(set) });
    if !unset.is_empty() {
        line.push_str(&format!(" (not set here: {})", list(unset)));
    }
    eprintln!("{line}");
}

/// Shows per-stage progress on stderr ([`Progress`]) until `stop` turns true.
async fn progress(
    ports: crate::run::Ports,
    spec: crate::spec::PipelineSpec,
    run_id: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let store = crate::run::RunStore::new(ports.table.as_ref(), &spec.storage.table);
    let mut display = Progress::new(Mode::detect(false));
    loop {
        // Read before the stop flag: the last look shows the run as it ended.
        let stopping = *stop.borrow();
        if let Ok(Some(rec)) = store.get(&run_id).await {
            // Shown in run order: the plan, the stages in spec order, aggregation, cleanup.
            let mut lines: BTreeMap<(usize, String), String> = BTreeMap::new();
            let planned = match rec.sizing {
                Some(s) => {
                    format!("{} units, {} children per stage, {} shard(s)", s.units, s.children, s.shards)
                }
                None => "planning".into(),
            };
            lines.insert((0, "plan".to_owned()), planned);
            let ids: Vec<String> = rec.jobs.values().cloned().collect();
            if let Ok(details) = ports.batch.describe_jobs(&ids).await {
                let mut by_label: BTreeMap<(usize, String), Vec<JobDetail>> = BTreeMap::new();
                for d in details {
                    let Some(label) = progress_line(&d.tags, &rec.stages) else { continue };
                    by_label.entry(label).or_default().push(d);
                }
                for (label, ds) in by_label {
                    let counts = stage_counts(&ds);
                    let total: u64 = counts.values().sum();
                    let n = |s: JobStatus| counts.get(&s).copied().unwrap_or(0);
                    let running = n(JobStatus::Running) + n(JobStatus::Starting);
                    let text = format!(
                        "{}/{total} succeeded, {running} running, {} failed",
                        n(JobStatus::Succeeded),
                        n(JobStatus::Failed)
                    );
                    lines.insert(label, text);
                }
            }
            display.update(lines.into_iter().map(|((_, label), text)| (label, text)).collect());
        }
        if stopping {
            break;
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(Duration::from_millis(250)) => display.tick(),
        }
    }
    display.finish();
}

/// The progress line a job counts in, keyed in run order: each stage (in
/// the spec's order, by name), then `aggregation`, then `cleanup`; `None`
/// for a barrier (not shown).
fn progress_line(tags: &BTreeMap<String, String>, stages: &[String]) -> Option<(usize, String)> {
    match tags.get(TAG_ROLE).map(String::as_str).unwrap_or_default() {
        "stage" => {
            let stage = tags.get("batchfan:stage").cloned().unwrap_or_default();
            let pos = stages.iter().position(|s| *s == stage).unwrap_or(0);
            Some((1 + pos, stage))
        }
        "barrier" => None,
        "aggregation" => Some((usize::MAX - 1, "aggregation".into())),
        _ => Some((usize::MAX, "cleanup".into())),
    }
}

/// Wall time of each phase, in milliseconds.
fn phases(rec: &RunRecord, details: &[JobDetail]) -> BTreeMap<String, i64> {
    let mut spans: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for d in details {
        let (Some(start), Some(stop)) = (d.started_at, d.stopped_at) else { continue };
        let role = d.tags.get(TAG_ROLE).cloned().unwrap_or_default();
        let label = match role.as_str() {
            "stage" => format!("stage:{}", d.tags.get("batchfan:stage").cloned().unwrap_or_default()),
            "barrier" => continue,
            other => other.to_owned(),
        };
        let e = spans.entry(label).or_insert((start, stop));
        e.0 = e.0.min(start);
        e.1 = e.1.max(stop);
    }
    let mut out: BTreeMap<String, i64> = spans.into_iter().map(|(k, (a, b))| (k, b - a)).collect();
    if let (Some(a), Some(b)) = (rec.times.get("plan_start"), rec.times.get("plan_end")) {
        out.insert("plan".into(), b - a);
    }
    if let (Some(a), Some(b)) = (rec.times.get("plan_start"), rec.times.get("finished")) {
        out.insert("total".into(), b - a);
    }
    out
}

/// Children per status of each stage (shards summed), in stage order: `{stage, children, SUCCEEDED: n, FAILED: n, ...}`.
pub fn stage_children(rec: &RunRecord, details: &[JobDetail]) -> Vec<serde_json::Value> {
    rec.stages
        .iter()
        .map(|stage| {
            let shards: Vec<JobDetail> = details
                .iter()
                .filter(|d| {
                    d.tags.get(TAG_ROLE).map(String::as_str) == Some("stage")
                        && d.tags.get("batchfan:stage") == Some(stage)
                })
                .cloned()
                .collect();
            let counts = stage_counts(&shards);
            let mut v = json!({ "stage": stage, "children": counts.values().sum::<u64>() });
            for (status, n) in counts {
                v[status.as_str()] = json!(n);
            }
            v
        })
        .collect()
}

/// What the local service counted during the run.
struct Counters {
    table_relay_calls: Option<u64>,
    forked_starts: u64,
}

fn print_result(
    output: Output,
    rec: &RunRecord,
    path: &std::path::Path,
    phases: &BTreeMap<String, i64>,
    stages: &[serde_json::Value],
    counters: &Counters,
) {
    let summary = rec.summary.clone().unwrap_or_default();
    match output {
        Output::Json => {
            // Items are what the aggregation counted: unknown (null), not 0,
            // when a failure stopped the run before it.
            let reported = rec.summary.as_ref();
            let failed_children: u64 =
                stages.iter().filter_map(|s| s[JobStatus::Failed.as_str()].as_u64()).sum();
            let v = json!({
                "run_id": rec.run_id, "pipeline": rec.pipeline, "state": rec.state,
                "output": rec.output.to_string(), "output_path": path,
                "items": reported.map(|s| s.items), "failed_items": reported.map(|s| s.failed),
                "units": rec.sizing.map(|s| s.units),
                "children": rec.sizing.map(|s| s.children), "stages": stages,
                "failed_children": failed_children, "phases_ms": phases,
                "failure": rec.failure,
                // Table calls the jobs made through the service (`table::relay`).
                "table_relay_calls": counters.table_relay_calls,
                // Attempts started by forking a fork server (`engine::forks`).
                "forked_starts": counters.forked_starts,
            });
            outln!("{v}");
        }
        Output::Text => {
            outln!("run {} {}", rec.run_id, rec.state);
            if rec.state == RunState::Succeeded || summary.output.is_some() {
                outln!("output {} ({})", rec.output, path.display());
                // Items are what the aggregation counted; one that reports none (the
                // FANOUT sum) leaves them unknown, not 0.
                if rec.summary.is_some() {
                    outln!("items {} ({} failed)", summary.items, summary.failed);
                }
            }
            if let Some(f) = &rec.failure {
                outln!("{}", f.summary_line());
                if !f.log_tail.is_empty() {
                    outln!("log tail:\n{}", f.log_tail);
                }
            }
            let text: Vec<String> = phases.iter().map(|(k, v)| format!("{k} {v} ms")).collect();
            eprintln!("  phases: {}", text.join(", "));
        }
    }
}

/// Counts children per status of a stage's shard jobs.
pub fn stage_counts(details: &[JobDetail]) -> BTreeMap<JobStatus, u64> {
    let mut counts = BTreeMap::new();
    for d in details {
        match &d.array_properties {
            Some(a) if a.size.is_some() => {
                for (st, n) in &a.status_summary {
                    *counts.entry(*st).or_default() += u64::from(*n);
                }
            }
            _ => *counts.entry(d.status).or_default() += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_follow_the_run_order_and_keep_stage_names_whole() {
        let stages: Vec<String> = ["2fast", "10x", "aggregate"].map(String::from).into();
        let tags = |role: &str, stage: &str| -> BTreeMap<String, String> {
            [(TAG_ROLE.to_owned(), role.to_owned()), ("batchfan:stage".to_owned(), stage.to_owned())].into()
        };
        let mut lines: Vec<(usize, String)> = [
            tags("cleanup", ""),
            tags("stage", "aggregate"),
            tags("aggregation", ""),
            tags("stage", "10x"),
            tags("stage", "2fast"),
        ]
        .iter()
        .filter_map(|t| progress_line(t, &stages))
        .collect();
        lines.sort();
        let names: Vec<&str> = lines.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["2fast", "10x", "aggregate", "aggregation", "cleanup"]);
        assert_eq!(progress_line(&tags("barrier", ""), &stages), None);
    }
}
