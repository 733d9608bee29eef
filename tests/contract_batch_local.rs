//! The Batch port's contract scenarios, run against the local engine.

#[path = "contract/batch.rs"]
mod contract;

use batchfan::engine::{EngineConfig, LocalEngine, ShutdownMode};

/// One `#[tokio::test]` per scenario, each on a fresh engine.
macro_rules! local_batch_contract {
    ($($scenario:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $scenario() {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut config = EngineConfig::new(dir.path());
            (config.vcpus, config.memory_mib) = (4.0, 4096);
            let engine = LocalEngine::open(config).await.expect("engine opens");
            contract::$scenario(&engine, &contract::Fixture::new("local", "contract")).await;
            engine.shutdown(ShutdownMode::Abandon).await;
        }
    )*};
}

local_batch_contract!(
    submit_plain_and_describe,
    submit_array_and_describe_parent_and_child,
    describe_omits_unknown_ids,
    list_by_name_with_trailing_star,
    list_array_children,
    depends_on_is_recorded,
    cancel_a_waiting_job,
    limits_are_rejected,
    dependency_failure_cascades,
    exit_75_is_retried,
);
