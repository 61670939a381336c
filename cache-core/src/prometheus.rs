//! Every cache's metrics in a Prometheus registry (feature `prometheus`): a
//! [`prometheus_client`] [`Collector`] that reads [`CacheMetrics`] of each cache it was
//! given on every scrape.
//!
//! Nothing is counted twice and nothing is pushed: the caches keep their own striped
//! counters, as they do without this feature, and the collector reads them only when the
//! registry is encoded, so a hit costs what it costs without it. Reading runs
//! [`AsyncCache::metrics`], which applies pending evictions and expirations first (on the
//! quick_cache engine, with entries that have a TTL, a sweep of the cache: it finds the
//! expired entries under the shared lock, so hits go on, and removes them in batches of 256
//! with pauses between, so a scrape never holds the hits back for long: the runner's
//! `--only scrape` rows time every hit during scrapes of a million entries).
//!
//! The [`prometheus_client`] crate (the Prometheus project's own Rust client) was chosen over
//! the `metrics` facade because its collectors are read on scrape; the facade's recorders are
//! handed each increment as it happens, which would put a call on the hit path, or need a
//! task copying the counters into gauges on a timer.
//!
//! | metric (prefix `cache_` by default) | type | label | from |
//! |---|---|---|---|
//! | `hits_total`, `misses_total` | counter | `cache` | `hits`, `misses` (reset by `clear`, which `rate()` reads as a counter reset) |
//! | `loads_total`, `load_errors_total` | counter | `cache` | `loads`, `load_errors` |
//! | `evictions_total`, `expirations_total` | counter | `cache` | `evictions`, `expirations` |
//! | `entries` | gauge | `cache` | `size` |
//! | `capacity` | gauge | `cache` | `capacity` (bounded caches only) |
//! | `weight` | gauge | `cache` | `weight` (caches with a weigher only) |
//! | `remote_invalidations_total`, `fleet_errors_total`, `l2_hits_total`, `l2_misses_total` | counter | `cache` | the fleet counters (fleet caches only) |
//!
//! ```
//! use cache_core::AsyncCache;
//! use cache_core::prometheus::CacheCollector;
//! use prometheus_client::registry::Registry;
//!
//! #[cache_core::async_lru(maxsize = 100)]
//! async fn user(id: u64) -> String {
//!     format!("user-{id}")
//! }
//!
//! # fn main() {
//! let sessions: AsyncCache<String, u64> = AsyncCache::builder().maxsize(1_000).build();
//! let collector = CacheCollector::new();
//! collector.register("sessions", &sessions);
//! collector.register_fn("user", user::metrics); // an attribute's cache
//! let mut registry = Registry::default();
//! registry.register_collector(Box::new(collector.clone()));
//!
//! sessions.insert("ada".into(), 1);
//! assert_eq!(sessions.get("ada"), Some(1));
//! let mut scrape = String::new();
//! prometheus_client::encoding::text::encode(&mut scrape, &registry).unwrap();
//! assert!(scrape.contains("cache_hits_total{cache=\"sessions\"} 1"));
//! assert!(scrape.contains("cache_entries{cache=\"sessions\"} 1"));
//! assert!(scrape.contains("cache_entries{cache=\"user\"} 0")); // not called yet
//! # }
//! ```

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::{AsyncCache, CacheMetrics};

type Source = Arc<dyn Fn() -> CacheMetrics + Send + Sync>;

/// A Prometheus collector of any number of caches, each labelled `cache="<name>"`.
///
/// A cheap-to-clone handle: caches registered through any clone, before or after the
/// collector went into a registry, are in the next scrape. It holds a handle of each cache,
/// so a registered cache lives as long as the collector.
#[derive(Clone)]
pub struct CacheCollector {
    prefix: Arc<str>,
    caches: Arc<RwLock<Vec<(String, Source)>>>,
}

impl Default for CacheCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.caches.read().iter().map(|(n, _)| n.clone()).collect();
        f.debug_struct("CacheCollector")
            .field("prefix", &self.prefix)
            .field("caches", &names)
            .finish()
    }
}

impl CacheCollector {
    /// A collector whose metrics are named `cache_...`.
    pub fn new() -> Self {
        Self::with_prefix("cache")
    }

