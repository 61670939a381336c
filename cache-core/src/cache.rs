//! [`AsyncCache`], the handle users hold.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::batch::BatchLoader;
use crate::builder::{AsyncCacheBuilder, Config};
use crate::evict::Hooks;
use crate::fleet::{Attachment, FleetReceiver};
use crate::flight::SingleFlight;
use crate::freshness::{Found, Policy};
use crate::metrics::{CacheMetrics, Counters, Event};
use crate::store::{Engine, Store, Stored};

/// An in-memory async cache with single-flight loading, batching, per-entry TTL and an LRU
/// size bound.
///
/// A cheap-to-clone handle: clones share one cache. It is `Send + Sync` and needs no runtime
/// to be built, so it can live in a `static` and serve any number of tokio runtimes, in turn
/// or at once. See the [crate docs](crate) for a guided tour.
///
/// ```
/// use cache_core::AsyncCache;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache: AsyncCache<u64, String> = AsyncCache::builder().maxsize(1_000).build();
/// let name = cache.get_with(7, async { format!("user-7") }).await; // loads
/// let again = cache.get_with(7, async { unreachable!() }).await; // hit
/// assert_eq!(name, again);
/// # }
/// ```
pub struct AsyncCache<K, V> {
    pub(crate) inner: Arc<Inner<K, V>>,
}

/// What every handle of one cache shares.
pub(crate) struct Inner<K, V> {
    pub(crate) store: Store<K, V>,
    pub(crate) flights: SingleFlight<K, V>,
    pub(crate) counters: Arc<Counters>,
    /// Bumped by `clear`: entries and flights of an older generation are dead.
    generation: AtomicU64,
    pub(crate) config: Config,
    /// The cache's fleet, if it is attached to one. Never consulted on a hit.
    pub(crate) fleet: Option<Attachment<K, V>>,
    /// What the fleet delivers other processes' messages to (the channel holds it weakly).
    pub(crate) fleet_receiver: OnceLock<Arc<dyn FleetReceiver>>,
    /// Whether entries are weighed (`metrics` then reports their total weight).
    pub(crate) weighted: bool,
    /// Refresh-ahead, stale-on-error, time-to-idle and `expire_after`; `None` when the cache
    /// uses none of them. Consulted when a value is stored, and by a read only once the
    /// entry's deadline word has passed.
    pub(crate) policy: Option<Box<Policy<K, V>>>,
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The hit path: a live value or `None`, counted as one hit or one miss.
    #[inline]
    pub(crate) fn lookup<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self.store.get(key, self.generation());
        match value {
            Some(_) => self.counters.count(Event::Hit),
            None => self.counters.count(Event::Miss),
        }
        value
    }

    /// [`lookup`](Self::lookup) for a caller that can reload in the background, on a cache
    /// with a policy: a value due for refresh-ahead comes with its entry's timing. Not inlined,
    /// so that the detached calls of a cache without a policy inline only `lookup`.
    #[inline(never)]
    pub(crate) fn lookup_found(&self, key: &K) -> Found<V> {
        let found = self.store.find(key, self.generation());
        match found {
            Found::Hit(_) | Found::RefreshDue(..) => self.counters.count(Event::Hit),
            Found::Miss => self.counters.count(Event::Miss),
        }
        found
    }

    /// The TTL of `value`, loaded or inserted for `key` with no TTL of its own.
    #[inline]
    pub(crate) fn ttl_of(&self, key: &K, value: &V) -> Option<Duration> {
        match &self.policy {
            None => self.config.default_ttl,
            Some(policy) => policy.ttl_of(key, value, self.config.default_ttl),
        }
    }

    /// `value` as the engine stores it: loaded in `generation`, living `ttl` (capped while the
    /// fleet cannot be heard), with its policy's timing if the cache has one.
    #[inline]
    pub(crate) fn stored(&self, value: V, generation: u64, ttl: Option<Duration>) -> Stored<V> {
        let ttl = self.capped(ttl);
        match self.policy.as_ref().and_then(|policy| policy.timing(ttl)) {
            None => Stored::new(value, generation, ttl),
            Some((timing, due_at)) => Stored::timed(value, generation, timing, due_at),
        }
    }
}

