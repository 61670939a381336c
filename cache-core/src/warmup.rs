//! Preloading many keys: [`AsyncCache::warmup`].

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream;

use crate::AsyncCache;

/// What [`AsyncCache::warmup`] did with each key.
#[non_exhaustive]
pub struct WarmupReport<K, E> {
    /// Keys loaded (or joined to a load already in flight) and now cached.
    pub loaded: Vec<K>,
    /// Keys that already had a live value (here, or in the fleet's shared tier): their loader
    /// did not run and the value was kept.
    pub skipped: Vec<K>,
    /// Keys whose load failed, with the error. The other keys were loaded regardless.
    pub failed: Vec<(K, Arc<E>)>,
}

impl<K: fmt::Debug, E: fmt::Debug> fmt::Debug for WarmupReport<K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmupReport")
            .field("loaded", &self.loaded)
            .field("skipped", &self.skipped)
            .field("failed", &self.failed)
            .finish()
    }
}

enum KeyOutcome<K, E> {
    Loaded(K),
    Skipped(K),
    Failed(K, Arc<E>),
}

impl<K, V> AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Preloads `keys`, calling `loader(key)` for each key without a live value, at most
    /// [`warmup_concurrency`](crate::AsyncCacheBuilder::warmup_concurrency) loads at a time
    /// (default 16).
    ///
    /// One failure does not stop the others: the report lists loaded, skipped (already cached,
    /// here or, for a shared fleet cache, in the fleet's shared tier) and failed keys. Warmup
    /// is not traffic, so it counts no hits or misses; its loads count in `loads` and
    /// `load_errors`. Loads coalesce with concurrent `get_with` calls as usual.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cache_core::AsyncCache::<u64, u64>::new();
    /// cache.insert(1, 100);
    /// let report = cache
    ///     .warmup(1..=4, |id| async move {
    ///         if id == 3 { Err("row 3 is locked") } else { Ok(id * 10) }
    ///     })
    ///     .await;
    /// assert_eq!(report.skipped, [1]);
    /// assert_eq!(report.failed.len(), 1);
    /// assert_eq!(report.loaded.len(), 2);
    /// assert_eq!(cache.get(&1), Some(100)); // kept, not reloaded
    /// assert_eq!(cache.get(&4), Some(40));
    /// # }
    /// ```
    pub async fn warmup<I, F, Fut, E>(&self, keys: I, loader: F) -> WarmupReport<K, E>
    where
        I: IntoIterator<Item = K>,
        F: Fn(K) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let inner = self.inner();
        let loader = &loader;
        let outcomes = stream::iter(keys)
            .map(|key| async move {
                if inner.store.contains(&key) {
                    return KeyOutcome::Skipped(key);
                }
                match inner
                    .load_inline_from(key.clone(), loader(key.clone()))
                    .await
                {
                    // Found in the fleet's shared tier: cached here now, and not loaded.
                    Ok((_, true)) => KeyOutcome::Skipped(key),
                    Ok((_, false)) => KeyOutcome::Loaded(key),
                    Err(error) => KeyOutcome::Failed(key, error),
                }
            })
            .buffer_unordered(inner.config.warmup_concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut report = WarmupReport {
            loaded: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
        };
        for outcome in outcomes {
            match outcome {
                KeyOutcome::Loaded(key) => report.loaded.push(key),
                KeyOutcome::Skipped(key) => report.skipped.push(key),
                KeyOutcome::Failed(key, error) => report.failed.push((key, error)),
            }
        }
        report
    }
}
