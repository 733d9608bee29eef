//! Contract suites: one set of scenarios per port, run unchanged against every
//! implementation (the local adapters here, the AWS adapters against an
//! AWS-compatible server), so the backends cannot drift apart.
//!
//! A backend provides an environment per suite ([`table::TableEnv`],
//! [`objects::ObjectsEnv`], [`topic::TopicEnv`]): the port, a way to get a
//! fresh, empty table / bucket / topic (each test uses its own, so tests run
//! in parallel against one server), and for topics a probe that observes
//! deliveries. Then one line per suite expands a `#[tokio::test]` per
//! scenario (multi-threaded runtime, two workers). The environment expression
//! is pasted into each test's body, so it may `.await`, and may `return` to
//! skip the test (e.g. when no server is configured):
//!
//! ```ignore
//! mod contract;
//! mod table { crate::contract::table_contract!(crate::local_table()); }
//! mod aws_table {
//!     crate::contract::table_contract!(match crate::aws_table().await {
//!         Some(env) => env,
//!         None => return, // no AWS endpoint configured: skip
//!     });
//! }
//! ```
//!
//! Scenarios use only the port traits and rules both backends share; a
//! behaviour only one backend has belongs in that backend's own tests.

// No `allow(dead_code)`: a scenario missing from its macro's list warns as unused.

pub mod objects;
pub mod table;
pub mod topic;

/// A name no other test uses: `{prefix}-{16 random hex digits}` (valid as a
/// DynamoDB table, S3 bucket and SNS topic name when `prefix` is lowercase).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Runs futures concurrently on the current task (no `futures` crate needed),
/// returning their outputs in order.
pub async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in set.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future completed")).collect()
}

/// Expands one `#[tokio::test]` per scenario of `$suite`, each with its own
/// environment built by `$env`.
macro_rules! contract_tests {
    ($suite:ident, $env:expr, [$($scenario:ident),+ $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let env = $env;
                $crate::contract::$suite::$scenario(&env).await;
            }
        )+
    };
}

/// Every Table scenario, for the [`table::TableEnv`] built by `$env`.
macro_rules! table_contract {
    ($env:expr) => {
        $crate::contract::contract_tests!(
            table,
            $env,
            [
                round_trip_nested_attrs_and_numbers,
                get_missing_is_none,
                unconditional_put_overwrites,
                condition_not_exists,
                condition_equals,
                condition_not_exists_or_equals,
                racing_not_exists_has_one_winner,
                racing_compare_and_swap_loses_no_update,
                put_batch_then_query_in_order,
                put_rows_stores_what_put_batch_stores,
                query_does_not_leak_other_partitions,
                delete_is_idempotent,
                delete_batch_is_idempotent,
                invalid_table_names_rejected,
                empty_keys_rejected,
                key_named_attributes_rejected,
                oversize_item_rejected,
            ]
        );
    };
}

/// Every Objects scenario, for the [`objects::ObjectsEnv`] built by `$env`.
macro_rules! objects_contract {
    ($env:expr) => {
        $crate::contract::contract_tests!(
            objects,
            $env,
            [
                put_get_head,
                overwrite_changes_etag,
                get_range_clamps,
                list_prefix_in_key_order,
                list_follows_pages,
                delete_is_idempotent,
                missing_object_is_not_found,
                put_file_of_several_mib,
                concat_joins_parts_in_order,
                invalid_names_rejected,
            ]
        );
    };
}

/// Every Topic scenario, for the [`topic::TopicEnv`] built by `$env`.
macro_rules! topic_contract {
    ($env:expr) => {
        $crate::contract::contract_tests!(
            topic,
            $env,
            [
                publish_returns_distinct_ids,
                subject_and_attributes_reach_subscriber,
                every_message_is_delivered,
                large_body_is_delivered_intact,
                oversize_message_rejected,
            ]
        );
    };
}

pub(crate) use {contract_tests, objects_contract, table_contract, topic_contract};
