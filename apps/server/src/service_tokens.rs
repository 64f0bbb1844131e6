//! Service tokens for the verification API, with their lookups cached: a verification must
//! cost what a key check costs, and reading the token's row on every call would double it.
//!
//! A found token is kept for [`TTL`] and a missing one is not kept at all (a token made a
//! moment ago works at once, and garbage tokens cannot fill the cache). So a revoked token
//! stops working within [`TTL`] in every process (the operator's `revoke` also drops it from
//! the cache of the process it runs in, which is none of the servers').

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::api_key::KeyHash;
use otesse_domain::ports::{Clock, KeyHasher, SecretGenerator};
use otesse_domain::service_token::{
    ServiceToken, ServiceTokenId, ServiceTokenPorts, ServiceTokenRepository, ServiceTokenService,
};
use otesse_storage::Database;

/// How long a found token is trusted without reading its row again.
pub const TTL: Duration = Duration::from_secs(10);

/// [`ServiceTokenRepository`] with `find_by_hash` cached.
pub struct CachedServiceTokens {
    inner: Arc<dyn ServiceTokenRepository>,
    found: moka::sync::Cache<[u8; 32], ServiceToken>,
}

impl CachedServiceTokens {
    pub fn new(inner: Arc<dyn ServiceTokenRepository>, ttl: Duration) -> Self {
        Self { inner, found: moka::sync::Cache::builder().max_capacity(1_000).time_to_live(ttl).build() }
    }
}

#[async_trait]
impl ServiceTokenRepository for CachedServiceTokens {
    async fn insert(&self, token: &ServiceToken) -> Result<(), StorageError> {
        self.inner.insert(token).await
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ServiceToken>, StorageError> {
        if let Some(token) = self.found.get(&hash.0) {
            return Ok(Some(token));
        }
        let found = self.inner.find_by_hash(hash).await?;
        if let Some(token) = &found {
            self.found.insert(hash.0, token.clone());
        }
        Ok(found)
    }

    async fn list(&self) -> Result<Vec<ServiceToken>, StorageError> {
        self.inner.list().await
    }

    async fn revoke(&self, id: ServiceTokenId, at: DateTime<Utc>) -> Result<Option<ServiceToken>, StorageError> {
        let revoked = self.inner.revoke(id, at).await?;
        if let Some(token) = &revoked {
            self.found.invalidate(&token.token_hash.0);
        }
        Ok(revoked)
    }
}

/// The service-token service over `database`, lookups cached for [`TTL`].
pub fn service(
    database: &Database,
    hasher: Arc<dyn KeyHasher>,
    secrets: Arc<dyn SecretGenerator>,
    clock: Arc<dyn Clock>,
) -> ServiceTokenService {
    let tokens = Arc::new(CachedServiceTokens::new(Arc::new(database.service_tokens()), TTL));
    ServiceTokenService::new(ServiceTokenPorts { tokens, hasher, secrets, clock })
}
