//! agent-cache's resource versions in Redis, for `#[agent_cache(shared = true)]`.

use std::sync::Arc;
use std::time::Duration;

use cache_core::fleet::TierError;
use futures_util::future::BoxFuture;

use crate::shared::Shared;

/// Agent-cache's resource versions in Redis (see `Keys::resource_bumps`).
pub(crate) struct RedisResourceVersions {
    pub(crate) shared: Arc<Shared>,
}

impl cache_core::fleet::ResourceVersions for RedisResourceVersions {
    fn version(&self, resources: Vec<String>) -> BoxFuture<'static, Result<u64, TierError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            if !shared.is_connected() {
                return Err(TierError("the fleet is not connected".into()));
            }
            let mut connection = shared.caller_connection().await?;
            let mut keys = vec![shared.keys.resource_epoch()];
            for resource in &resources {
                keys.extend(shared.keys.resource_reads(resource.as_bytes()));
            }
            let counters: Vec<Option<u64>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut connection)
                .await
                .map_err(|e| shared.failed(e))?;
            Ok(counters.into_iter().flatten().fold(0, u64::wrapping_add))
        })
    }

    fn timeout(&self) -> Duration {
        // As a shared cache's requests.
        Duration::from_millis(200)
    }
}
