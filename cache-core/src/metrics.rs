//! Counters and the [`CacheMetrics`] snapshot.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

/// A snapshot of one cache's counters, from [`AsyncCache::metrics`](crate::AsyncCache::metrics).
///
/// Counters are exact once the cache has settled (no call in progress): `metrics` applies
/// pending evictions and expirations before it reads `size`, `evictions` and `expirations`.
///
/// ```
/// let cache = cache_core::AsyncCache::<u64, u64>::new();
/// cache.insert(1, 10);
/// assert_eq!(cache.get(&1), Some(10));
/// assert_eq!(cache.get(&2), None);
/// let m = cache.metrics();
/// assert_eq!((m.hits, m.misses, m.size), (1, 1, 1));
/// assert_eq!(m.hit_rate, 0.5);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheMetrics {
    /// Lookups that found a live value (`get`, and every `get_with*` or batch load served from
    /// the cache).
    pub hits: u64,
    /// Lookups that found nothing, including every caller that waited on another caller's load.
    pub misses: u64,
    /// Entries held. An entry is never returned once its TTL has passed, but it leaves `size`
    /// only when the engine sweeps it, within about a second.
    pub size: u64,
    /// The size bound, `None` when unbounded.
    pub capacity: Option<u64>,
    /// `hits / (hits + misses)`, or 0.0 when nothing was counted.
    pub hit_rate: f64,
    /// Loader executions: one per coalesced load, one per batch call.
    pub loads: u64,
    /// Loads that returned an error or panicked.
    pub load_errors: u64,
    /// Entries removed to respect the size bound.
    pub evictions: u64,
    /// Entries removed because their time to live passed.
    pub expirations: u64,
}

/// The live counters behind [`CacheMetrics`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: StripedCounter,
    pub(crate) misses: StripedCounter,
    pub(crate) loads: Counter,
    pub(crate) load_errors: Counter,
    pub(crate) evictions: Counter,
    pub(crate) expirations: Counter,
}

impl Counters {
    pub(crate) fn snapshot(&self, size: u64, capacity: Option<u64>) -> CacheMetrics {
        let hits = self.hits.sum();
        let misses = self.misses.sum();
        let total = hits + misses;
        CacheMetrics {
            hits,
            misses,
            size,
            capacity,
            #[allow(clippy::cast_precision_loss)] // a ratio; 2^53 lookups are far away
            hit_rate: if total == 0 {
                0.0
            } else {
                hits as f64 / total as f64
            },
            loads: self.loads.get(),
            load_errors: self.load_errors.get(),
            evictions: self.evictions.get(),
            expirations: self.expirations.get(),
        }
    }

    /// `clear` resets the lookup counters, as the Python original does; the load and removal
    /// counters keep counting.
    pub(crate) fn reset_lookups(&self) {
        self.hits.reset();
        self.misses.reset();
    }
}

/// A plain counter for events that are rare next to lookups.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn incr(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

const STRIPES: usize = 16;

/// A counter for the hit path: each thread adds to its own cache line, so threads that hit
/// the same cache do not contend on one atomic. Reading sums the stripes.
pub(crate) struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

impl Default for StripedCounter {
    fn default() -> Self {
        StripedCounter {
            stripes: std::array::from_fn(|_| Stripe::default()),
        }
    }
}

impl StripedCounter {
    #[inline]
    pub(crate) fn incr(&self) {
        self.add(1);
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.stripes[stripe_index()]
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0.load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn reset(&self) {
        for stripe in &self.stripes {
            stripe.0.store(0, Ordering::Relaxed);
        }
    }
}

#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    INDEX.with(|index| *index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn striped_counter_sums_across_threads() {
        let counter = StripedCounter::default();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        counter.incr();
                    }
                });
            }
        });
        assert_eq!(counter.sum(), 80_000);
        counter.reset();
        assert_eq!(counter.sum(), 0);
    }
}
