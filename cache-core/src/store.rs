//! The storage seam: where values live between loads.
//!
//! Everything above this module (single-flight loading, batching, fencing, metrics) talks to a
//! [`Store`] and never to an engine directly, so an engine is one more variant here. The
//! engines are [`MokaStore`] and [`QuickStore`]; users pick one per cache with [`Engine`].
//!
//! Every stored value carries the cache *generation* it was loaded in. `clear` bumps the
//! generation, which makes every older entry invisible at once, whatever the engine's own
//! bookkeeping of bulk invalidation is (moka's `invalidate_all` compares timestamps, which a
//! coarse clock could tie; quick_cache clears shard by shard).

mod moka_store;
mod quick_store;

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, NEVER};
use crate::evict::{Hooks, Removals};
use crate::metrics::Counters;

use self::moka_store::MokaStore;
use self::quick_store::QuickStore;

/// The storage engine of a cache, chosen with
/// [`AsyncCacheBuilder::engine`](crate::AsyncCacheBuilder::engine) or the `engine = "..."`
/// option of the cache attributes.
///
/// Both engines keep every guarantee of [`AsyncCache`](crate::AsyncCache) (single-flight
/// loading, fencing, per-entry TTL, an exact size bound, metrics); they differ in speed, memory
/// and which entry goes when the cache is full.
///
/// | engine | reads | eviction when full | memory |
/// |---|---|---|---|
/// | [`QuickCache`](Engine::QuickCache) (default) | a shared read lock and a reference bit | CLOCK-Pro: LRU-like, a read gives a second chance; a new key must be read (or seen recently) before the next arrives to stay | compact |
/// | [`Moka`](Engine::Moka) | lock-free lookup, then each read is queued for the policy | strict LRU | larger |
///
/// ```
/// use cache_core::{AsyncCache, Engine};
///
/// let strict_lru: AsyncCache<u64, String> =
///     AsyncCache::builder().maxsize(1_000).engine(Engine::Moka).build();
/// assert_eq!(strict_lru.engine(), Engine::Moka);
/// assert_eq!(AsyncCache::<u64, u64>::new().engine(), Engine::QuickCache);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// [quick_cache](https://docs.rs/quick_cache): the fastest reads and the least memory.
    #[default]
    QuickCache,
    /// [moka](https://docs.rs/moka) in LRU mode: the least recently used entry always goes first.
    Moka,
}

/// A value as an engine holds it.
#[derive(Clone)]
pub(crate) struct Stored<V> {
    pub(crate) value: V,
    pub(crate) generation: u64,
    /// When it expires, on the [`clock`]; [`NEVER`] never does. Fixed at insert: reads never
    /// extend it.
    pub(crate) expires_at: u64,
}

impl<V> Stored<V> {
    /// `value`, loaded in `generation`, living `ttl` from now (`None`: forever; a TTL too
    /// large for the clock also never expires).
    pub(crate) fn new(value: V, generation: u64, ttl: Option<Duration>) -> Self {
        Stored {
            value,
            generation,
            expires_at: clock::expiry(ttl),
        }
    }

    /// Whether it has a TTL, so that a read must look at the clock.
    #[inline]
    pub(crate) fn expires(&self) -> bool {
        self.expires_at != NEVER
    }

    pub(crate) fn is_expired_at(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// How long the entry has left at `now`; `None` never expires.
    pub(crate) fn time_left(&self, now: u64) -> Option<Duration> {
        self.expires()
            .then(|| Duration::from_nanos(self.expires_at.saturating_sub(now)))
    }
}

/// The engine behind one cache.
pub(crate) enum Store<K, V> {
    /// `maxsize(0)`: nothing is ever stored.
    Disabled,
    Moka(MokaStore<K, V>),
    QuickCache(QuickStore<K, V>),
}

impl<K, V> Store<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(
        engine: Engine,
        capacity: Option<u64>,
        counters: &Arc<Counters>,
        hooks: Hooks<K, V>,
    ) -> Self {
        match (capacity, engine) {
            (Some(0), _) => Store::Disabled,
            (capacity, Engine::Moka) => Store::Moka(MokaStore::new(capacity, counters, hooks)),
            (capacity, Engine::QuickCache) => {
                Store::QuickCache(QuickStore::new(capacity, counters, hooks))
            }
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
            Store::Moka(store) => store.get(key, generation),
            Store::QuickCache(store) => store.get(key, generation),
        }
    }

    /// Hands the live value of `key` stored in `generation` (or `None`) to `then`, while the
    /// engine still holds it: the caller's own work runs inside the lookup, with no fence
    /// between the two.
    #[inline]
    pub(crate) fn get_then<Q, R>(
        &self,
        key: &Q,
        generation: u64,
        then: impl FnOnce(Option<&V>) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Store::Disabled => then(None),
            Store::Moka(store) => then(store.get(key, generation).as_ref()),
            Store::QuickCache(store) => store.get_then(key, generation, then),
        }
    }

    /// Whether `key` has a live value, without touching its recency. An entry of an older
    /// generation is gone from the engine too (`clear` empties it), but for a few instructions
    /// after a load fenced by `clear` stores and unstores its value.
    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Store::Disabled => false,
            Store::Moka(store) => store.contains(key),
            Store::QuickCache(store) => store.contains(key),
        }
    }

    /// Stores `stored`. What it replaced or evicted comes back, for the caller to drop once
    /// it holds no lock (see [`Removals`]).
    pub(crate) fn insert(&self, key: K, stored: Stored<V>) -> Removals<K, V> {
        match self {
            Store::Disabled => Removals::new(None),
            Store::Moka(store) => store.insert(key, stored),
            Store::QuickCache(store) => store.insert(key, stored),
        }
    }

    pub(crate) fn remove<Q>(&self, key: &Q) -> Removals<K, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Store::Disabled => Removals::new(None),
            Store::Moka(store) => store.remove(key),
            Store::QuickCache(store) => store.remove(key),
        }
    }

    /// Drops every entry. Callers bump the generation first, so correctness does not depend
    /// on this; it only frees the memory.
    pub(crate) fn clear(&self) -> Removals<K, V> {
        match self {
            Store::Disabled => Removals::new(None),
            Store::Moka(store) => store.clear(),
            Store::QuickCache(store) => store.clear(),
        }
    }

    /// The number of entries once pending evictions and expirations have been applied.
    pub(crate) fn settled_len(&self) -> u64 {
        match self {
            Store::Disabled => 0,
            Store::Moka(store) => store.settled_len(),
            Store::QuickCache(store) => store.settled_len(),
        }
    }

    /// Removes the entries of `keys`.
    pub(crate) fn remove_many(&self, keys: &[K]) -> Removals<K, V> {
        match self {
            Store::Disabled => Removals::new(None),
            Store::Moka(store) => store.remove_many(keys),
            Store::QuickCache(store) => store.remove_many(keys),
        }
    }

    /// A clone of every live entry of `generation`, in no particular order.
    pub(crate) fn entries(&self, generation: u64) -> Vec<(K, Stored<V>)> {
        match self {
            Store::Disabled => Vec::new(),
            Store::Moka(store) => store.entries(generation),
            Store::QuickCache(store) => store.entries(generation),
        }
    }

    /// The total weight of the entries held (their number, without a weigher).
    pub(crate) fn weight(&self) -> u64 {
        match self {
            Store::Disabled => 0,
            Store::Moka(store) => store.weight(),
            Store::QuickCache(store) => store.weight(),
        }
    }
}

#[cfg(test)]
mod tests;
