//! The job graph: shards, N_TO_N and SEQUENTIAL chains, barriers, requests, limits.

use std::{collections::HashSet, path::Path};

use batchfan::{
    batch::{DependencyKind, JobDependency},
    graph::{self, check_limits, GraphError, JobGraph, NodeDep, Role},
    plan::Sizing,
    spec::{self, PipelineSpec},
};
use rstest::rstest;

fn pipeline(stages: &[(&str, &str)]) -> PipelineSpec {
    let mut text = String::from("name = \"p\"\n[planner]\nstrategy = \"range\"\n");
    for (name, dep) in stages {
        text +=
            &format!("[[stages]]\nname = \"{name}\"\ncommand = [\"{name}-cmd\"]\ndependency = \"{dep}\"\n");
    }
    spec::load_str(&text, "p.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn sized(children: u64) -> Sizing {
    Sizing::new(children, 1, 10_000)
}

/// Checks what must hold of every graph, and returns it.
fn checked(spec: &PipelineSpec, run: &str, sizing: &Sizing) -> JobGraph {
    let g = graph::build(spec, run, sizing).unwrap();
    assert_eq!(graph::build(spec, run, sizing).unwrap(), g, "same inputs, same graph");
    let mut seen = HashSet::new();
    for node in &g.nodes {
        assert!(node.depends_on.len() <= 20, "{} has {} deps", node.name, node.depends_on.len());
        for dep in &node.depends_on {
            match &dep.node {
                Some(d) => {
                    assert!(seen.contains(d.as_str()), "{} depends on later or unknown {d}", node.name)
                }
                None => assert_eq!(dep.kind, DependencyKind::Sequential),
            }
        }
        assert!(seen.insert(node.name.as_str()), "duplicate name {}", node.name);
        if let Some(n) = node.array_size {
            assert!((2..=10_000).contains(&n), "{} has array size {n}", node.name);
        }
    }
    assert_eq!(check_limits(spec, &g), Vec::<String>::new());
    g
}

fn names(g: &JobGraph) -> Vec<&str> {
    g.nodes.iter().map(|n| n.name.as_str()).collect()
}

fn standard(name: &str) -> NodeDep {
    NodeDep { node: Some(name.into()), kind: DependencyKind::Standard }
}

#[rstest]
#[case::empty(0, &[])]
#[case::one_child_is_a_plain_job(1, &[None])]
#[case::two(2, &[Some(2)])]
#[case::ten_thousand(10_000, &[Some(10_000)])]
#[case::ten_thousand_one(10_001, &[Some(5_001), Some(5_000)])]
#[case::twenty_five_thousand(25_000, &[Some(8_334), Some(8_334), Some(8_332)])]
fn one_stage_shards(#[case] children: u64, #[case] arrays: &[Option<u32>]) {
    let spec = pipeline(&[("s", "n_to_n")]);
    let g = checked(&spec, "r1", &sized(children));
    let stage_nodes: Vec<_> = g.nodes.iter().filter(|n| matches!(n.role, Role::Stage { .. })).collect();
    assert_eq!(stage_nodes.iter().map(|n| n.array_size).collect::<Vec<_>>(), arrays);
    let mut first = 0;
    for (j, n) in stage_nodes.iter().enumerate() {
        assert_eq!(n.name, format!("p-r1-s-{j}"));
        let children = u64::from(n.array_size.unwrap_or(1));
        assert_eq!(n.role, Role::Stage { stage: 0, shard: j as u64, first_child: first, children });
        assert_eq!(n.env["BATCHFAN_INDEX_OFFSET"], first.to_string());
        assert!(n.depends_on.is_empty());
        first += children;
    }
    assert_eq!(first, children);
    let agg = g.node("p-r1-aggregate").unwrap();
    assert_eq!(agg.depends_on, stage_nodes.iter().map(|n| standard(&n.name)).collect::<Vec<_>>());
    assert_eq!(g.nodes.last().unwrap().name, "p-r1-cleanup");
    assert_eq!(g.nodes.last().unwrap().depends_on, [standard("p-r1-aggregate")]);
    assert_eq!(g.nodes.len(), arrays.len() + 2);
}

#[test]
fn twenty_five_shards_wait_through_barriers() {
    let spec = pipeline(&[("s", "n_to_n")]);
    let g = checked(&spec, "r1", &sized(250_000));
    let barriers: Vec<_> = g.nodes.iter().filter(|n| matches!(n.role, Role::Barrier { .. })).collect();
    assert_eq!(names(&g)[25..], ["p-r1-barrier-0-0", "p-r1-barrier-0-1", "p-r1-aggregate", "p-r1-cleanup"]);
    assert_eq!(barriers[0].depends_on.len(), 20);
    assert_eq!(barriers[1].depends_on.len(), 5);
    assert_eq!(barriers[0].job.command, ["batchfan", "job", "barrier"]);
    assert_eq!(barriers[0].array_size, None);
    assert_eq!(barriers[0].env["BATCHFAN_ROLE"], "barrier");
    let agg = g.node("p-r1-aggregate").unwrap();
    assert_eq!(agg.depends_on, [standard("p-r1-barrier-0-0"), standard("p-r1-barrier-0-1")]);
}

#[test]
fn four_hundred_shards_need_two_levels_behind_a_sequential_stage() {
    let spec = pipeline(&[("a", "n_to_n"), ("b", "sequential")]);
    let sizing = sized(4_000_000);
    assert_eq!(sizing.shards, 400);
    let g = checked(&spec, "r", &sizing);
    let b0 = g.node("p-r-b-0").unwrap();
    // SEQUENTIAL plus barriers: 400 shards → 20 barriers → over the budget of 19 → 1 barrier.
    assert_eq!(b0.depends_on[0].kind, DependencyKind::Sequential);
    assert_eq!(b0.depends_on[1..], [standard("p-r-barrier-1-0")]);
    let b1 = g.node("p-r-b-1").unwrap();
    assert_eq!(
        b1.depends_on,
        [NodeDep { node: None, kind: DependencyKind::Sequential }, standard("p-r-b-0")]
    );
    // The aggregation waits on b's 400 shards through 20 more level-0 barriers.
    let agg = g.node("p-r-aggregate").unwrap();
    assert_eq!(agg.depends_on.len(), 20);
    assert_eq!(agg.depends_on[0], standard("p-r-barrier-0-20"));
}

#[test]
fn n_to_n_stages_chain_shard_by_shard() {
    let spec = pipeline(&[("a", "n_to_n"), ("b", "n_to_n"), ("c", "n_to_n")]);
    let g = checked(&spec, "r", &sized(25_000));
    for j in 0..3 {
        let b = g.node(&format!("p-r-b-{j}")).unwrap();
        assert_eq!(b.depends_on, [NodeDep { node: Some(format!("p-r-a-{j}")), kind: DependencyKind::NToN }]);
        let c = g.node(&format!("p-r-c-{j}")).unwrap();
        assert_eq!(c.depends_on, [NodeDep { node: Some(format!("p-r-b-{j}")), kind: DependencyKind::NToN }]);
        assert_eq!(c.env["BATCHFAN_STAGE"], "c");
    }
    let agg = g.node("p-r-aggregate").unwrap();
    assert_eq!(agg.depends_on, [standard("p-r-c-0"), standard("p-r-c-1"), standard("p-r-c-2")]);
}

#[test]
fn plain_jobs_chain_with_standard_dependencies() {
    let spec = pipeline(&[("a", "n_to_n"), ("b", "n_to_n"), ("c", "sequential")]);
    let g = checked(&spec, "r", &sized(1));
    assert_eq!(names(&g), ["p-r-a-0", "p-r-b-0", "p-r-c-0", "p-r-aggregate", "p-r-cleanup"]);
    assert_eq!(g.nodes[1].depends_on, [standard("p-r-a-0")]);
    assert_eq!(g.nodes[2].depends_on, [standard("p-r-b-0")], "no SEQUENTIAL on a plain job");
}

#[test]
fn sequential_stages_run_shards_one_after_another() {
    let spec = pipeline(&[("a", "sequential"), ("b", "sequential")]);
    let g = checked(&spec, "r", &sized(25_000));
    let seq = NodeDep { node: None, kind: DependencyKind::Sequential };
    assert_eq!(g.node("p-r-a-0").unwrap().depends_on, std::slice::from_ref(&seq));
    assert_eq!(g.node("p-r-a-2").unwrap().depends_on, [seq.clone(), standard("p-r-a-1")]);
    let b0 = &g.node("p-r-b-0").unwrap().depends_on;
    assert_eq!(*b0, [seq.clone(), standard("p-r-a-0"), standard("p-r-a-1"), standard("p-r-a-2")]);
    assert_eq!(g.node("p-r-b-1").unwrap().depends_on, [seq, standard("p-r-b-0")]);
}

#[test]
fn empty_runs_have_no_stage_jobs() {
    let spec = pipeline(&[("a", "n_to_n"), ("b", "sequential")]);
    let g = checked(&spec, "r", &sized(0));
    assert_eq!(names(&g), ["p-r-aggregate", "p-r-cleanup"]);
    assert!(g.nodes[0].depends_on.is_empty());
}

#[test]
fn env_holds_pointers_only() {
    let spec = pipeline(&[("a", "n_to_n")]);
    let g = checked(&spec, "r9", &sized(5));
    let keys = |i: usize| g.nodes[i].env.keys().cloned().collect::<Vec<_>>();
    let pointers = [
        "BATCHFAN_BUCKET",
        "BATCHFAN_PIPELINE",
        "BATCHFAN_ROLE",
        "BATCHFAN_RUN",
        "BATCHFAN_SCRATCH_DAYS",
        "BATCHFAN_STAGES",
        "BATCHFAN_TABLE",
    ];
    let mut stage = pointers.to_vec();
    stage.extend(["BATCHFAN_INDEX_OFFSET", "BATCHFAN_STAGE"]);
    stage.sort();
    assert_eq!(keys(0), stage);
    assert_eq!(keys(1), pointers, "aggregation");
    assert_eq!(g.nodes[0].env["BATCHFAN_RUN"], "r9");
    assert_eq!(g.nodes[0].env["BATCHFAN_BUCKET"], "batchfan-p");
    assert_eq!(g.nodes[2].env["BATCHFAN_ROLE"], "cleanup");
}

#[test]
fn nodes_become_submit_requests() {
    let spec = pipeline(&[("a", "n_to_n"), ("b", "sequential")]);
    let g = checked(&spec, "r", &sized(3));
    let ids = |name: &str| Some(format!("id-{name}"));
    let b = g.node("p-r-b-0").unwrap().to_submit(&spec, ids).unwrap();
    assert_eq!(
        (b.job_name.as_str(), b.job_queue.as_str(), b.job_definition.as_str()),
        ("p-r-b-0", "batchfan-p", "p-b")
    );
    assert_eq!(b.array_size, Some(3));
    assert_eq!(b.depends_on, [JobDependency::sequential(), JobDependency::on("id-p-r-a-0")]);
    assert_eq!(b.container.command, ["b-cmd"]);
    assert_eq!(b.container.environment["BATCHFAN_STAGE"], "b");
    assert_eq!(b.retry_strategy, spec.stages[1].job.retry);
    let tag = |k: &str| b.tags.get(k).map(String::as_str);
    assert_eq!((tag("batchfan:pipeline"), tag("batchfan:run")), (Some("p"), Some("r")));
    assert_eq!((tag("batchfan:role"), tag("batchfan:stage")), (Some("stage"), Some("b")));
    let body = batchfan::batch::aws_request_json(&b);
    assert_eq!(body["containerOverrides"]["environment"][0]["name"], "BATCHFAN_BUCKET");
    assert_eq!(body["containerOverrides"]["resourceRequirements"][1]["value"], "2048");
    assert_eq!(body["arrayProperties"]["size"], 3);
    assert_eq!(body["dependsOn"][0]["type"], "SEQUENTIAL");
    let agg = g.node("p-r-aggregate").unwrap().to_submit(&spec, ids).unwrap();
    assert_eq!(agg.job_definition, "p-aggregation");
    assert_eq!(agg.tags.get("batchfan:stage"), None);
    let cleanup = g.node("p-r-cleanup").unwrap();
    assert_eq!(cleanup.to_submit(&spec, ids).unwrap().job_definition, "p-cleanup");
    let err = cleanup.to_submit(&spec, |_| None).unwrap_err();
    assert_eq!(err, GraphError::Unresolved { job: "p-r-cleanup".into(), dependency: "p-r-aggregate".into() });
    assert!(err.to_string().contains("submit p-r-aggregate first"));
}

#[test]
fn bad_run_ids_are_refused() {
    let spec = pipeline(&[("a", "n_to_n")]);
    let err = graph::build(&spec, "bad id", &sized(2)).unwrap_err();
    assert!(matches!(&err, GraphError::Name(m) if m.contains("\"bad id\"")), "{err}");
    assert!(graph::build(&spec, &"r".repeat(120), &sized(2)).is_err());
}

#[test]
fn limits_name_the_job_and_the_fix() {
    let spec = pipeline(&[("a", "n_to_n")]);
    // A hand-made sizing past AWS's array limit.
    let too_big =
        Sizing { units: 10_001, items_per_child: 1, children: 10_001, shard_size: 10_001, shards: 1 };
    let g = graph::build(&spec, "r", &too_big).unwrap();
    let errs = check_limits(&spec, &g);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("job p-r-a-0 has array size 10001"), "{}", errs[0]);
    assert!(errs[0].contains("max_array_size"), "{}", errs[0]);

    let mut g = checked(&spec, "r", &sized(3));
    g.nodes[1].depends_on = (0..21).map(|_| standard("p-r-a-0")).collect();
    g.nodes[0].env.insert("BIG".into(), "x".repeat(31_000));
    let errs = check_limits(&spec, &g);
    assert!(errs
        .iter()
        .any(|e| e.starts_with("job p-r-aggregate has 21 dependencies, over the AWS limit of 20")));
    assert!(errs.iter().any(|e| e.starts_with("job p-r-a-0: container overrides would be")));
    assert!(errs.iter().any(|e| e.starts_with("job p-r-a-0: the SubmitJob request would be")));

    g.nodes.swap(0, 1);
    let errs = check_limits(&spec, &g);
    assert!(errs.iter().any(|e| e.contains("depends on p-r-a-0, which is not an earlier job")), "{errs:#?}");
}

#[test]
fn shipped_examples_make_valid_graphs() {
    for file in ["orders.toml", "fanout.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs").join(file);
        let spec = spec::load(&path).unwrap();
        for children in [0, 1, 1000, 250_000] {
            checked(&spec, "20260101t000000-abcdef", &Sizing::new(children, 1, spec.max_array_size));
        }
    }
}
