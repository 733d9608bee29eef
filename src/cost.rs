//! What one run costs to orchestrate on AWS (`batchfan cost`), beside the
//! same fan-out as a Step Functions Standard Map state and as one SubmitJob
//! per work item.
//!
//! The estimate counts the AWS API calls a successful run makes, by phase,
//! the way the code makes them (checked against the calls the real adapters
//! make on an AWS-compatible server: the planner and submitter in
//! `tests/cli_aws.rs`, batchfan's part of the jobs in
//! `jobs/tests/e2e_aws.rs`), then prices them. Compute — the Batch jobs' vCPU and
//! memory time — is excluded: it is the same in all three designs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    graph::{self, Role},
    plan::Sizing,
    spec::{PipelineSpec, Planner},
};

/// List prices (USD), us-east-1, on-demand, without free tiers.
pub mod prices {
    /// Where the prices are from, and when they were read.
    pub const SOURCE: &str = "AWS list prices for us-east-1, read 2025-01 from aws.amazon.com/{lambda,sns,dynamodb,s3,step-functions}/pricing (DynamoDB on-demand after its Nov 2024 reduction); check them before quoting";
    /// Lambda, per request ($0.20 per million).
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda on arm64 (Graviton), per GB-second.
    pub const LAMBDA_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
    /// Lambda on x86_64, per GB-second.
    pub const LAMBDA_GB_SECOND_X86_64: f64 = 0.000_016_666_7;
    /// SNS standard topic, per publish (64 KB chunk; $0.50 per million). Deliveries to Lambda and SQS are free.
    pub const SNS_PUBLISH: f64 = 0.50 / 1e6;
    /// DynamoDB on-demand, per write request unit (1 KB; $0.625 per million).
    pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand, per read request unit (4 KB strongly consistent; $0.125 per million).
    pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
    /// S3 Standard PUT, COPY, POST and LIST requests ($0.005 per 1,000).
    pub const S3_PUT_LIST: f64 = 0.005 / 1e3;
    /// S3 Standard GET, HEAD and other requests ($0.0004 per 1,000). DELETE is free.
    pub const S3_GET: f64 = 0.0004 / 1e3;
    /// Step Functions Standard, per state transition ($0.025 per 1,000).
    pub const STEP_FUNCTIONS_TRANSITION: f64 = 0.025 / 1e3;
    // AWS Batch, EventBridge rules on AWS service events and SNS → Lambda
    // deliveries have no charge of their own.
}

/// Assumptions the estimate rests on (said in its output).
pub mod assume {
    /// Time of one API call from a Lambda in the same region, ms (BatchWriteItem
    /// calls go [`crate::aws::BATCH_WRITES_IN_FLIGHT`] at a time).
    pub const API_CALL_MS: f64 = 20.0;
    /// SubmitJob calls per second the submitter makes at most ([`crate::aws::DEFAULT_SUBMIT_RATE`]).
    pub const SUBMIT_PER_SECOND: f64 = crate::aws::DEFAULT_SUBMIT_RATE;
    /// A Lambda invocation's own time (start, parse, log), ms.
    pub const INVOCATION_MS: f64 = 50.0;
    /// Bytes of the run record with no jobs, and per job in it (name and id).
    pub const RECORD_BYTES: u64 = 1_000;
    pub const RECORD_BYTES_PER_JOB: u64 = 90;
    /// Bytes of a work item beside its units, and of a child's result row.
    pub const WORK_ITEM_BYTES: u64 = 100;
    pub const RESULT_BYTES: u64 = 200;
    /// Bytes per input line the `lines` planner reads (an item is `lines_per_item` lines).
    pub const LINE_BYTES: u64 = 100;
    /// Step Functions transitions per iteration of a Map (the iteration's Task state entered and left).
    pub const SFN_TRANSITIONS_PER_ITERATION: u64 = 2;
    /// Longest a Lambda may run, seconds.
    pub const LAMBDA_MAX_SECONDS: f64 = 900.0;
    /// Minutes between two reconcile ticks of the alert Lambda (the module's `reconcile_minutes`).
    pub const RECONCILE_MINUTES: f64 = 5.0;
}

