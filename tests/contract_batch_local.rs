//! The Batch port's contract scenarios, run against the local engine.

use crate::contract_batch as contract;

use batchfan::engine::{EngineConfig, LocalEngine, ShutdownMode};

/// One `#[tokio::test]` per scenario, each on a fresh engine.
macro_rules! local_batch_contract {
    ($($scenario:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $scenario() {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut config = EngineConfig::new(dir.path());
            (config.vcpus, config.memory_mib) = (4.0, 4096);
            // Timeouts (60 s at least, as on AWS) pass in 0.6 s.
            config.time_scale = 0.01;
            let engine = LocalEngine::open(config).await.expect("engine opens");
            contract::$scenario(&engine, &contract::Fixture::new("local", "contract")).await;
            engine.shutdown(ShutdownMode::Abandon).await;
        }
    )*};
}

batch_scenarios!(local_batch_contract);
batch_scenarios_that_run_jobs!(local_batch_contract);