impl<K, V> Clone for AsyncCache<K, V> {
    fn clone(&self) -> Self {
        AsyncCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V> Default for AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncCache")
            .field("config", &self.inner.config)
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl<K, V> AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache with every default: at most 128 entries, no TTL, 5 ms batch window, batches of
    /// at most 100 keys.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a cache.
    pub fn builder() -> AsyncCacheBuilder<K, V> {
        AsyncCacheBuilder::new()
    }

    pub(crate) fn from_config(
        config: Config,
        fleet: Option<Attachment<K, V>>,
        hooks: Hooks<K, V>,
        policy: Policy<K, V>,
    ) -> Self {
        let counters = Arc::new(Counters::default());
        let weighted = hooks.weigher.is_some();
        let policy = policy.is_set().then(|| Box::new(policy));
        let timed = policy.as_ref().is_some_and(|policy| policy.needs_timing());
        let inner = Arc::new(Inner {
            store: Store::new(config.engine, config.capacity, &counters, hooks, timed),
            flights: SingleFlight::new(),
            counters,
            generation: AtomicU64::new(0),
            config,
            fleet,
            fleet_receiver: OnceLock::new(),
            weighted,
            policy,
        });
        if let Some(fleet) = &inner.fleet {
            fleet.subscribe(&inner);
        }
        AsyncCache { inner }
    }

    /// The live value of `key`, or `None`. Counts one hit or one miss.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.lookup(key)
    }