/// The alert Lambda's reconcile ticks in a 30-day month, and what they cost
/// when nothing waits (one invocation and one DynamoDB query each): per
/// pipeline, whatever its runs — the price of not invoking the alert function
/// once per child to see a waiting failure cleanup's last child succeed.
pub fn reconcile_month(lambda_memory_mb: u32, arch: Arch) -> (u64, f64) {
    let ticks = (30.0 * 24.0 * 60.0 / assume::RECONCILE_MINUTES) as u64;
    let gb_second = match arch {
        Arch::Arm64 => prices::LAMBDA_GB_SECOND_ARM64,
        Arch::X86_64 => prices::LAMBDA_GB_SECOND_X86_64,
    };
    let seconds = (assume::INVOCATION_MS + assume::API_CALL_MS) / 1e3;
    let gb = f64::from(lambda_memory_mb) / 1024.0;
    let each = prices::LAMBDA_REQUEST + gb * seconds * gb_second + prices::DYNAMODB_RRU;
    (ticks, ticks as f64 * each)
}

/// Lambda CPU architecture (prices differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Arm64,
    #[value(name = "x86_64")]
    X86_64,
}

/// What to price.
#[derive(Debug, Clone)]
pub struct CostInput {
    /// Items of the run: input lines for the `lines` planner (planned
    /// `lines_per_item` to a unit), objects for `objects`, units otherwise.
    pub items: u64,
    /// Overrides the spec's units per child.
    pub items_per_child: Option<u64>,
    /// Memory of each Lambda, MB (the Terraform module's default is 256).
    pub lambda_memory_mb: u32,
    pub arch: Arch,
}

/// One priced line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub what: String,
    pub quantity: f64,
    /// Price of one unit of `quantity`, USD.
    pub unit_usd: f64,
    pub usd: f64,
}

impl Line {
    fn new(what: impl Into<String>, quantity: f64, unit_usd: f64) -> Line {
        Line { what: what.into(), quantity, unit_usd, usd: quantity * unit_usd }
    }
}

/// The API calls of one phase of a run, by kind (`Service.Operation`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: &'static str,
    /// Whether the phase runs in a Lambda (its time is billed as Lambda GB-seconds).
    pub lambda: bool,
    pub calls: BTreeMap<&'static str, u64>,
}

/// One design's orchestration cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Design {
    pub name: &'static str,
    pub lines: Vec<Line>,
    pub usd: f64,
    /// What the design implies beyond cost (submission time, limits).
    pub notes: Vec<String>,
}

impl Design {
    fn new(name: &'static str, lines: Vec<Line>, notes: Vec<String>) -> Design {
        let usd = lines.iter().map(|l| l.usd).sum();
        Design { name, lines, usd, notes }
    }
}

/// The estimate `batchfan cost` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub pipeline: String,
    /// Items as given (`--items`).
    pub items: u64,
    pub sizing: Sizing,
    pub stages: u64,
    /// Batch jobs of the run (stage shards, barriers, aggregation, cleanup).
    pub jobs: u64,
    /// Predicted API calls of a successful run, by phase.
    pub phases: Vec<Phase>,
    /// batchfan, Step Functions Standard, one SubmitJob per work item.
    pub designs: Vec<Design>,
    pub assumptions: Vec<String>,
    pub excluded: &'static str,
    pub prices: &'static str,
}

/// Why a run cannot be priced.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("--items-per-child 0 is not a whole number of at least 1: pass e.g. --items-per-child 100")]
    ZeroItemsPerChild,
    /// The run's job graph would break an AWS limit.
    #[error("a run of {items} item(s) cannot be built: {source}")]
    Graph {
        items: u64,
        #[source]
        source: graph::GraphError,
    },
}