    /// A collector whose metrics are named `<prefix>_...` (`prefix` as Prometheus allows:
    /// letters, digits and `_`).
    pub fn with_prefix(prefix: &str) -> Self {
        CacheCollector {
            prefix: prefix.into(),
            caches: Arc::default(),
        }
    }

    /// Adds `cache`, labelled `cache="<name>"`.
    pub fn register<K, V>(&self, name: impl Into<String>, cache: &AsyncCache<K, V>)
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let cache = cache.clone();
        self.register_fn(name, move || cache.metrics());
    }

    /// Adds the cache whose metrics `metrics` reads: a cached function's `f::metrics`.
    pub fn register_fn(
        &self,
        name: impl Into<String>,
        metrics: impl Fn() -> CacheMetrics + Send + Sync + 'static,
    ) {
        self.caches.write().push((name.into(), Arc::new(metrics)));
    }
}

/// One metric of the table, read from a snapshot (`None`: not reported for that cache).
struct Family {
    name: &'static str,
    help: &'static str,
    gauge: bool,
    read: fn(&CacheMetrics) -> Option<u64>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "hits",
        help: "Lookups that found a live value",
        gauge: false,
        read: |m| Some(m.hits),
    },
    Family {
        name: "misses",
        help: "Lookups that found nothing, each waiter of a load included",
        gauge: false,
        read: |m| Some(m.misses),
    },
    Family {
        name: "loads",
        help: "Loader executions",
        gauge: false,
        read: |m| Some(m.loads),
    },
    Family {
        name: "load_errors",
        help: "Loads that returned an error or panicked",
        gauge: false,
        read: |m| Some(m.load_errors),
    },
    Family {
        name: "evictions",
        help: "Entries removed to respect the bound",
        gauge: false,
        read: |m| Some(m.evictions),
    },
    Family {
        name: "expirations",
        help: "Entries removed because their time to live passed",
        gauge: false,
        read: |m| Some(m.expirations),
    },
    Family {
        name: "entries",
        help: "Entries held",
        gauge: true,
        read: |m| Some(m.size),
    },
    Family {
        name: "capacity",
        help: "The bound: entries, or total weight with a weigher",
        gauge: true,
        read: |m| m.capacity,
    },
    Family {
        name: "weight",
        help: "The total weight of the entries held",
        gauge: true,
        read: |m| m.weight,
    },
    Family {
        name: "remote_invalidations",
        help: "Invalidations and clears received from the fleet",
        gauge: false,
        read: |m| m.fleet.as_ref().map(|_| m.remote_invalidations),
    },
    Family {
        name: "fleet_errors",
        help: "Fleet messages or shared-tier requests that failed",
        gauge: false,
        read: |m| m.fleet.as_ref().map(|_| m.fleet_errors),
    },
    Family {
        name: "l2_hits",
        help: "Local misses answered by the fleet's shared tier",
        gauge: false,
        read: |m| m.fleet.as_ref().map(|_| m.l2_hits),
    },
    Family {
        name: "l2_misses",
        help: "Local misses the fleet's shared tier had no value for",
        gauge: false,
        read: |m| m.fleet.as_ref().map(|_| m.l2_misses),
    },
];

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        // Read every cache once per scrape, outside the registry lock.
        let sources: Vec<(String, Source)> = self.caches.read().clone();
        let snapshots: Vec<(String, CacheMetrics)> = sources
            .into_iter()
            .map(|(name, metrics)| (name, metrics()))
            .collect();
        for family in FAMILIES {
            let values: Vec<(&str, u64)> = snapshots
                .iter()
                .filter_map(|(name, m)| (family.read)(m).map(|value| (name.as_str(), value)))
                .collect();
            if values.is_empty() {
                continue;
            }
            let name = format!("{}_{}", self.prefix, family.name);
            let metric_type = if family.gauge {
                ConstGauge::new(0_i64).metric_type()
            } else {
                ConstCounter::new(0_u64).metric_type()
            };
            let mut metric = encoder.encode_descriptor(&name, family.help, None, metric_type)?;
            for (cache, value) in values {
                let labels = [("cache", cache)];
                let series = metric.encode_family(&labels)?;
                if family.gauge {
                    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(series)?;
                } else {
                    ConstCounter::new(value).encode(series)?;
                }
            }
        }
        Ok(())
    }
}
