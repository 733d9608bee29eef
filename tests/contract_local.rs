//! The contract suites against the local adapters: SQLite table, directory
//! objects, in-process bus. Each test gets its own temp directory.

use crate::contract;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use batchfan::{
    objects::{dir::DirObjects, Objects},
    table::{
        relay::{RelayServer, RelayTable},
        sqlite::SqliteTable,
        Table,
    },
    topic::{
        bus::{Bus, BusConfig, Delivery, DeliveryError, Subscriber},
        Topic,
    },
};
use contract::{
    objects::ObjectsEnv,
    table::TableEnv,
    topic::{Probe, Received, TopicEnv},
    unique,
};
use tempfile::TempDir;
use tokio::sync::mpsc;

struct LocalTable {
    table: SqliteTable,
    _dir: TempDir,
}

fn local_table() -> LocalTable {
    let dir = tempfile::tempdir().expect("temp dir");
    LocalTable { table: SqliteTable::open(dir.path()).expect("open the table store"), _dir: dir }
}

#[async_trait]
impl TableEnv for LocalTable {
    fn table(&self) -> &dyn Table {
        &self.table
    }
    async fn fresh_table(&self) -> String {
        unique("table")
    }
}

/// The table as a local job sees batchfan's: through the service's relay.
struct RelayedTable {
    table: RelayTable,
    _server: RelayServer,
    _dir: TempDir,
}

fn relayed_table() -> RelayedTable {
    let dir = tempfile::tempdir().expect("temp dir");
    let tables = SqliteTable::open(&dir.path().join("tables")).expect("open the table store");
    let server =
        RelayServer::start(&dir.path().join("relay"), tables.clone()).expect("listen").expect("short path");
    RelayedTable { table: RelayTable::new(server.path(), tables), _server: server, _dir: dir }
}

#[async_trait]
impl TableEnv for RelayedTable {
    fn table(&self) -> &dyn Table {
        &self.table
    }
    async fn fresh_table(&self) -> String {
        unique("table")
    }
}

struct LocalObjects {
    objects: DirObjects,
    _dir: TempDir,
}

fn local_objects() -> LocalObjects {
    let dir = tempfile::tempdir().expect("temp dir");
    LocalObjects { objects: DirObjects::new(dir.path()), _dir: dir }
}

#[async_trait]
impl ObjectsEnv for LocalObjects {
    fn objects(&self) -> &dyn Objects {
        &self.objects
    }
    async fn fresh_bucket(&self) -> String {
        unique("bucket")
    }
}

struct LocalTopic {
    bus: Bus,
    _dir: TempDir,
}

async fn local_topic() -> LocalTopic {
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = Bus::open(&dir.path().join("bus.sqlite"), BusConfig::default()).await.expect("open the bus");
    LocalTopic { bus, _dir: dir }
}

/// A bus subscriber that forwards what it receives to a channel.
struct Forward(mpsc::UnboundedSender<Received>);

#[async_trait]
impl Subscriber for Forward {
    async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
        let received = Received { message_id: d.message_id.clone(), message: d.message.clone() };
        self.0.send(received).map_err(|_| DeliveryError::from("probe dropped"))
    }
}

struct ChannelProbe(mpsc::UnboundedReceiver<Received>);

#[async_trait]
impl Probe for ChannelProbe {
    async fn recv(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.0.recv()).await.ok().flatten()
    }
}

#[async_trait]
impl TopicEnv for LocalTopic {
    fn topic(&self) -> &dyn Topic {
        &self.bus
    }
    async fn fresh_topic(&self) -> String {
        unique("topic")
    }
    async fn probe(&self, topic: &str) -> Box<dyn Probe> {
        let (send, recv) = mpsc::unbounded_channel();
        self.bus.subscribe(topic, &unique("probe"), Arc::new(Forward(send))).await.expect("subscribe");
        Box::new(ChannelProbe(recv))
    }
}

mod table {
    crate::contract::table_contract!(super::local_table());
}

mod relayed_table {
    crate::contract::table_contract!(super::relayed_table());
}

mod objects {
    crate::contract::objects_contract!(super::local_objects());
}

mod topic {
    crate::contract::topic_contract!(super::local_topic().await);
}
