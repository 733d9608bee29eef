//! ListJobs paging through aws-sdk-batch: 250 jobs of a queue by status in
//! pages of 100, a JOB_NAME filter capped at 100 a page, and the 250
//! children of an array by arrayJobId with the SDK's paginator.

use std::collections::BTreeSet;

use aws_sdk_batch::types::{ArrayProperties, JobDependency, JobStatus};

use super::batch_api_support::{register_sh, wait_done, Server, QUEUE};

fn array(n: i32) -> ArrayProperties {
    ArrayProperties::builder().size(n).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_jobs_pages_over_250_jobs_without_loss_or_duplicates() {
    let server = Server::start();
    let client = server.client();
    server.setup(&client).await;
    register_sh(&client, "long", "exec sleep 600", &server.out()).await;
    let blocker =
        client.submit_job().job_name("blocker").job_queue(QUEUE).job_definition("long").send().await;
    let blocker = blocker.expect("submit blocker").job_id().unwrap().to_string();
    let mut submitted = BTreeSet::new();
    for i in 0..250 {
        let job = client
            .submit_job()
            .job_name(format!("waiter-{i}"))
            .job_queue(QUEUE)
            .job_definition("long")
            .depends_on(JobDependency::builder().job_id(&blocker).build())
            .send()
            .await
            .expect("submit waiter");
        submitted.insert(job.job_id().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_jobs()
            .job_queue(QUEUE)
            .job_status(JobStatus::Pending)
            .max_results(100)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("list jobs");
        pages += 1;
        seen.extend(page.job_summary_list().iter().map(|j| j.job_id().unwrap().to_string()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250, "no duplicates");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), submitted);
    // A JOB_NAME filter lists every status, a trailing '*' by prefix, at most 100 a page (AWS's cap).
    let filter = aws_sdk_batch::types::KeyValuesPair::builder().name("JOB_NAME").values("WAITER-1*").build();
    let first = client.list_jobs().job_queue(QUEUE).filters(filter.clone()).max_results(1000).send().await;
    let first = first.expect("list by name");
    assert_eq!(first.job_summary_list().len(), 100);
    let rest = client
        .list_jobs()
        .job_queue(QUEUE)
        .filters(filter)
        .set_next_token(first.next_token().map(str::to_string))
        .send()
        .await
        .expect("second page by name");
    assert_eq!(rest.job_summary_list().len() + 100, 111, "waiter-1, waiter-10..19, waiter-100..199");
    assert!(rest.next_token().is_none());
    // The children of an array, by arrayJobId: 250 in 3 pages.
    let arr = client
        .submit_job()
        .job_name("many")
        .job_queue(QUEUE)
        .job_definition("long")
        .array_properties(array(250))
        .depends_on(JobDependency::builder().job_id(&blocker).build())
        .send()
        .await
        .expect("submit array");
    let arr = arr.job_id().unwrap().to_string();
    let pages = client
        .list_jobs()
        .array_job_id(&arr)
        .job_status(JobStatus::Pending)
        .max_results(100)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("list children");
    let children: BTreeSet<String> =
        pages.iter().flat_map(|p| p.job_summary_list()).map(|j| j.job_id().unwrap().to_string()).collect();
    assert_eq!(pages.len(), 3);
    assert_eq!(children, (0..250).map(|i| format!("{arr}:{i}")).collect::<BTreeSet<_>>());
    client.terminate_job().job_id(&blocker).reason("done").send().await.expect("terminate blocker");
    assert_eq!(wait_done(&client, &arr).await.status(), Some(&JobStatus::Failed));
}
