//! What the pages every `batchfan serve` shows need from the process serving
//! them: the [`Gate`] (login token, form token, host names, `--no-auth`) that
//! [`super::guard`] checks and the [`Source`] the runs are read from. The embedded service
//! ([`super::App`]) and the view of a pipeline deployed on AWS
//! ([`super::deployed`]) are both a [`Site`], so the runs' pages, the login
//! and the JSON API of runs are one set of handlers ([`super::http::shared_routes`]).

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use super::source::Source;

/// The login and cross-site protection of one serving process.
pub struct Gate {
    /// Per-process token the pages' forms carry (cross-site request protection).
    pub csrf: String,
    /// The login token, new at each start: the session cookie's value, and the
    /// API's bearer token.
    pub api_token: String,
    /// Extra `Host` header values the pages answer to (besides the listen address and localhost).
    pub allowed_hosts: Vec<String>,
    /// Whether pages and the API need the token (off with `--no-auth`).
    pub auth: bool,
    addr: OnceLock<SocketAddr>,
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

impl Gate {
    /// New random tokens.
    pub fn new(allowed_hosts: Vec<String>, auth: bool) -> Gate {
        Gate { csrf: random_token(), api_token: random_token(), allowed_hosts, auth, addr: OnceLock::new() }
    }

    /// The address the server listens on (set once bound).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    /// Records the bound address (the first one set stays).
    pub fn set_addr(&self, addr: SocketAddr) {
        let _ = self.addr.set(addr);
    }
}

/// A process serving the status pages.
pub trait Site: Send + Sync + 'static {
    fn gate(&self) -> &Gate;
    /// Where runs and jobs are read from.
    fn source(&self) -> &Source;
}

/// The state of the handlers every serve shares.
pub type SharedSite = Arc<dyn Site>;
