//! The webhook secret: read from a secret store (SSM Parameter Store on AWS,
//! `GetParameter` with decryption), never from plain env, and cached for the
//! life of the Lambda execution environment.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::ssm::Ssm;

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The store has no secret by that name (or it is empty).
    #[error("secret {0:?} not found: create it as an SSM SecureString parameter")]
    NotFound(String),
    /// The store could not be reached or refused (permissions, throttling).
    #[error("cannot read secret {name:?}: {message}")]
    Unavailable { name: String, message: String },
}

/// Where secrets are read from.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The decrypted value of the secret `name`.
    async fn get(&self, name: &str) -> Result<Vec<u8>, SecretError>;
}

/// A secret read once and kept, re-read at most once per `refresh_after`
/// when the caller suspects a rotation (a signature that does not match).
pub struct CachedSecret {
    store: Arc<dyn SecretStore>,
    name: String,
    refresh_after: Duration,
    value: Mutex<Option<(Arc<[u8]>, Instant)>>,
}

impl CachedSecret {
    pub fn new(store: Arc<dyn SecretStore>, name: impl Into<String>) -> Self {
        CachedSecret {
            store,
            name: name.into(),
            refresh_after: Duration::from_secs(300),
            value: Mutex::new(None),
        }
    }

    /// The secret's name in the store.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret, from the cache or the store.
    pub async fn get(&self) -> Result<Arc<[u8]>, SecretError> {
        let mut value = self.value.lock().await;
        if let Some((v, _)) = value.as_ref() {
            return Ok(v.clone());
        }
        let fresh: Arc<[u8]> = self.store.get(&self.name).await?.into();
        *value = Some((fresh.clone(), Instant::now()));
        Ok(fresh)
    }

    /// Reads the secret again if the cached value is older than the refresh
    /// interval; `None` when it is too recent to have been rotated since.
    pub async fn refresh(&self) -> Result<Option<Arc<[u8]>>, SecretError> {
        let mut value = self.value.lock().await;
        if value.as_ref().is_some_and(|(_, at)| at.elapsed() < self.refresh_after) {
            return Ok(None);
        }
        let fresh: Arc<[u8]> = self.store.get(&self.name).await?.into();
        *value = Some((fresh.clone(), Instant::now()));
        Ok(Some(fresh))
    }
}

/// Secrets in SSM Parameter Store: `GetParameter` with decryption (a
/// SecureString needs `ssm:GetParameter` and `kms:Decrypt` on its key).
#[derive(Clone, Debug)]
pub struct SsmSecrets {
    ssm: Result<Ssm, String>,
}

impl SsmSecrets {
    /// A store on the SDK configuration the rest of the function uses (a
    /// configuration SSM cannot be called with fails each read, naming why).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SsmSecrets { ssm: Ssm::new(config).map_err(|e| e.to_string()) }
    }
}

#[async_trait]
impl SecretStore for SsmSecrets {
    async fn get(&self, name: &str) -> Result<Vec<u8>, SecretError> {
        let unavailable = |message: String| SecretError::Unavailable { name: name.to_owned(), message };
        let ssm = self.ssm.as_ref().map_err(|e| unavailable(e.clone()))?;
        match ssm.get_parameter(name).await {
            Ok(Some(value)) if !value.is_empty() => Ok(value.into_bytes()),
            Ok(_) => Err(SecretError::NotFound(name.to_owned())),
            Err(e) => Err(unavailable(e.to_string())),
        }
    }
}
