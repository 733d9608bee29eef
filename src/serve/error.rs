//! Why `batchfan serve` (embedded or `--backend aws`) cannot start or keep serving.

use std::{io, net::SocketAddr, path::PathBuf};

use crate::{backend::BackendError, error::PortError, run::RunError};

/// A serve that cannot start; each names what it could not do and, where
/// there is one, the fix. The cause, when there is one, is the source.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// What it was asked to serve cannot be served (a pipeline given twice,
    /// an input policy).
    #[error("{0}")]
    Config(String),
    /// A pipeline's `[triggers.cron]` schedule does not parse.
    #[error("pipeline {pipeline}: {source}")]
    Schedule {
        pipeline: String,
        #[source]
        source: crate::trigger::cron::ScheduleError,
    },
    /// A webhook secret cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::serve::app::SecretError),
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: pick a free port with --listen 127.0.0.1:PORT (0 for any)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A file serve keeps in the state directory.
    #[error("cannot write {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The process cannot be told to stop.
    #[error("cannot listen for {0}")]
    Signal(&'static str, #[source] io::Error),
    /// The embedded backend cannot be opened.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The pipeline service cannot start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A port (`--backend aws`: AWS itself) cannot be used.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The AWS Batch API of `--batch-api` cannot start.
    #[error(transparent)]
    BatchApi(#[from] crate::batchapi::server::StartError),
    /// The server itself failed.
    #[error("the server failed")]
    Server(#[source] io::Error),
}
