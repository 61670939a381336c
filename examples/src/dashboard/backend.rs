//! The simulated backend behind every playground cache: 100 ms per call, and a count of the
//! calls that reached it, per cache, to prove what the cache saved.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::sleep;

use super::caches::CacheId;

/// How long one backend call takes, for one key or a batch of them.
pub(crate) const LATENCY: Duration = Duration::from_millis(100);

/// Calls that reached the backend through one cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct BackendStats {
    /// Backend calls: one per load, one per batch.
    pub(crate) calls: u64,
    /// Keys those calls fetched.
    pub(crate) keys: u64,
}

/// Per-cache counters, indexed by [`CacheId::index`]. Process-wide, as the macro caches
/// whose bodies call the backend are.
static CALLS: [AtomicU64; CacheId::ALL.len()] = [const { AtomicU64::new(0) }; CacheId::ALL.len()];
static KEYS: [AtomicU64; CacheId::ALL.len()] = [const { AtomicU64::new(0) }; CacheId::ALL.len()];

/// The value the backend holds for `key`.
pub(crate) fn value_of(key: &str) -> String {
    format!("data-for-{key}")
}

/// Fetches one key for `cache`.
pub(crate) async fn load(cache: CacheId, key: &str) -> String {
    count(cache, 1);
    sleep(LATENCY).await;
    value_of(key)
}

/// Fetches many keys for `cache` in one call, as a batch query does.
pub(crate) async fn load_many(cache: CacheId, keys: Vec<String>) -> HashMap<String, String> {
    count(cache, keys.len() as u64);
    sleep(LATENCY).await;
    keys.into_iter()
        .map(|key| {
            let value = value_of(&key);
            (key, value)
        })
        .collect()
}

fn count(cache: CacheId, keys: u64) {
    CALLS[cache.index()].fetch_add(1, Ordering::SeqCst);
    KEYS[cache.index()].fetch_add(keys, Ordering::SeqCst);
}

/// What reached the backend through `cache` since the process started.
pub(crate) fn stats(cache: CacheId) -> BackendStats {
    BackendStats {
        calls: CALLS[cache.index()].load(Ordering::SeqCst),
        keys: KEYS[cache.index()].load(Ordering::SeqCst),
    }
}
