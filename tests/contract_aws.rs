//! The Table, Objects and Topic contract suites — the same scenarios as
//! `contract_local.rs` — against the AWS adapters (DynamoDB, S3, SNS) on a moto
//! server. Each test starts its own server (see support/moto.rs); resources are
//! created through the SDK, never through the adapters under test. Deliveries
//! are observed through an SQS queue subscribed to the SNS topic.

use crate::aws_fixtures;
use crate::contract;
use crate::moto;

use std::{collections::VecDeque, time::Duration};

use async_trait::async_trait;
use aws_fixtures::Fixtures;
use batchfan::{
    aws::{AwsClients, AwsTable, S3Objects, SnsTopic},
    objects::Objects,
    table::Table,
    topic::Topic,
};
use contract::{
    objects::ObjectsEnv,
    table::TableEnv,
    topic::{Probe, Received, TopicEnv},
    unique,
};
use moto::Moto;

struct AwsEnv {
    fixtures: Fixtures,
    table: AwsTable,
    objects: S3Objects,
    topic: SnsTopic,
    // Last: the server stops after the clients are gone.
    _moto: Moto,
}

fn aws_env() -> AwsEnv {
    let moto = Moto::start();
    let clients = AwsClients::from_sdk_config(&moto.sdk_config(), moto.settings()).expect("clients");
    AwsEnv {
        fixtures: Fixtures::new(&moto.sdk_config()),
        table: clients.table(),
        objects: clients.objects(),
        topic: clients.topic(),
        _moto: moto,
    }
}

#[async_trait]
impl TableEnv for AwsEnv {
    fn table(&self) -> &dyn Table {
        &self.table
    }
    async fn fresh_table(&self) -> String {
        let name = unique("table");
        self.fixtures.create_table(&name).await;
        name
    }
}

#[async_trait]
impl ObjectsEnv for AwsEnv {
    fn objects(&self) -> &dyn Objects {
        &self.objects
    }
    async fn fresh_bucket(&self) -> String {
        let name = unique("bucket");
        self.fixtures.create_bucket(&name).await;
        name
    }
}

/// An SQS queue subscribed to the topic.
struct SqsProbe {
    fixtures: Fixtures,
    queue_url: String,
    ready: VecDeque<Received>,
}

#[async_trait]
impl Probe for SqsProbe {
    async fn recv(&mut self, within: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + within;
        while self.ready.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let wait = left.min(Duration::from_secs(1));
            for d in self.fixtures.receive(&self.queue_url, wait).await {
                self.ready.push_back(Received { message_id: d.message_id, message: d.message });
            }
        }
        self.ready.pop_front()
    }
}

#[async_trait]
impl TopicEnv for AwsEnv {
    fn topic(&self) -> &dyn Topic {
        &self.topic
    }
    async fn fresh_topic(&self) -> String {
        self.fixtures.create_topic(&unique("topic")).await
    }
    async fn probe(&self, topic: &str) -> Box<dyn Probe> {
        let queue_url = self.fixtures.subscribe_queue(topic).await;
        Box::new(SqsProbe { fixtures: self.fixtures.clone(), queue_url, ready: VecDeque::new() })
    }
}

mod table {
    crate::contract::table_contract!(super::aws_env());
}

mod objects {
    crate::contract::objects_contract!(super::aws_env());
}

mod topic {
    crate::contract::topic_contract!(super::aws_env());
}
