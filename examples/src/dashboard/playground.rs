//! [`Playground`]: the state behind the cache playground (its configuration, the direct
//! `AsyncCache` and its batch loader) and the operations the API exposes on it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cache_core::{AsyncCache, BatchLoader, CacheMetrics};
use parking_lot::RwLock;
use serde_json::{Value, json};

use super::backend;
use super::caches::{CacheId, MacroCache, REPLICAS, Target};
use super::fleet::{DIRECT_FLEET_NAME, DashboardFleet};
use super::input::Fields;

/// What "configure" sets. The direct cache takes all of it but `skip_args`; the macro caches
/// take only `skip_args`, which picks one of two declared functions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PlaygroundConfig {
    /// The direct cache's size bound (0 stores nothing).
    pub(crate) maxsize: u64,
    /// The direct cache's default time to live; `None`: never expire.
    pub(crate) ttl: Option<Duration>,
    /// 0: the macro caches key by `(replica, key)`; 1: by `key` alone.
    pub(crate) skip_args: u8,
    /// How long the batch loader gathers keys.
    pub(crate) batch_window: Duration,
    /// The most keys in one batch call.
    pub(crate) max_batch_size: usize,
}

impl Default for PlaygroundConfig {
    /// The Python demo's defaults, but `skip_args = 1`, so that a herd of same-key requests
    /// shares one load whichever replica serves it.
    fn default() -> Self {
        PlaygroundConfig {
            maxsize: 128,
            ttl: Some(Duration::from_secs(60)),
            skip_args: 1,
            batch_window: Duration::from_millis(5),
            max_batch_size: 100,
        }
    }
}

impl PlaygroundConfig {
    /// The fields of a configure request.
    pub(crate) const FIELDS: [&str; 5] = [
        "maxsize",
        "ttl",
        "skip_args",
        "batch_window_ms",
        "max_batch_size",
    ];

    /// This configuration with the fields present in `fields` changed; every invalid field
    /// is reported, not just the first.
    pub(crate) fn updated(&self, fields: &Fields) -> Result<Self, String> {
        let mut config = *self;
        let mut errors = Vec::new();
        match fields.whole_number("maxsize", 0..=1_000_000) {
            Ok(value) => config.maxsize = value.unwrap_or(config.maxsize),
            Err(error) => errors.push(error),
        }
        match fields.seconds_or_never("ttl", 86_400.0) {
            Ok(value) => config.ttl = value.unwrap_or(config.ttl),
            Err(error) => errors.push(error),
        }
        match fields.whole_number("skip_args", 0..=1) {
            Ok(value) => config.skip_args = value.map_or(config.skip_args, |n| n as u8),
            Err(error) => errors.push(format!(
                "{error} (the cached fns take (replica, key): 1 leaves replica out of the key)"
            )),
        }
        match fields.number("batch_window_ms", 0.0..=1_000.0) {
            Ok(value) => {
                if let Some(ms) = value {
                    config.batch_window = Duration::from_secs_f64(ms / 1_000.0);
                }
            }
            Err(error) => errors.push(error),
        }
        match fields.whole_number("max_batch_size", 1..=10_000) {
            Ok(value) => {
                config.max_batch_size = value.map_or(config.max_batch_size, |n| n as usize)
            }
            Err(error) => errors.push(error),
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.join("; "))
        }
    }

    /// As the API shows it: seconds and milliseconds, `ttl: null` for never.
    pub(crate) fn to_json(self) -> Value {
        json!({
            "maxsize": self.maxsize,
            "ttl": self.ttl.map(|ttl| ttl.as_secs_f64()),
            "skip_args": self.skip_args,
            "batch_window_ms": self.batch_window.as_secs_f64() * 1_000.0,
            "max_batch_size": self.max_batch_size,
        })
    }
}

/// The direct cache and the batch loader that fills it, rebuilt together by "configure".
struct DirectCache {
    cache: AsyncCache<String, String>,
    batch: BatchLoader<String, String, Infallible>,
}

impl DirectCache {
    /// With a fleet, the cache is its shared [`DIRECT_FLEET_NAME`] cache (values in Redis too,
    /// so another dashboard's miss reads what this one loaded): a rebuild by "configure"
    /// replaces this process's copy, and the other processes keep theirs.
    fn new(config: &PlaygroundConfig, fleet: Option<&DashboardFleet>) -> Self {
        let mut builder = AsyncCache::builder()
            .maxsize(config.maxsize)
            .batch_window(config.batch_window)
            .max_batch_size(config.max_batch_size);
        if let Some(ttl) = config.ttl {
            builder = builder.default_ttl(ttl);
        }
        if let Some(fleet) = fleet {
            builder = builder.fleet(fleet.fleet().cache(DIRECT_FLEET_NAME).shared());
        }
        let cache = builder.build();
        let batch = cache.batch_loader(|keys: Vec<String>| async move {
            Ok(backend::load_many(CacheId::Direct, keys).await)
        });
        DirectCache { cache, batch }
    }
}

/// How a call reaches its cache.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CallOptions {
    /// Macro targets: `false` calls the `refresh` helper, which bypasses the cache.
    pub(crate) bypass_cache: bool,
    /// The direct target: load through the batch loader rather than a single loader.
    pub(crate) batch: bool,
}

