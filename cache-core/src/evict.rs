//! The eviction listener and the weigher: what a cache tells its owner about entries that
//! leave it, and how much each entry weighs against the bound.
//!
//! Both are optional hooks the engines carry ([`Hooks`]); a cache without them pays nothing on
//! a hit (neither is consulted there) and a test of `Option` on an insert.
//!
//! An engine never calls the listener itself: every removal it makes is handed back as a
//! [`Removals`], which its caller drops once it holds no lock (the engine's, or a flight
//! registry shard's while a load stores its value); dropping it calls the listener. Removals
//! found where the caller may hold a lock (an expired entry seen by a read) wait in
//! [`Pending`] for the next write, `metrics` or iteration of that cache.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// Why an entry left the cache, as the [eviction listener](crate::AsyncCacheBuilder::on_evict)
/// is told.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use cache_core::{AsyncCache, RemovalCause};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let cache: AsyncCache<u64, String> = AsyncCache::builder()
///     .maxsize(1)
///     .on_evict(move |key, _value, cause| log.lock().unwrap().push((key, cause)))
///     .build();
/// cache.insert(1, "a".into());
/// cache.insert(1, "b".into()); // replaces "a"
/// cache.insert(2, "c".into()); // over the bound: key 1 goes
/// cache.invalidate(&2);
/// assert_eq!(
///     *seen.lock().unwrap(),
///     [(1, RemovalCause::Replaced), (1, RemovalCause::Size), (2, RemovalCause::Explicit)],
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Removed by a call: `invalidate`, `invalidate_if`, `clear` (and their fleet
    /// counterparts), or a load's value unstored because a `clear` overtook it.
    Explicit,
    /// Overwritten by a new value of the same key (`insert`, or a load storing its value).
    Replaced,
    /// Its time to live passed. Reported when the engine removes it: on a read that finds
    /// it expired, on `metrics`, or when the bound makes room.
    Expired,
    /// Evicted to keep the cache within its bound, or never admitted because it alone weighs
    /// more than the bound allows.
    Size,
}

impl RemovalCause {
    /// Whether the cache removed the entry of its own accord (`Expired`, `Size`) rather than
    /// because a caller removed or replaced it.
    pub fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Size)
    }
}

/// The listener as a cache holds it.
pub(crate) type Listener<K, V> = dyn Fn(K, V, RemovalCause) + Send + Sync;

/// The weigher as a cache holds it.
pub(crate) type Weigher<K, V> = dyn Fn(&K, &V) -> u32 + Send + Sync;

/// The optional hooks of one cache, handed to its engine.
pub(crate) struct Hooks<K, V> {
    pub(crate) listener: Option<Arc<Listener<K, V>>>,
    pub(crate) weigher: Option<Arc<Weigher<K, V>>>,
}

impl<K, V> Default for Hooks<K, V> {
    fn default() -> Self {
        Hooks {
            listener: None,
            weigher: None,
        }
    }
}

impl<K, V> Clone for Hooks<K, V> {
    fn clone(&self) -> Self {
        Hooks {
            listener: self.listener.clone(),
            weigher: self.weigher.clone(),
        }
    }
}

impl<K, V> fmt::Debug for Hooks<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_evict", &self.listener.is_some())
            .field("weigher", &self.weigher.is_some())
            .finish()
    }
}

/// The weight of one entry: the weigher's, or 1. A weigher that panics is caught (the engine
/// may be holding its lock, mid-eviction) and the entry weighs 1, the same on every call, so
/// that an engine that weighs an entry again on eviction finds the weight it admitted.
pub(crate) fn weigh<K, V>(weigher: &Weigher<K, V>, key: &K, value: &V) -> u32 {
    match catch_unwind(AssertUnwindSafe(|| weigher(key, value))) {
        Ok(weight) => weight,
        Err(_) => {
            tracing::error!("a cache's weigher panicked; the entry weighs 1");
            1
        }
    }
}

/// Entries an engine removed, delivered to the listener (or just dropped, without one) when
/// this is dropped: after every lock is released, which is why a caller holding one keeps it.
#[must_use = "dropping the removals delivers them: drop them once no lock is held"]
pub(crate) struct Removals<K, V> {
    listener: Option<Arc<Listener<K, V>>>,
    /// Most removals are one or two entries (an insert that evicts, a replacement): inline.
    inline: [Option<(K, V, RemovalCause)>; 2],
    spill: Vec<(K, V, RemovalCause)>,
}

impl<K, V> Removals<K, V> {
    /// Nothing removed (yet), for a cache with `listener`.
    #[inline]
    pub(crate) fn new(listener: Option<&Arc<Listener<K, V>>>) -> Self {
        Removals {
            listener: listener.cloned(),
            inline: [None, None],
            spill: Vec::new(),
        }
    }

    /// Whether a listener will see these removals (otherwise they are only dropped).
    #[inline]
    pub(crate) fn is_heard(&self) -> bool {
        self.listener.is_some()
    }

    pub(crate) fn push(&mut self, key: K, value: V, cause: RemovalCause) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some((key, value, cause)),
            None => self.spill.push((key, value, cause)),
        }
    }

    fn drain(&mut self) -> impl Iterator<Item = (K, V, RemovalCause)> + '_ {
        self.inline
            .iter_mut()
            .filter_map(Option::take)
            .chain(self.spill.drain(..))
    }
}

