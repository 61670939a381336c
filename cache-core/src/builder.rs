//! [`AsyncCacheBuilder`]: configuration with the Python original's defaults.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::evict::Hooks;
use crate::fleet::{Attachment, FleetAttach, FleetChannel, FleetSetup};
use crate::freshness::Policy;
use crate::{AsyncCache, Engine};

/// Configures an [`AsyncCache`]. Defaults follow the Python original: at most 128 entries, no
/// TTL, a 5 ms batch window and batches of at most 100 keys.
///
/// ```
/// use std::time::Duration;
/// use cache_core::AsyncCache;
///
/// let cache: AsyncCache<String, u64> = AsyncCache::builder()
///     .maxsize(1000)                          // entries; maxsize(0) stores nothing
///     .default_ttl(Duration::from_secs(300))  // default: entries never expire
///     .batch_window(Duration::from_millis(5))
///     .max_batch_size(100)
///     .build();
/// assert_eq!(cache.metrics().capacity, Some(1000));
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct AsyncCacheBuilder<K, V> {
    pub(crate) config: Config,
    fleet: Option<Attachment<K, V>>,
    _types: PhantomData<fn() -> (K, V)>,
    /// The eviction listener and the weigher (see `evict.rs`).
    pub(crate) hooks: Hooks<K, V>,
    /// Freshness options beyond the TTL (set in [`freshness`](crate::freshness)).
    pub(crate) policy: Policy<K, V>,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// `None`: unbounded.
    pub(crate) capacity: Option<u64>,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) batch_window: Duration,
    pub(crate) max_batch_size: usize,
    pub(crate) warmup_concurrency: usize,
    pub(crate) engine: Engine,
    /// The schema version written into snapshots and checked on restore.
    pub(crate) snapshot_version: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            capacity: Some(128),
            default_ttl: None,
            batch_window: Duration::from_millis(5),
            max_batch_size: 100,
            warmup_concurrency: 16,
            engine: Engine::default(),
            snapshot_version: 0,
        }
    }
}

impl<K, V> fmt::Debug for AsyncCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncCacheBuilder")
            .field("config", &self.config)
            .field("hooks", &self.hooks)
            .finish()
    }
}

impl<K, V> AsyncCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new() -> Self {
        AsyncCacheBuilder {
            config: Config::default(),
            fleet: None,
            _types: PhantomData,
            hooks: Hooks::default(),
            policy: Policy::default(),
        }
    }

    /// At most `maxsize` entries, exactly. When full, the least recently used goes first
    /// ([`Engine::Moka`], and [`Engine::QuickCache`] under 34 entries) or CLOCK-Pro's close
    /// approximation of it ([`Engine::QuickCache`], the default, from 34 entries up; see
    /// [`Engine`]). `0` stores nothing (loads still run and coalesce).
    pub fn maxsize(mut self, maxsize: u64) -> Self {
        self.config.capacity = Some(maxsize);
        self
    }

    /// No size bound.
    pub fn unbounded(mut self) -> Self {
        self.config.capacity = None;
        self
    }

    /// Entries stored by loads and by [`insert`](AsyncCache::insert) expire `ttl` after they
    /// are stored. Default: never.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = Some(ttl);
        self
    }

    /// How long a [`BatchLoader`](crate::BatchLoader) gathers keys after the first one before
    /// it sends them. Default: 5 ms.
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.config.batch_window = window;
        self
    }

    /// A batch goes out as soon as this many keys wait, before the window ends. Default: 100.
    /// `0` and `1` both send every key on its own.
    pub fn max_batch_size(mut self, max: usize) -> Self {
        self.config.max_batch_size = max.max(1);
        self
    }

    /// How many loads [`warmup`](AsyncCache::warmup) runs at once. Default: 16.
    pub fn warmup_concurrency(mut self, loads: usize) -> Self {
        self.config.warmup_concurrency = loads.max(1);
        self
    }

    /// The storage engine: [`Engine::QuickCache`] (the default) or [`Engine::Moka`]. Every
    /// guarantee holds on both; they differ in speed, memory and eviction order (see
    /// [`Engine`]).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.config.engine = engine;
        self
    }

    /// Makes the cache coherent across every process of a fleet: its `invalidate`, `insert`
    /// and `clear` reach the same cache (the channel's name) in every other process, and
    /// theirs reach it, fencing in-flight loads as local ones do. `fleet` comes from a fleet
    /// tier: `cache_redis::Fleet::cache("users")` for coherence, or its `.shared()` for values
    /// that live in Redis too (one load per key for the whole fleet). Keys (and, shared,
    /// values) cross processes through serde (see [`fleet`](crate::fleet) for the encoding).
    /// A hit costs what a local hit costs.
    ///
    /// ```
    /// # use cache_core::AsyncCache;
    /// # fn users(channel: impl cache_core::fleet::FleetChannel) {
    /// let users: AsyncCache<u64, String> = AsyncCache::builder()
    ///     .maxsize(10_000)
    ///     .fleet(channel) // e.g. fleet.cache("users")
    ///     .build();
    /// # }
    /// ```
    pub fn fleet(mut self, fleet: impl FleetAttach<K, V>) -> Self {
        self.fleet = Some(fleet.attach().attachment);
        self
    }

    /// [`fleet`](Self::fleet) with a setup made by the caller.
    pub(crate) fn fleet_setup(mut self, setup: FleetSetup<K, V>) -> Self {
        self.fleet = Some(setup.attachment);
        self
    }

    /// [`fleet`](Self::fleet) with a shared channel.
    pub(crate) fn fleet_channel(mut self, channel: Arc<dyn FleetChannel>) -> Self
    where
        K: Serialize + DeserializeOwned,
    {
        self.fleet = Some(FleetSetup::coherent(channel).attachment);
        self
    }

    /// Follows `channel`'s coherence without publishing or receiving anything: entries stored
    /// while the fleet cannot be heard are capped at its staleness bound. For caches whose
    /// owner invalidates them across the fleet by other means (agent-cache's tool caches).
    pub(crate) fn fleet_coherence(mut self, channel: Arc<dyn FleetChannel>) -> Self {
        self.fleet = Some(Attachment::new(channel, None, None));
        self
    }

    /// Builds the cache. Needs no runtime, so it can run in a `static` initialiser.
    pub fn build(self) -> AsyncCache<K, V> {
        AsyncCache::from_config(self.config, self.fleet, self.hooks, self.policy)
    }
}
