//! The orders example deployed as a user deploys it — `terraform apply` of
//! `terraform/examples/orders` with every trigger on, to moto server and
//! `batchfan batch-api`, with the zips of `scripts/package-lambdas.sh` — and
//! runs through it: every event delivered along the routes read back from the
//! deployment to the real Lambda binaries (tests/lambda_support: `deployed`,
//! `routes`, `router`), the jobs run by batch-api. ONE apply for every
//! scenario (it takes minutes); the re-plan after apply shows no changes and
//! the destroy at the end leaves an empty state. `scripts/deployed-e2e.sh`
//! runs only this.

use crate::lambda_support;

#[path = "deployed/scenarios.rs"]
mod scenarios;
#[path = "deployed/triggers.rs"]
mod triggers;

use lambda_support::{deployed::Deployment, router::Router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_orders_example_runs_uploads_failures_duplicates_webhooks_and_schedules() {
    let started = std::time::Instant::now();
    let d = Deployment::apply().await;
    let applied = started.elapsed();
    let mut r = Router::new(&d).await;
    let wiring = scenarios::wiring(&r).await;
    let alerts = d.fx.subscribe_queue(&wiring.alerts_topic).await;

    let mut figures = vec![("terraform apply (with the servers and packaging)", applied)];
    let t = std::time::Instant::now();
    scenarios::upload_of_100k_rows_succeeds(&mut r, &wiring).await;
    figures.push(("100,000-row upload run", t.elapsed()));
    let t = std::time::Instant::now();
    scenarios::a_failed_child_fails_the_run_with_one_alert(&mut r, &wiring, &alerts).await;
    figures.push(("failed run", t.elapsed()));
    let t = std::time::Instant::now();
    scenarios::duplicated_events_start_one_run(&mut r, &wiring).await;
    figures.push(("duplicated events run", t.elapsed()));
    let t = std::time::Instant::now();
    triggers::signed_webhooks_start_one_run_and_bad_ones_none(&mut r, &wiring).await;
    figures.push(("webhook run", t.elapsed()));
    let t = std::time::Instant::now();
    triggers::a_tick_starts_a_run_and_the_next_is_skipped_while_it_runs(&mut r, &wiring).await;
    figures.push(("schedule runs", t.elapsed()));
    let t = std::time::Instant::now();
    triggers::with_overlap_queue_a_tick_held_while_a_run_goes_starts_when_it_ends(&mut r, &wiring).await;
    figures.push(("spec update + queued schedule runs", t.elapsed()));
    let dead: Vec<_> = r.invocations.iter().filter(|(_, i)| i.dead_letter.is_some()).collect();
    assert!(dead.is_empty(), "no event may end in a dead-letter queue: {dead:#?}");
    drop(r);
    let t = std::time::Instant::now();
    scenarios::empty_bucket(&d, &wiring.bucket).await;
    d.destroy();
    figures.push(("terraform destroy", t.elapsed()));
    for (what, took) in figures {
        eprintln!("figure: {what}: {:.1} s", took.as_secs_f64());
    }
}
