//! Counters and the [`CacheMetrics`] snapshot.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::fleet::FleetInfo;

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
    /// The cache's fleet (its name there, and whether it hears it), `None` for a cache of
    /// this process only.
    pub fleet: Option<FleetInfo>,
    /// Invalidations and clears received from the other processes of the fleet and applied.
    /// Each is counted once applied: when this count has moved, the entries it names are gone,
    /// and a write made after that stays.
    pub remote_invalidations: u64,
    /// Times the cache was emptied because the process stopped or started hearing its fleet
    /// (it may have missed invalidations meanwhile).
    pub fleet_flushes: u64,
    /// Fleet messages that could not be applied or encoded as such: a received key that did
    /// not decode as this cache's key type, or a borrowed key that could not be encoded (sent
    /// as a clear instead); and, for a shared cache, requests to the shared tier that failed or
    /// timed out (the call then loaded locally).
    pub fleet_errors: u64,
    /// Shared cache: local misses answered by the fleet's shared tier (L2).
    pub l2_hits: u64,
    /// Shared cache: local misses the shared tier had no value for (this process then loaded
    /// with the fleet's lease).
    pub l2_misses: u64,
    /// Shared cache: loads this process ran for the whole fleet, holding its lease (their
    /// values went to the shared tier). Part of `loads`.
    pub fleet_loads: u64,
    /// Shared cache: times a call waited for another process's load of its key.
    pub lease_waits: u64,
    /// Shared cache: values in the shared tier that did not decode as this cache's value type
    /// (another deploy's type, or a schema version of another): misses, and overwritten.
    pub decode_errors: u64,
    /// Shared cache: values too large for the shared tier, kept in this process only.
    pub l2_oversize: u64,
    /// With a [weigher](crate::AsyncCacheBuilder::weigher): the total weight of the entries
    /// held, against the bound in `capacity`. `None` for a cache bounded in entries.
    pub weight: Option<u64>,
    /// Refresh-ahead: background reloads started by hits on old entries
    /// ([`refresh_after`](crate::AsyncCacheBuilder::refresh_after)). Part of `loads`.
    pub refreshes: u64,
    /// Refresh-ahead: background reloads that failed or panicked (the old value stayed). Part
    /// of `load_errors`.
    pub refresh_errors: u64,
    /// Stale-on-error: failed loads answered with an expired value
    /// ([`stale_on_error`](crate::AsyncCacheBuilder::stale_on_error)). Part of `load_errors`.
    pub stale_served: u64,
}

/// The live counters behind [`CacheMetrics`].
///
/// Every counter is striped: each thread adds to the stripe of its own, one cache line holding
/// every counter of that stripe, so threads that hit, miss, load or evict on one cache at
/// once never write to the same line. Reading sums the stripes.
pub(crate) struct Counters {
    stripes: [Stripe; STRIPES],
}

/// What a counter counts.
#[derive(Clone, Copy)]
pub(crate) enum Event {
    Hit,
    Miss,
    Load,
    LoadError,
    Eviction,
    Expiration,
    RemoteInvalidation,
    FleetFlush,
    FleetError,
    L2Hit,
    L2Miss,
    FleetLoad,
    LeaseWait,
    DecodeError,
    L2Oversize,
}

/// How many events there are (at most 16: a stripe is 128 bytes).
const EVENTS: usize = Event::L2Oversize as usize + 1;

const STRIPES: usize = 16;

/// The counters of one stripe, on a line of their own (128 bytes: two 64-byte lines, as
/// adjacent-line prefetching pairs them).
#[repr(align(128))]
#[derive(Default)]
struct Stripe([AtomicU64; EVENTS]);

impl Default for Counters {
    fn default() -> Self {
        Counters {
            stripes: std::array::from_fn(|_| Stripe::default()),
        }
    }
}

impl Counters {
    #[inline]
    pub(crate) fn count(&self, event: Event) {
        self.add(event, 1);
    }

    #[inline]
    pub(crate) fn add(&self, event: Event, n: u64) {
        self.stripes[stripe_index()].0[event as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `event` after what it counts was done, released: a reader of [`sum`](Self::sum)
    /// that sees it sees that work done too. (For the fleet's remote invalidations, off the hit
    /// path.)
    pub(crate) fn count_done(&self, event: Event) {
        self.stripes[stripe_index()].0[event as usize].fetch_add(1, Ordering::Release);
    }

    /// The total of `event`, read with `Acquire`, for [`count_done`](Self::count_done).
    pub(crate) fn sum(&self, event: Event) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0[event as usize].load(Ordering::Acquire))
            .sum()
    }

    pub(crate) fn snapshot(&self, size: u64, capacity: Option<u64>) -> CacheMetrics {
        let hits = self.sum(Event::Hit);
        let misses = self.sum(Event::Miss);
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
            loads: self.sum(Event::Load),
            load_errors: self.sum(Event::LoadError),
            evictions: self.sum(Event::Eviction),
            expirations: self.sum(Event::Expiration),
            fleet: None,
            remote_invalidations: self.sum(Event::RemoteInvalidation),
            fleet_flushes: self.sum(Event::FleetFlush),
            fleet_errors: self.sum(Event::FleetError),
            l2_hits: self.sum(Event::L2Hit),
            l2_misses: self.sum(Event::L2Miss),
            fleet_loads: self.sum(Event::FleetLoad),
            lease_waits: self.sum(Event::LeaseWait),
            decode_errors: self.sum(Event::DecodeError),
            l2_oversize: self.sum(Event::L2Oversize),
            weight: None,
            refreshes: 0,
            refresh_errors: 0,
            stale_served: 0,
        }
    }

    /// `clear` resets the lookup counters, as the Python original does; the load and removal
    /// counters keep counting.
    pub(crate) fn reset_lookups(&self) {
        for stripe in &self.stripes {
            stripe.0[Event::Hit as usize].store(0, Ordering::Relaxed);
            stripe.0[Event::Miss as usize].store(0, Ordering::Relaxed);
        }
    }
}

/// This thread's stripe: threads take stripes in turn as they first count.
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
    fn striped_counters_sum_across_threads_and_reset_only_lookups() {
        let counters = Counters::default();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        counters.count(Event::Hit);
                        counters.count(Event::Load);
                    }
                    counters.add(Event::Miss, 5);
                });
            }
        });
        assert_eq!(counters.sum(Event::Hit), 80_000);
        assert_eq!(counters.sum(Event::Miss), 40);
        counters.reset_lookups();
        let m = counters.snapshot(0, None);
        assert_eq!((m.hits, m.misses, m.loads), (0, 0, 80_000));
    }
}