/// Prices one successful run of `spec` over `input.items` units.
pub fn estimate(spec: &PipelineSpec, input: &CostInput) -> Result<Estimate, CostError> {
    let per = input.items_per_child.unwrap_or_else(|| spec.stages.first().map_or(1, |s| s.items_per_child));
    if per == 0 {
        return Err(CostError::ZeroItemsPerChild);
    }
    let units = match spec.planner {
        Planner::Lines { lines_per_item, .. } => input.items.div_ceil(lines_per_item.max(1)),
        _ => input.items,
    };
    let sizing = Sizing::new(units, per, spec.max_array_size);
    let graph = graph::build(spec, "r000000000000", &sizing)
        .map_err(|source| CostError::Graph { items: input.items, source })?;
    let jobs = graph.nodes.len() as u64;
    let barriers = graph.nodes.iter().filter(|n| matches!(n.role, Role::Barrier { .. })).count() as u64;
    let stages = spec.stages.len() as u64;
    let children = sizing.children;
    let phases = phases(spec, &sizing, jobs, stages);

    let record_kb = kb(assume::RECORD_BYTES + assume::RECORD_BYTES_PER_JOB * jobs, 1024);
    let record_rru = kb(assume::RECORD_BYTES + assume::RECORD_BYTES_PER_JOB * jobs, 4096);
    let item_bytes = assume::WORK_ITEM_BYTES + unit_bytes(&spec.planner) * sizing.items_per_child;
    // A `range` run stores no work items: each child computes its own.
    let stored_items = if spec.planner.stores_work_items() { children } else { 0 };
    let result_wru = kb(assume::RESULT_BYTES, 1024);
    let results = children * stages;
    let result_pages = |n: u64| kb(n * assume::RESULT_BYTES, 4096);

    // Write units: the claim and index rows (small), 6 record writes
    // (create, planned, lease, submitted, summary, final), the work items,
    // the results. Nothing is deleted: scratch rows expire (DynamoDB's TTL,
    // free of charge).
    let wru = 2 + 6 * record_kb + stored_items * kb(item_bytes, 1024) + results * result_wru;
    // Read units: the record, read before each of 6 updates and by the
    // aggregation and cleanup; each child's stored work item (in every
    // stage); the result of the stage before (stages after the first); the
    // results the aggregation queries (4 KB pages).
    let queried = if concat_aggregation(spec) { results } else { children };
    let rru = 8 * record_rru
        + stored_items * stages * kb(item_bytes, 4096)
        + children * stages.saturating_sub(1)
        + result_pages(queried);
    let all = sum_calls(&phases);
    let s3_put_list =
        all.get("S3.PutObject").copied().unwrap_or(0) + all.get("S3.ListObjectsV2").copied().unwrap_or(0);
    let s3_get =
        all.get("S3.GetObject").copied().unwrap_or(0) + all.get("S3.HeadObject").copied().unwrap_or(0);

    let gb = f64::from(input.lambda_memory_mb) / 1024.0;
    let gb_second = match input.arch {
        Arch::Arm64 => prices::LAMBDA_GB_SECOND_ARM64,
        Arch::X86_64 => prices::LAMBDA_GB_SECOND_X86_64,
    };
    // SubmitJobs go one after another at the rate limit; BatchWriteItems
    // several at a time; everything else one after another.
    let seconds_of = |phase: &Phase| {
        let of = |kind: &str| phase.calls.get(kind).copied().unwrap_or(0) as f64;
        let (submits, batches) = (of("Batch.SubmitJob"), of("DynamoDB.BatchWriteItem"));
        let others = phase.calls.values().sum::<u64>() as f64 - submits - batches;
        let in_flight = crate::aws::BATCH_WRITES_IN_FLIGHT as f64;
        (assume::INVOCATION_MS + (others + (batches / in_flight).ceil()) * assume::API_CALL_MS) / 1e3
            + submits * (1.0 / assume::SUBMIT_PER_SECOND).max(assume::API_CALL_MS / 1e3)
    };
    let lambda_phases: Vec<&Phase> = phases.iter().filter(|p| p.lambda).collect();
    let lambda_seconds: f64 = lambda_phases.iter().map(|p| seconds_of(p)).sum();
    let planner_seconds = seconds_of(&phases[0]);
    let publishes = all.get("SNS.Publish").copied().unwrap_or(0) as f64;
    let submit_calls = all.get("Batch.SubmitJob").copied().unwrap_or(0);
    // What every design pays alike: the work items and run state in
    // DynamoDB, the planner's and the run's S3 requests.
    let common = || {
        vec![
            Line::new("DynamoDB write request units", wru as f64, prices::DYNAMODB_WRU),
            Line::new("DynamoDB read request units", rru as f64, prices::DYNAMODB_RRU),
            Line::new("S3 PUT/LIST requests", s3_put_list as f64, prices::S3_PUT_LIST),
            Line::new("S3 GET/HEAD requests", s3_get as f64, prices::S3_GET),
        ]
    };
    let lambda_lines = |what: &str, requests: f64, seconds: f64| {
        vec![
            Line::new(format!("Lambda requests ({what})"), requests, prices::LAMBDA_REQUEST),
            Line::new(
                format!(
                    "Lambda GB-seconds ({} MB × {} estimated)",
                    input.lambda_memory_mb,
                    human_seconds(seconds)
                ),
                gb * seconds,
                gb_second,
            ),
        ]
    };

    let mut lines = lambda_lines("trigger, submit, alert", lambda_phases.len() as f64, lambda_seconds);
    lines.push(Line::new("SNS publishes (RunPlanned)", publishes, prices::SNS_PUBLISH));
    lines.extend(common());
    let ours = Design::new(
        "batchfan (array jobs chained N_TO_N)",
        lines,
        vec![format!(
            "{submit_calls} SubmitJob call(s) for {children} work item(s): {stages} stage(s) × {} shard(s) + {barriers} barrier(s) + aggregation + cleanup",
            sizing.shards
        )],
    );

    // Step Functions Standard: the planner as a Lambda task, then a Map over
    // the same work items per stage, then aggregate and cleanup states.
    let transitions = stages * children * assume::SFN_TRANSITIONS_PER_ITERATION + 2 * stages + 3;
    let mut lines =
        vec![Line::new("state transitions", transitions as f64, prices::STEP_FUNCTIONS_TRANSITION)];
    lines.extend(lambda_lines("planner task", 1.0, planner_seconds));
    lines.extend(common());
    let sfn = Design::new(
        "Step Functions Standard (a Map state over the work items)",
        lines,
        vec![format!(
            "{transitions} transitions: {} per Map iteration × {children} work item(s) × {stages} stage(s), plus the fixed states",
            assume::SFN_TRANSITIONS_PER_ITERATION
        )],
    );

    // One SubmitJob per work item and stage (no array jobs): the submitter
    // runs at the SubmitJob rate limit, in as many 15-minute Lambdas as that takes.
    let submits = stages * children + 2;
    let submit_seconds = submits as f64 / assume::SUBMIT_PER_SECOND;
    let submit_lambdas = (submit_seconds / assume::LAMBDA_MAX_SECONDS).ceil().max(1.0);
    let others = lambda_seconds - seconds_of(&phases[1]);
    let mut lines = lambda_lines("trigger, submitters, alert", 2.0 + submit_lambdas, others + submit_seconds);
    lines.push(Line::new("SNS publishes (RunPlanned)", publishes, prices::SNS_PUBLISH));
    lines.extend(common());
    let naive = Design::new(
        "one SubmitJob per work item (no array jobs)",
        lines,
        vec![format!(
            "{submits} SubmitJob calls take {} at {} per second (AWS allows 50 per account), in {submit_lambdas} Lambda invocation(s); every job also pays its own scheduling and container start",
            human_seconds(submit_seconds),
            assume::SUBMIT_PER_SECOND
        )],
    );

    Ok(Estimate {
        pipeline: spec.name.clone(),
        items: input.items,
        sizing,
        stages,
        jobs,
        phases,
        designs: vec![ours, sfn, naive],
        assumptions: vec![
            format!("each API call from a Lambda takes {} ms; each invocation {} ms more", assume::API_CALL_MS, assume::INVOCATION_MS),
            format!("the run record is {} bytes + {} per job; a work item {} bytes + its units; a result {} bytes", assume::RECORD_BYTES, assume::RECORD_BYTES_PER_JOB, assume::WORK_ITEM_BYTES, assume::RESULT_BYTES),
            "the run succeeds: a failed run adds one alert (an SNS publish) and one alert-Lambda invocation per failed job".into(),
            {
                let (ticks, month) = reconcile_month(input.lambda_memory_mb, input.arch);
                format!("not per run: the alert Lambda's reconcile tick, every {} minutes, is {ticks} invocations a month per pipeline (${month:.4} when nothing waits)", assume::RECONCILE_MINUTES)
            },
        ],
        excluded: "compute: the Batch jobs' vCPU and memory time (EC2/Fargate), the same for every design; the jobs' own data (the rows and objects they read and write); storage (GB-month) and data transfer",
        prices: prices::SOURCE,
    })
}

