//! The storage seam: where values live between loads.
//!
//! Everything above this module (single-flight loading, batching, fencing, metrics) talks to a
//! [`Store`] and never to an engine directly, so a second engine is one more variant here.
//!
//! Every stored value carries the cache *generation* it was loaded in. `clear` bumps the
//! generation, which makes every older entry invisible at once, whatever the engine's own
//! bookkeeping of bulk invalidation is (moka's `invalidate_all` compares timestamps, which a
//! coarse clock could tie).

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;

use crate::metrics::Counters;

/// A value as an engine holds it.
#[derive(Clone)]
pub(crate) struct Stored<V> {
    pub(crate) value: V,
    pub(crate) generation: u64,
    /// Time to live from insertion; `None` never expires. Fixed at insert.
    pub(crate) ttl: Option<Duration>,
}

/// The engine behind one cache.
pub(crate) enum Store<K, V> {
    /// `maxsize(0)`: nothing is ever stored.
    Disabled,
    Moka(MokaStore<K, V>),
}

impl<K, V> Store<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(capacity: Option<u64>, counters: &Arc<Counters>) -> Self {
        match capacity {
            Some(0) => Store::Disabled,
            capacity => Store::Moka(MokaStore::new(capacity, counters)),
        }
    }

    /// The live value of `key` stored in `generation`.
    #[inline]
    pub(crate) fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Store::Disabled => None,
            Store::Moka(store) => store
                .cache
                .get(key)
                .filter(|stored| stored.generation == generation)
                .map(|stored| stored.value),
        }
    }

    /// Whether `key` has a live value, without touching its recency. An entry of an older
    /// generation is gone from moka's point of view too (`clear` calls `invalidate_all`), but
    /// for a few instructions after a load fenced by `clear` stores and unstores its value.
    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Store::Disabled => false,
            Store::Moka(store) => store.cache.contains_key(key),
        }
    }

    pub(crate) fn insert(&self, key: K, stored: Stored<V>) {
        match self {
            Store::Disabled => {}
            Store::Moka(store) => store.insert(key, stored),
        }
    }

    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Store::Disabled => {}
            Store::Moka(store) => store.cache.invalidate(key),
        }
    }

    /// Drops every entry. Callers bump the generation first, so correctness does not depend
    /// on this; it only frees the memory.
    pub(crate) fn clear(&self) {
        match self {
            Store::Disabled => {}
            Store::Moka(store) => store.cache.invalidate_all(),
        }
    }

    /// The number of entries once pending evictions and expirations have been applied.
    pub(crate) fn settled_len(&self) -> u64 {
        match self {
            Store::Disabled => 0,
            Store::Moka(store) => {
                store.cache.run_pending_tasks();
                store.cache.entry_count()
            }
        }
    }
}

/// moka with an exact LRU bound and per-entry time to live.
pub(crate) struct MokaStore<K, V> {
    cache: moka::sync::Cache<K, Stored<V>>,
    bounded: bool,
}

impl<K, V> MokaStore<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(capacity: Option<u64>, counters: &Arc<Counters>) -> Self {
        let counters = Arc::clone(counters);
        let mut builder = moka::sync::Cache::builder()
            // LRU rather than moka's default TinyLFU: an `async_lru` user expects the least
            // recently used entry to go, and TinyLFU may refuse a brand-new key outright.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(PerEntryTtl)
            .eviction_listener(move |_key, _value, cause| counters.record_removal(cause));
        if let Some(capacity) = capacity {
            builder = builder.max_capacity(capacity);
        }
        MokaStore {
            cache: builder.build(),
            bounded: capacity.is_some(),
        }
    }

    fn insert(&self, key: K, stored: Stored<V>) {
        self.cache.insert(key, stored);
        if self.bounded {
            // moka applies recency and the size bound lazily, in batches. Applying them at
            // each insert keeps the bound exact and the eviction order truly LRU (a read
            // before an insert promotes its key), for about 10% of moka's own insert cost.
            self.cache.run_pending_tasks();
        }
    }
}

/// Each entry expires after the TTL it was inserted with; reads never extend it.
struct PerEntryTtl;

impl<K, V> moka::Expiry<K, Stored<V>> for PerEntryTtl {
    fn expire_after_create(&self, _key: &K, value: &Stored<V>, _now: Instant) -> Option<Duration> {
        value.ttl
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Stored<V>,
        _now: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl
    }
}

impl Counters {
    fn record_removal(&self, cause: RemovalCause) {
        match cause {
            RemovalCause::Size => self.evictions.incr(),
            RemovalCause::Expired => self.expirations.incr(),
            RemovalCause::Explicit | RemovalCause::Replaced => {}
        }
    }
}