impl<K, V> Drop for Removals<K, V> {
    fn drop(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        for (key, value, cause) in self.drain() {
            // No lock is held here, so a panicking listener poisons nothing: it is reported
            // and the next removal is delivered as usual.
            if catch_unwind(AssertUnwindSafe(|| listener(key, value, cause))).is_err() {
                tracing::error!(?cause, "a cache's eviction listener panicked");
            }
        }
    }
}

/// Removals found where the caller may hold a lock, waiting for the next safe point.
pub(crate) struct Pending<K, V> {
    queued: AtomicBool,
    entries: Mutex<Vec<(K, V, RemovalCause)>>,
}

impl<K, V> Default for Pending<K, V> {
    fn default() -> Self {
        Pending {
            queued: AtomicBool::new(false),
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl<K, V> Pending<K, V> {
    pub(crate) fn push(&self, key: K, value: V, cause: RemovalCause) {
        self.entries.lock().push((key, value, cause));
        self.queued.store(true, Ordering::Release);
    }

    /// An empty batch of removals for `listener`, with every removal waiting here moved
    /// into it (none without a listener: nothing waits then).
    #[inline]
    pub(crate) fn removals(&self, listener: Option<&Arc<Listener<K, V>>>) -> Removals<K, V> {
        let mut removals = Removals::new(listener);
        if !removals.is_heard() || !self.queued.load(Ordering::Acquire) {
            return removals;
        }
        let entries = {
            let mut entries = self.entries.lock();
            self.queued.store(false, Ordering::Release);
            std::mem::take(&mut *entries)
        };
        for (key, value, cause) in entries {
            removals.push(key, value, cause);
        }
        removals
    }
}

impl<K, V> crate::AsyncCacheBuilder<K, V>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Calls `listener` with the key, the value and the [`RemovalCause`] of every entry that
    /// leaves the cache: invalidated or cleared (`Explicit`), overwritten (`Replaced`), past
    /// its time to live (`Expired`) or evicted for the bound (`Size`).
    ///
    /// The listener runs in the thread whose call removed the entry, after the cache has
    /// released every lock, so it may call the cache itself. A listener that panics is
    /// caught and logged (`tracing` error): it poisons nothing, the call that removed the
    /// entry returns as usual and later removals are delivered. Expired entries are
    /// reported when the cache removes them: when a read finds one (delivered at the
    /// cache's next write, `metrics` or scan, since a read may hold a lock), when
    /// [`metrics`](crate::AsyncCache::metrics) sweeps them, or when the bound makes room.
    /// `maxsize(0)` stores nothing, so it reports nothing.
    ///
    /// A cache without a listener pays nothing for this on a hit (a read never consults it).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use cache_core::{AsyncCache, RemovalCause};
    ///
    /// let evicted = Arc::new(AtomicU64::new(0));
    /// let count = Arc::clone(&evicted);
    /// let cache: AsyncCache<u64, u64> = AsyncCache::builder()
    ///     .maxsize(100)
    ///     .on_evict(move |_key, _value, cause| {
    ///         if cause == RemovalCause::Size {
    ///             count.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build();
    /// for key in 0..1_000 {
    ///     cache.insert(key, key);
    /// }
    /// assert_eq!(evicted.load(Ordering::Relaxed), 900);
    /// ```
    pub fn on_evict(
        mut self,
        listener: impl Fn(K, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.listener = Some(Arc::new(listener));
        self
    }

    /// Weighs each entry against the bound: with a weigher, [`max_weight`](Self::max_weight)
    /// (or `maxsize`, the same bound) is a total weight, for instance in bytes, instead of a
    /// number of entries.
    ///
    /// - An entry weighing **0** is never evicted for the bound on the quick_cache engine (it
    ///   leaves by its TTL, `invalidate` or replacement); on the moka engine it is evicted
    ///   in its LRU turn like any other, freeing nothing. Either way it does not count
    ///   against the bound.
    /// - An entry heavier than the bound allows is **not stored**: the call that stored it
    ///   still returns its value, the listener sees it go with [`RemovalCause::Size`], and
    ///   an older value of its key is removed (`Replaced`). On the quick_cache engine the
    ///   limit is the hot ring, 97% of the bound (the whole bound under 34); on moka, the
    ///   bound.
    ///
    /// The weigher runs on each insert (and, on the quick_cache engine, again when the entry
    /// is evicted), under the engine's lock: it must be cheap, must return the same weight
    /// for the same entry every time, and must not call the cache. One that panics is caught
    /// and the entry weighs 1. A hit never calls it.
    ///
    /// ```
    /// use cache_core::AsyncCache;
    ///
    /// let pages: AsyncCache<String, Vec<u8>> = AsyncCache::builder()
    ///     .max_weight(64 * 1024) // bytes
    ///     .weigher(|key: &String, page: &Vec<u8>| (key.len() + page.len()) as u32)
    ///     .build();
    /// for id in 0..100 {
    ///     pages.insert(format!("page-{id}"), vec![0; 4_000]);
    /// }
    /// let m = pages.metrics();
    /// assert!(m.weight.unwrap() <= 64 * 1024);
    /// assert!(m.size < 17); // 16 pages of 4 KB at most
    /// ```
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.hooks.weigher = Some(Arc::new(weigher));
        self
    }

    /// The bound as a total weight of the entries, measured by the
    /// [`weigher`](Self::weigher) (each entry weighs 1 without one, which makes this
    /// [`maxsize`](Self::maxsize)). `metrics().capacity` reports it and `metrics().weight`
    /// the weight held.
    pub fn max_weight(self, max_weight: u64) -> Self {
        self.maxsize(max_weight)
    }
}