/// What a call returned.
#[derive(Clone, Debug)]
pub(crate) struct CallOutcome {
    /// The value (`None` only if a batch call left the key out, which this backend never does).
    pub(crate) value: Option<String>,
    /// The cache that served it.
    pub(crate) cache: CacheId,
    /// Calls in flight at the server when this one arrived, itself included.
    pub(crate) in_flight: u64,
}

/// What a warmup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WarmupSummary {
    pub(crate) loaded: usize,
    pub(crate) skipped: usize,
    pub(crate) failed: usize,
}

/// The playground's state, shared by every request.
pub(crate) struct Playground {
    config: RwLock<PlaygroundConfig>,
    direct: RwLock<Arc<DirectCache>>,
    fleet: Option<DashboardFleet>,
    next_replica: AtomicU64,
    in_flight: AtomicU64,
}

impl Playground {
    /// A playground with the default configuration, its direct cache attached to `fleet`.
    pub(crate) fn new(fleet: Option<DashboardFleet>) -> Self {
        let config = PlaygroundConfig::default();
        Playground {
            direct: RwLock::new(Arc::new(DirectCache::new(&config, fleet.as_ref()))),
            config: RwLock::new(config),
            fleet,
            next_replica: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }

    /// The fleet the playground's caches belong to, if the dashboard was given one.
    pub(crate) fn fleet(&self) -> Option<&DashboardFleet> {
        self.fleet.as_ref()
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> PlaygroundConfig {
        *self.config.read()
    }

    /// Rebuilds the direct cache with `config` and empties the macro caches (with a fleet, a
    /// macro cache's clear empties it in every dashboard of the fleet).
    pub(crate) fn configure(&self, config: PlaygroundConfig) {
        let mut current = self.config.write();
        *self.direct.write() = Arc::new(DirectCache::new(&config, self.fleet.as_ref()));
        *current = config;
        for id in CacheId::ALL {
            if let CacheId::Macro(cache) = id {
                cache.clear();
            }
        }
    }

    /// The cache that requests to `target` reach under the current configuration.
    pub(crate) fn active(&self, target: Target) -> CacheId {
        MacroCache::for_target(target, self.config().skip_args)
            .map_or(CacheId::Direct, CacheId::Macro)
    }

    fn direct(&self) -> Arc<DirectCache> {
        Arc::clone(&self.direct.read())
    }

    /// Looks `key` up in `target`'s cache, loading it from the backend on a miss.
    pub(crate) async fn call(
        &self,
        target: Target,
        key: String,
        options: CallOptions,
    ) -> CallOutcome {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _leave = InFlight(&self.in_flight);
        let cache = self.active(target);
        let value = match cache {
            CacheId::Macro(cache) => {
                let replica =
                    (self.next_replica.fetch_add(1, Ordering::Relaxed) % u64::from(REPLICAS)) as u8;
                Some(cache.call(replica, key, !options.bypass_cache).await)
            }
            CacheId::Direct if options.batch => {
                let direct = self.direct();
                match direct.batch.load(key).await {
                    Ok(value) => value,
                    Err(never) => match *never {},
                }
            }
            CacheId::Direct => {
                let direct = self.direct();
                let load_key = key.clone();
                let load = async move { backend::load(CacheId::Direct, &load_key).await };
                Some(direct.cache.get_with_detached(key, load).await)
            }
        };
        CallOutcome {
            value,
            cache,
            in_flight,
        }
    }

    /// The metrics of one cache.
    pub(crate) fn metrics(&self, id: CacheId) -> CacheMetrics {
        match id {
            CacheId::Macro(cache) => cache.metrics(),
            CacheId::Direct => self.direct().cache.metrics(),
        }
    }

    /// Empties `target`'s active cache (and resets its hit and miss counters).
    pub(crate) fn clear(&self, target: Target) -> CacheId {
        let id = self.active(target);
        match id {
            CacheId::Macro(cache) => cache.clear(),
            CacheId::Direct => self.direct().cache.clear(),
        }
        id
    }

    /// Preloads `keys` into the direct cache, 16 loads at a time.
    pub(crate) async fn warmup(&self, keys: Vec<String>) -> WarmupSummary {
        let report = self
            .direct()
            .cache
            .warmup(keys, |key| async move {
                Ok::<_, Infallible>(backend::load(CacheId::Direct, &key).await)
            })
            .await;
        WarmupSummary {
            loaded: report.loaded.len(),
            skipped: report.skipped.len(),
            failed: report.failed.len(),
        }
    }

    /// Stores `value` in the direct cache: with the default TTL when `ttl` is `None`,
    /// with none (never expire) when it is `Some(None)`.
    pub(crate) fn set(&self, key: String, value: String, ttl: Option<Option<Duration>>) {
        let direct = self.direct();
        match ttl {
            None => direct.cache.insert(key, value),
            Some(ttl) => direct.cache.insert_with_ttl(key, value, ttl),
        }
    }

    /// The direct cache's value for `key`, without loading (a hit or a miss).
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.direct().cache.get(key)
    }

    /// Removes `key` from the direct cache; reports whether it held a live value.
    pub(crate) fn delete(&self, key: &str) -> bool {
        let direct = self.direct();
        let held = direct.cache.contains_key(key);
        direct.cache.invalidate(key);
        held
    }
}

/// Leaves the in-flight count when the call ends, however it ends.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