    /// Whether `key` has a live value. Counts nothing and does not refresh its recency.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.store.contains(key)
    }

    /// The value of `key`, loading it with `loader` on a miss.
    ///
    /// Concurrent callers that miss on one key share one load: the first runs its `loader`,
    /// the others wait for its value (each counts a miss; `loads` counts one). `loader` may
    /// borrow, so it runs in this caller's task: if this caller is dropped mid-load, one of
    /// the waiters starts its own loader. Use [`get_with_detached`](Self::get_with_detached)
    /// for a load that survives its caller.
    ///
    /// # Panics
    ///
    /// If `loader` panics, the panic resumes in this caller and every caller waiting on this
    /// load panics too. Nothing is cached and the next call loads afresh.
    pub async fn get_with<F>(&self, key: K, loader: F) -> V
    where
        F: Future<Output = V>,
    {
        if let Some(value) = self.inner.lookup(&key) {
            return value;
        }
        // The miss path is boxed: it is the larger part of this future, and a hit (which never
        // enters it) would otherwise move it around in every caller's state machine.
        let loaded = Box::pin(
            self.inner
                .load_inline::<_, Infallible>(key, async { Ok(loader.await) }),
        )
        .await;
        match loaded {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// Like [`get_with`](Self::get_with) with a fallible loader.
    ///
    /// An error is returned to every caller waiting on that load (one `Arc`, so the backend is
    /// never hit once per waiter) and is never cached: the next call loads again.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cache_core::AsyncCache::<u64, u64>::new();
    /// let failed = cache.try_get_with(1, async { Err::<u64, _>("backend down") }).await;
    /// assert_eq!(*failed.unwrap_err(), "backend down");
    /// assert_eq!(cache.try_get_with(1, async { Ok::<_, &str>(10) }).await, Ok(10));
    /// # }
    /// ```
    pub async fn try_get_with<F, E>(&self, key: K, loader: F) -> Result<V, Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(value) = self.inner.lookup(&key) {
            return Ok(value);
        }
        Box::pin(self.inner.load_inline(key, loader)).await
    }

    /// Like [`get_with`](Self::get_with) with a loader that may find nothing: a `None` is
    /// returned (to every caller waiting on that load) and not cached, so the next call loads
    /// again; it is not a load error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cache_core::AsyncCache::<u64, String>::new();
    /// assert_eq!(cache.optionally_get_with(1, async { None }).await, None);
    /// assert!(!cache.contains_key(&1));
    /// let found = cache.optionally_get_with(1, async { Some("one".to_string()) }).await;
    /// assert_eq!(found.as_deref(), Some("one"));
    /// assert_eq!(cache.get(&1).as_deref(), Some("one"));
    /// # }
    /// ```
    pub async fn optionally_get_with<F>(&self, key: K, loader: F) -> Option<V>
    where
        F: Future<Output = Option<V>>,
    {
        if let Some(value) = self.inner.lookup(&key) {
            return Some(value);
        }
        let loader = async { loader.await.ok_or(crate::load::Absent) };
        Box::pin(self.inner.load_inline(key, loader)).await.ok()
    }

    /// Like [`get_with`](Self::get_with), but the load belongs to every caller waiting on it.
    ///
    /// The loader runs in a task of its own on the current tokio runtime: dropping any caller,
    /// the first included, neither strands nor restarts it, and its value is cached even if
    /// every caller is gone. Outside a tokio runtime it runs in place.
    pub async fn get_with_detached<F>(&self, key: K, loader: F) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        if self.inner.policy.is_none() {
            if let Some(value) = self.inner.lookup(&key) {
                return value;
            }
        } else {
            match self.inner.lookup_found(&key) {
                Found::Hit(value) => return value,
                Found::RefreshDue(value, timing) => {
                    let loader = async { Ok::<_, Infallible>(loader.await) };
                    self.inner.refresh(key, timing, loader);
                    return value;
                }
                Found::Miss => {}
            }
        }
        let loaded = Box::pin(
            self.inner
                .load_detached::<_, Infallible>(key, async { Ok(loader.await) }),
        )
        .await;
        match loaded {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// Like [`try_get_with`](Self::try_get_with), with the load detached as in
    /// [`get_with_detached`](Self::get_with_detached).
    pub async fn try_get_with_detached<F, E>(&self, key: K, loader: F) -> Result<V, Arc<E>>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        if self.inner.policy.is_none() {
            if let Some(value) = self.inner.lookup(&key) {
                return Ok(value);
            }
        } else {
            match self.inner.lookup_found(&key) {
                Found::Hit(value) => return Ok(value),
                Found::RefreshDue(value, timing) => {
                    self.inner.refresh(key, timing, loader);
                    return Ok(value);
                }
                Found::Miss => {}
            }
        }
        Box::pin(self.inner.load_detached(key, loader)).await
    }

    /// Stores `value` with the default TTL. A load of `key` already in flight can no longer
    /// overwrite it. In a fleet cache, the other processes drop their value of `key`.
    pub fn insert(&self, key: K, value: V) {
        let ttl = self.inner.ttl_of(&key, &value);
        self.insert_with_ttl(key, value, ttl);
    }

    /// Stores `value` for `ttl` from now (`None`: never expires). Reads do not extend it.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Option<Duration>) {
        self.inner.fence(&key);
        if let Some(fleet) = &self.inner.fleet {
            drop(fleet.publish_invalidate(&key, &self.inner.counters));
        }
        // The generation before the cap: a fleet flush sets its cap before it moves the
        // generation, so an entry of the new generation is always capped.
        let generation = self.inner.generation();
        let stored = self.inner.stored(value, generation, ttl);
        drop(self.inner.store.insert(key, stored));
    }

    /// Removes `key`, and makes a load of `key` already in flight unable to store its value: a
    /// call that starts after `invalidate` returns never sees a value loaded before it.
    ///
    /// In a fleet cache the same happens in every other process of the fleet, within the
    /// fleet's propagation delay (see [`fleet`](crate::fleet) for which borrowed forms of the
    /// key can cross processes).
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.fence(key);
        drop(self.inner.store.remove(key));
        if let Some(fleet) = &self.inner.fleet {
            drop(fleet.publish_invalidate(key, &self.inner.counters));
        }
    }

    /// Removes every entry, fences every load in flight (as [`invalidate`](Self::invalidate)
    /// does for one key) and resets the hit and miss counters. Callable from any thread. In a
    /// fleet cache, every other process clears its copy too.
    pub fn clear(&self) {
        self.inner.clear();
        if let Some(fleet) = &self.inner.fleet {
            drop(fleet.publish_clear());
        }
    }

    /// A loader that sends the keys missed within one batch window to `load` in one call.
    ///
    /// `load` returns the values it found; a key absent from the map loads as `Ok(None)` and
    /// is not cached. The window and the batch size come from the builder.
    pub fn batch_loader<F, Fut, E>(&self, load: F) -> BatchLoader<K, V, E>
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        BatchLoader::new(Arc::clone(&self.inner), load)
    }

    /// A snapshot of the counters, after applying pending evictions and expirations.
    ///
    /// On the quick_cache engine, once an entry with a TTL was stored, this sweeps the
    /// expired entries: found under the shared lock (hits go on meanwhile) and removed in
    /// batches of 256 under the write lock, with a 20 µs pause between batches so that the
    /// hits the last batch held up get the lock first. On a million entries that takes
    /// milliseconds to a tenth of a second, in the calling thread; hits are not held up
    /// more than a batch.
    pub fn metrics(&self) -> CacheMetrics {
        let size = self.inner.store.settled_len();
        let mut metrics = self
            .inner
            .counters
            .snapshot(size, self.inner.config.capacity);
        metrics.fleet = self.inner.fleet.as_ref().map(Attachment::info);
        if self.inner.weighted {
            metrics.weight = Some(self.inner.store.weight());
        }
        if let Some(policy) = &self.inner.policy {
            policy.add_to(&mut metrics);
        }
        metrics
    }

    /// The storage engine this cache was built with.
    pub fn engine(&self) -> Engine {
        self.inner.config.engine
    }

    pub(crate) fn inner(&self) -> &Arc<Inner<K, V>> {
        &self.inner
    }
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn clear(&self) {
        self.drop_all();
        self.counters.reset_lookups();
    }

    /// Drops every entry and fences every flight, counting nothing.
    pub(crate) fn drop_all(&self) {
        // A new generation kills every older entry and flight at once; nothing to lock.
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(self.store.clear());
    }

    /// `ttl`, capped while the cache's fleet cannot be heard.
    #[inline]
    pub(crate) fn capped(&self, ttl: Option<Duration>) -> Option<Duration> {
        match &self.fleet {
            None => ttl,
            Some(fleet) => fleet.cap(ttl),
        }
    }
}
