//! Starting the Batch API over an engine that is already open: the one
//! start-up shared by `batchfan batch-api` (its own engine) and `batchfan
//! serve --batch-api` (the engine of serve's embedded backend, so that jobs
//! submitted through the API and runs of serve's pipelines share one capacity
//! and one state directory).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use batchfan::{batchapi::{server, BatchApiConfig}, engine::{EngineConfig, LocalEngine}};
//! let engine = LocalEngine::open(EngineConfig::new("/tmp/state")).await?;
//! let config = BatchApiConfig::new("/tmp/state");
//! let bound = server::bind(engine, config, "127.0.0.1:0".parse()?, "--listen").await?;
//! println!("listening on http://{}", bound.addr());
//! bound.serve(std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::{future::Future, net::SocketAddr, sync::Arc};

use super::{BatchApi, BatchApiConfig, OpenError};
use crate::engine::LocalEngine;

/// Where the API listens when no address is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8751";

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is not valid (the message names it and the fix).
    #[error("{0}")]
    Invalid(String),
    /// The API's database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}: give another {flag} address (port 0: any free port)")]
    Listen {
        addr: SocketAddr,
        flag: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl BatchApiConfig {
    /// Checks the names written into ARNs: the account is 12 digits, the region is not empty.
    pub fn check(&self) -> Result<(), String> {
        if self.account.len() != 12 || !self.account.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("account {:?} is not valid: give 12 digits", self.account));
        }
        let region_ok = !self.region.is_empty()
            && self.region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(format!("region {:?} is not valid: give a region name like us-east-1", self.region));
        }
        Ok(())
    }
}

/// Refuses a non-loopback address unless `public` (the API has no authentication:
/// whoever reaches it runs commands on this machine as this user).
pub fn check_loopback(addr: SocketAddr, flag: &str, public_flag: &str, public: bool) -> Result<(), String> {
    if public || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "{flag} {addr} is not a loopback address, and the Batch API is not authenticated (anyone who \
         reaches it runs commands here): listen on 127.0.0.1, or add {public_flag} behind your own access rules"
    ))
}

/// The API bound to its listener, not serving yet.
#[derive(Debug)]
pub struct BoundApi {
    api: Arc<BatchApi>,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

/// Checks `config`, opens the API's database over `engine` and binds `listen`
/// (`flag`: the option that gave it, named in the error).
pub async fn bind(
    engine: LocalEngine,
    config: BatchApiConfig,
    listen: SocketAddr,
    flag: &'static str,
) -> Result<BoundApi, StartError> {
    config.check().map_err(StartError::Invalid)?;
    let api = Arc::new(BatchApi::open(engine, config)?);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|source| StartError::Listen {
        addr: listen,
        flag,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: listen, flag, source })?;
    tracing::info!(%addr, "Batch API listening; SigV4 is not checked");
    Ok(BoundApi { api, listener, addr })
}

impl BatchApi {
    /// Where the API keeps its state and how it names things.
    pub fn config(&self) -> &BatchApiConfig {
        &self.config
    }

    /// The names of the job queues created through the API, oldest first.
    pub fn queue_names(&self) -> Result<Vec<String>, super::ApiError> {
        Ok(self
            .store
            .resources(super::environments::JQ)?
            .iter()
            .filter_map(|q| q.get("jobQueueName").and_then(serde_json::Value::as_str).map(str::to_owned))
            .collect())
    }
}

impl BoundApi {
    /// The bound address (the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API, e.g. for a view of its jobs.
    pub fn api(&self) -> Arc<BatchApi> {
        self.api.clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        super::serve(self.listener, self.api, shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_arns_are_checked() {
        let mut c = BatchApiConfig::new("/tmp/x");
        assert_eq!(c.check(), Ok(()));
        c.account = "12345".into();
        assert!(c.check().unwrap_err().contains("account \"12345\""));
        c = BatchApiConfig { region: "US East".into(), ..BatchApiConfig::new("/tmp/x") };
        assert!(c.check().unwrap_err().contains("region \"US East\""));
    }

    #[test]
    fn only_loopback_without_the_public_flag() {
        let any: SocketAddr = "0.0.0.0:8751".parse().unwrap();
        let e = check_loopback(any, "--batch-api", "--batch-api-public", false).unwrap_err();
        assert!(e.contains("--batch-api 0.0.0.0:8751") && e.contains("--batch-api-public"), "{e}");
        assert!(check_loopback(any, "--batch-api", "--batch-api-public", true).is_ok());
        assert!(check_loopback("[::1]:1".parse().unwrap(), "--listen", "x", false).is_ok());
    }
}
