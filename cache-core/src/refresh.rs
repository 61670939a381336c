//! Refresh-ahead: the background reload a hit on an old entry starts.
//!
//! A reload is an ordinary flight of its key, led by a task of its own: a caller that misses
//! while it runs (the entry expired, or was evicted) waits on it instead of loading, and it
//! stores through [`settle`](crate::cache::Inner::settle), so an `invalidate`, `insert` or
//! `clear` that came after it began fences it exactly as it fences any load (Caffeine's bug
//! #193, a refresh resurrecting an invalidated value, cannot happen here). The entry's timing
//! carries a flag that lets one hit at a time start a reload; the flag is released whatever
//! the reload's end, so after a failure a later hit tries again.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cache::Inner;
use crate::flight::Flight;
use crate::freshness::Timing;
use crate::load::{Led, LoadGuard};

/// Releases an entry's refresh flag when its reload ends, or is dropped with its runtime.
struct Claim(Arc<Timing>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.release_refresh();
    }
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Reloads `key` (whose entry has `timing`) with `init` in a task of its own, unless a
    /// reload of the entry or any load of the key is already in flight, or there is no tokio
    /// runtime to run it on. Never waits.
    #[cold]
    pub(crate) fn refresh<F, E>(self: &Arc<Self>, key: K, timing: Arc<Timing>, init: F)
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !timing.claim_refresh() {
            return;
        }
        let claim = Claim(timing);
        let flight = {
            let generation = self.generation();
            let mut shard = self.flights.shard(&key);
            if shard
                .get(&key)
                .is_some_and(|flight| flight.generation == generation)
            {
                // A load of the key is in flight: it stores a fresh value itself.
                return;
            }
            let flight = Flight::new(generation, None);
            shard.insert(key.clone(), Arc::clone(&flight));
            flight
        };
        let guard = LoadGuard::new(Arc::clone(self), key, flight).without_stale();
        let inner = Arc::clone(self);
        if let Some(policy) = &self.policy {
            policy.refreshes.fetch_add(1, Ordering::Relaxed);
        }
        drop(runtime.spawn(async move {
            let led = inner.lead(guard, init).await;
            if matches!(led, Led::Error(_) | Led::Panicked(_))
                && let Some(policy) = &inner.policy
            {
                policy.refresh_errors.fetch_add(1, Ordering::Relaxed);
            }
            drop(claim);
        }));
    }
}
