//! The Lambda harness: the dispatchers run as Lambda runs them, on one machine.
//!
//! - [`package`]: the zips of `scripts/package-lambdas.sh`, unpacked as Lambda unpacks them;
//! - [`world`]: moto + `batchfan batch-api` with the functions created by hand;
//! - [`deployed`]: the orders example applied by `terraform` to moto + batch-api;
//! - [`routes`]: what invokes which function, read back from the deployment;
//! - [`router`]: events delivered along those routes to the real functions;
//! - [`frontdoor`]: a Function URL served over HTTP on 127.0.0.1;
//! - [`deploy`]: the functions in moto's Lambda API, and their configuration read back;
//! - [`runtime_api`]: the Lambda Runtime API each execution environment talks to;
//! - [`function`]: cold starts, responses, handler errors, init errors, timeouts;
//! - [`invoker`]: asynchronous invocations: two retries, then the dead-letter queue.

#![allow(dead_code)]

pub(crate) use crate::aws_fixtures;
pub(crate) use crate::batch_api_support as batch_api;
pub mod deploy;
pub mod deployed;
pub mod frontdoor;
pub mod function;
pub mod invoker;
pub(crate) use crate::moto;
pub mod package;
pub mod router;
pub mod routes;
pub mod runtime_api;
pub mod world;

/// An endpoint that accepts connections and never answers: a dependency that
/// hangs (the SDK waits on it until Lambda's timeout ends the invocation).
/// Stops accepting on drop.
pub struct BlackHole {
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        BlackHole { endpoint, task }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}