/// The API calls of a successful run, by phase, as the code makes them.
pub fn phases(spec: &PipelineSpec, sizing: &Sizing, jobs: u64, stages: u64) -> Vec<Phase> {
    let children = sizing.children;
    let results = children * stages;
    let mut trigger = BTreeMap::new();
    // Claim the trigger's key, create the record and its index row, mark it planned.
    trigger.insert("DynamoDB.PutItem", 4);
    trigger.insert("DynamoDB.GetItem", 1);
    if spec.planner.stores_work_items() {
        trigger.insert("DynamoDB.BatchWriteItem", children.div_ceil(25));
    }
    trigger.insert("SNS.Publish", 1);
    match spec.planner {
        Planner::Lines { lines_per_item, header, ref columns } => {
            // The planner's check that the input exists (and, with columns,
            // its header row: a HEAD and a GET), then plan_lines' own HEAD and ranged GETs.
            let check = u64::from(header && !columns.is_empty());
            let bytes = sizing.units * lines_per_item * assume::LINE_BYTES;
            trigger.insert("S3.HeadObject", 2 + check);
            trigger.insert("S3.GetObject", bytes.div_ceil(crate::plan::lines::CHUNK_BYTES).max(1) + check);
        }
        Planner::Objects => {
            trigger.insert("S3.ListObjectsV2", sizing.units.div_ceil(1000).max(1));
        }
        Planner::Range { .. } | Planner::Custom { .. } => {}
    }
    let mut submit = BTreeMap::new();
    // Take the lease, then record the jobs: a read and a conditional write each.
    submit.insert("DynamoDB.PutItem", 2);
    submit.insert("DynamoDB.GetItem", 2);
    submit.insert("Batch.ListJobs", jobs.div_ceil(100).max(1));
    submit.insert("Batch.SubmitJob", jobs);
    let mut jobs_phase = BTreeMap::new();
    // Each child reads its work item (unless the run is a `range` run, whose
    // children compute theirs) and, after the first stage, the result of its
    // child of the stage before; then writes its result row. The run's
    // pointers come in its environment: no child reads the run record. The
    // aggregation reads the record; `batchfan job concat` queries each
    // stage's results, reads the last stage's outputs, lists the rejects,
    // writes the output and stores the summary (a read and a conditional
    // write); a pipeline's own aggregation is counted as a query of the last
    // stage's results and the output's write (what `fanout-sum` does: the
    // rest is its own data). Cleanup reads the record and lists the run's
    // objects (deleting them is free); the rows expire. Measured against the
    // job binaries on moto in `jobs/tests/e2e_aws.rs`.
    let item_reads = if spec.planner.stores_work_items() { results } else { 0 };
    let pages = |stages: u64| stages * kb(children * assume::RESULT_BYTES, 1 << 20);
    let concat = concat_aggregation(spec);
    jobs_phase.insert(
        "DynamoDB.GetItem",
        item_reads + children * stages.saturating_sub(1) + 1 + u64::from(concat) + 1,
    );
    jobs_phase.insert("DynamoDB.PutItem", results + u64::from(concat));
    jobs_phase.insert("DynamoDB.Query", if concat { pages(stages) } else { pages(1) });
    if concat {
        jobs_phase.insert("S3.GetObject", children);
    }
    jobs_phase.insert("S3.ListObjectsV2", 1 + u64::from(concat));
    jobs_phase.insert("S3.PutObject", 1);
    let mut alert = BTreeMap::new();
    // The cleanup's SUCCEEDED event: the run's final state.
    alert.insert("DynamoDB.GetItem", 2);
    alert.insert("DynamoDB.PutItem", 1);
    vec![
        Phase { name: "trigger Lambda (planner)", lambda: true, calls: trigger },
        Phase { name: "submit Lambda", lambda: true, calls: submit },
        Phase { name: "jobs (batchfan's reads and writes in them)", lambda: false, calls: jobs_phase },
        Phase { name: "alert Lambda", lambda: true, calls: alert },
    ]
}

/// Calls of every phase added up.
pub fn sum_calls(phases: &[Phase]) -> BTreeMap<&'static str, u64> {
    let mut all = BTreeMap::new();
    for p in phases {
        for (k, v) in &p.calls {
            *all.entry(*k).or_insert(0) += v;
        }
    }
    all
}

/// Whether the aggregation is batchfan's own `batchfan job concat`.
fn concat_aggregation(spec: &PipelineSpec) -> bool {
    spec.aggregation.command.iter().map(String::as_str).eq(crate::spec::DEFAULT_AGGREGATION_COMMAND)
}

/// Bytes of one planner unit in a work item.
fn unit_bytes(planner: &Planner) -> u64 {
    match planner {
        Planner::Range { .. } => 8,
        Planner::Lines { .. } => 40,
        Planner::Objects => 120,
        Planner::Custom { .. } => 60,
    }
}

/// `bytes` in units of `unit` bytes, at least one.
fn kb(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit).max(1)
}

fn human_seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn spec(text: &str) -> PipelineSpec {
        crate::spec::load_str(text, "cost.toml", Path::new(".")).expect("valid spec")
    }

    fn two_stages() -> PipelineSpec {
        spec("name = \"fan\"\n[planner]\nstrategy = \"range\"\n[[stages]]\nname = \"a\"\ncommand = [\"true\"]\n[[stages]]\nname = \"b\"\ncommand = [\"true\"]\n")
    }

    fn input(items: u64) -> CostInput {
        CostInput { items, items_per_child: None, lambda_memory_mb: 256, arch: Arch::Arm64 }
    }

    #[test]
    fn submit_jobs_follow_shards_and_stages_not_items() {
        let spec = two_stages();
        let submits = |items| {
            let e = estimate(&spec, &input(items)).unwrap();
            let all = sum_calls(&e.phases);
            assert_eq!(all["Batch.SubmitJob"], e.jobs, "one SubmitJob per job of the graph");
            (e.sizing.shards, all["Batch.SubmitJob"], all.get("DynamoDB.BatchWriteItem").copied())
        };
        // A range run stores no work items, and nothing is deleted: rows expire.
        assert_eq!(submits(10), (1, 4, None));
        assert_eq!(submits(10_000), (1, 4, None));
        // 100 shards a stage: 200 arrays, and 5 barriers fanning the last
        // stage's 100 into the aggregation (at most 20 dependencies a job).
        let (shards, jobs, _) = submits(1_000_000);
        assert_eq!((shards, jobs), (100, 2 * 100 + 5 + 2));
    }

    #[test]
    fn array_jobs_cost_less_than_a_map_state_and_submit_faster_than_one_job_per_item() {
        let e = estimate(&two_stages(), &input(1_000_000)).unwrap();
        let [ours, sfn, naive] = &e.designs[..] else { panic!("three designs") };
        let transitions = &sfn.lines[0];
        assert_eq!(transitions.quantity, (2 * 1_000_000 * 2 + 2 * 2 + 3) as f64);
        assert!((transitions.usd - 100.0).abs() < 0.01, "{transitions:?}");
        assert!(ours.usd * 10.0 < sfn.usd, "{} vs {}", ours.usd, sfn.usd);
        assert!(ours.usd < naive.usd, "{} vs {}", ours.usd, naive.usd);
        assert!(naive.notes[0].contains("2000002 SubmitJob calls take 13.9 h"), "{:?}", naive.notes);
        let lambda_requests = &ours.lines[0];
        assert_eq!(lambda_requests.quantity, 3.0);
        assert!(e.excluded.starts_with("compute"));
    }

    #[test]
    fn stored_work_items_are_written_once_and_read_once_a_stage_and_never_deleted() {
        let lines = spec("name = \"p\"\n[planner]\nstrategy = \"lines\"\nlines_per_item = 1\n[[stages]]\nname = \"a\"\ncommand = [\"true\"]\n[[stages]]\nname = \"b\"\ncommand = [\"true\"]\n");
        let e = estimate(&lines, &input(10_000)).unwrap();
        let all = sum_calls(&e.phases);
        assert_eq!(all["DynamoDB.BatchWriteItem"], 400, "10,000 items planned 25 a call, none deleted");
        let jobs = &e.phases[2].calls;
        // 10,000 item reads a stage, 10,000 reads of stage a's results by b,
        // the aggregation's record and summary reads, cleanup's record read.
        assert_eq!(jobs["DynamoDB.GetItem"], 2 * 10_000 + 10_000 + 3);
        assert_eq!(jobs["DynamoDB.PutItem"], 2 * 10_000 + 1);
        // 10,000 × 200-byte results a stage: two 1 MB pages each.
        assert_eq!(jobs["DynamoDB.Query"], 4);
        assert_eq!(jobs["S3.GetObject"], 10_000, "concat reads every last-stage output");

        // A range run with its own aggregation: no item rows, no output reads.
        let mut own = two_stages();
        own.aggregation.command = vec!["fanout-sum".into()];
        let e = estimate(&own, &input(10_000)).unwrap();
        let jobs = &e.phases[2].calls;
        assert_eq!(jobs["DynamoDB.GetItem"], 10_000 + 2);
        assert_eq!((jobs["DynamoDB.PutItem"], jobs["DynamoDB.Query"]), (2 * 10_000, 2));
        assert_eq!(jobs.get("S3.GetObject"), None);
    }

    #[test]
    fn fanout_of_a_million_units_costs_at_most_fifteen_cents_to_orchestrate() {
        let fanout =
            crate::spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/fanout.toml")).unwrap();
        let e = estimate(&fanout, &input(1_000_000)).unwrap();
        let ours = &e.designs[0];
        // 200,000 result rows (one write unit each) are most of it; the rest
        // is 2 small rows and 6 writes of the 3 KB run record.
        assert_eq!(
            ours.lines.iter().find(|l| l.what.contains("write")).unwrap().quantity,
            200_000.0 + 2.0 + 18.0
        );
        assert!(ours.usd <= 0.15, "{ours:#?}");
    }

    #[test]
    fn lines_are_planned_lines_per_item_to_a_unit() {
        let spec = spec("name = \"orders\"\n[planner]\nstrategy = \"lines\"\nlines_per_item = 30000\n[[stages]]\nname = \"confirm\"\ncommand = [\"true\"]\n");
        let e = estimate(&spec, &input(1_000_000)).unwrap();
        assert_eq!((e.items, e.sizing.units, e.sizing.children), (1_000_000, 34, 34));
        let trigger = &e.phases[0].calls;
        assert_eq!(trigger["S3.HeadObject"], 2);
        // 34 units of 30,000 100-byte lines in 8 MiB ranged GETs.
        assert_eq!(trigger["S3.GetObject"], 13);
        // Checking the header row's columns: a HEAD and a GET more.
        let checked = self::spec("name = \"orders\"\n[planner]\nstrategy = \"lines\"\nlines_per_item = 30000\nheader = true\ncolumns = [\"id\"]\n[[stages]]\nname = \"confirm\"\ncommand = [\"true\"]\n");
        let trigger = &estimate(&checked, &input(1_000_000)).unwrap().phases[0].calls;
        assert_eq!((trigger["S3.HeadObject"], trigger["S3.GetObject"]), (3, 14));
    }

    #[test]
    fn the_reconcile_tick_is_a_fixed_monthly_cost_of_under_a_cent() {
        let (ticks, month) = reconcile_month(256, Arch::Arm64);
        assert_eq!(ticks, 8_640);
        assert!(month > 0.003 && month < 0.01, "{month}");
        let e = estimate(&two_stages(), &input(10_000)).unwrap();
        assert!(e.assumptions.iter().any(|a| a.contains("8640 invocations a month")), "{:?}", e.assumptions);
    }

    #[test]
    fn zero_items_per_child_is_refused_with_the_fix() {
        let mut i = input(10);
        i.items_per_child = Some(0);
        let err = estimate(&two_stages(), &i).unwrap_err().to_string();
        assert!(err.contains("--items-per-child 0") && err.contains("e.g. --items-per-child 100"), "{err}");
    }
}
