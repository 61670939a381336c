//! The moka engine: strict LRU order, an exact bound, per-entry time to live.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause as MokaCause;
use moka::policy::EvictionPolicy;

use super::Stored;
use crate::clock;
use crate::evict::{self, Hooks, Listener, Pending, RemovalCause, Removals};
use crate::freshness::Found;
use crate::metrics::{Counters, Event};

/// moka (`sync::Cache`) in LRU mode, with recency and the bound applied at each insert.
pub(crate) struct MokaStore<K, V> {
    cache: moka::sync::Cache<K, Stored<V>>,
    bounded: bool,
    /// The eviction listener, if any. moka calls its own listener where it holds a lock of
    /// the key (or from a read's housekeeping), so that one only queues the removal in
    /// `pending`, and the store's next write delivers it.
    listener: Option<Arc<Listener<K, V>>>,
    pending: Arc<Pending<K, V>>,
    /// With a weigher and a bound: the weigher and the bound, to refuse an entry heavier
    /// than the whole bound before moka admits it (moka would evict everything else first).
    overweight: Option<(Arc<evict::Weigher<K, V>>, u64)>,
    counters: Arc<Counters>,
    /// Whether entries carry a timing (the cache has a freshness policy).
    timed: bool,
}

thread_local! {
    /// Set while this thread removes a key's value because its new value is too heavy to
    /// store: moka reports that removal (synchronously, in this thread) as explicit, and the
    /// listener is told it was a replacement.
    static REPLACING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A read of an entry with a timing.
#[cold]
fn timed<V: Clone>(stored: &Stored<V>) -> Found<V> {
    let now = clock::recent();
    if !stored.is_due_at(now) {
        return Found::Hit(stored.value.clone());
    }
    stored.found_at(now).unwrap_or(Found::Miss)
}

impl<K, V> MokaStore<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn new(
        capacity: Option<u64>,
        counters: &Arc<Counters>,
        hooks: Hooks<K, V>,
        timed: bool,
    ) -> Self {
        let store_counters = Arc::clone(counters);
        let counters = Arc::clone(counters);
        let pending = Arc::new(Pending::default());
        let heard = hooks.listener.is_some();
        let queue = Arc::clone(&pending);
        let mut builder = moka::sync::Cache::builder()
            // LRU rather than moka's default TinyLFU: an `async_lru` user expects the least
            // recently used entry to go, and TinyLFU may refuse a brand-new key outright.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(PerEntryTtl)
            .eviction_listener(move |key: Arc<K>, stored: Stored<V>, cause| {
                record_removal(&counters, cause);
                if heard {
                    let key = Arc::try_unwrap(key).unwrap_or_else(|key| K::clone(&key));
                    let cause = match removal_cause(cause) {
                        RemovalCause::Explicit if REPLACING.get() => RemovalCause::Replaced,
                        cause => cause,
                    };
                    queue.push(key, stored.value, cause);
                }
            });
        if let Some(capacity) = capacity {
            builder = builder.max_capacity(capacity);
        }
        let overweight = hooks.weigher.clone().zip(capacity);
        if let Some(weigher) = hooks.weigher {
            builder = builder.weigher(move |key: &K, stored: &Stored<V>| {
                evict::weigh(&*weigher, key, &stored.value)
            });
        }
        MokaStore {
            cache: builder.build(),
            bounded: capacity.is_some(),
            listener: hooks.listener,
            pending,
            overweight,
            counters: store_counters,
            timed,
        }
    }

    /// The removals moka reported since the last call, for the listener.
    fn removals(&self) -> Removals<K, V> {
        self.pending.removals(self.listener.as_ref())
    }

    /// The value of `key` stored in `generation`. moka checks expiry itself; an entry with a
    /// [`Timing`](crate::freshness::Timing) is kept by moka until its stale-on-error window
    /// ends, and read through its timing. Never inlined: a moka read costs hundreds of
    /// nanoseconds anyway, and its code inlined into the store's beside quick_cache's would keep
    /// the compiler from inlining quick_cache's lookup there.
    #[inline(never)]
    pub(super) fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let stored = self
            .cache
            .get(key)
            .filter(|stored| stored.generation == generation)?;
        match &stored.timing {
            None => Some(stored.value),
            Some(_) => timed(&stored).value(),
        }
    }

    /// [`get`](Self::get), also telling whether the value is due for refresh-ahead.
    #[inline(never)]
    pub(super) fn find<Q>(&self, key: &Q, generation: u64) -> Found<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.cache.get(key) {
            Some(stored) if stored.generation == generation => match &stored.timing {
                None => Found::Hit(stored.value),
                Some(_) => timed(&stored),
            },
            _ => Found::Miss,
        }
    }

    /// The entry of `key`, whatever its state, to `look` (no recency touched).
    pub(super) fn peek<Q, R>(
        &self,
        key: &Q,
        look: impl FnOnce(&Stored<V>) -> Option<R>,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // moka has no read that leaves recency alone; this one is only for caches with a
        // freshness policy (and, for stale-on-error, a load that just failed).
        self.cache.get(key).as_ref().and_then(look)
    }

    pub(super) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.timed {
            return self.cache.contains_key(key);
        }
        self.peek(key, |stored| Some(!stored.is_expired_at(clock::recent())))
            .unwrap_or(false)
    }

    pub(super) fn insert(&self, key: K, stored: Stored<V>) -> Removals<K, V> {
        if let Some((weigher, bound)) = &self.overweight
            && u64::from(evict::weigh(&**weigher, &key, &stored.value)) > *bound
        {
            return self.refuse(key, stored);
        }
        self.cache.insert(key, stored);
        if self.bounded {
            // moka applies recency and the size bound lazily, in batches. Applying them at
            // each insert keeps the bound exact and the eviction order truly LRU (a read
            // before an insert promotes its key), for about 10% of moka's own insert cost.
            self.cache.run_pending_tasks();
        }
        self.removals()
    }

    /// An entry heavier than the bound: not stored, reported as evicted for size, and the old
    /// value of its key removed as replaced (as quick_cache does).
    #[cold]
    fn refuse(&self, key: K, stored: Stored<V>) -> Removals<K, V> {
        REPLACING.set(true);
        self.cache.invalidate(&key);
        REPLACING.set(false);
        self.counters.count(Event::Eviction);
        let mut removals = self.removals();
        removals.push(key, stored.value, RemovalCause::Size);
        removals
    }

    pub(super) fn remove<Q>(&self, key: &Q) -> Removals<K, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache.invalidate(key);
        self.removals()
    }

    pub(super) fn remove_many(&self, keys: &[K]) -> Removals<K, V> {
        for key in keys {
            self.cache.invalidate(key);
        }
        self.removals()
    }

    pub(super) fn clear(&self) -> Removals<K, V> {
        self.cache.invalidate_all();
        if self.listener.is_some() {
            // moka reports the entries of `invalidate_all` from its housekeeping.
            self.settle();
        }
        self.removals()
    }

    /// A clone of every live entry of `generation`.
    pub(super) fn entries(&self, generation: u64) -> Vec<(K, Stored<V>)> {
        let now = clock::now();
        self.cache
            .iter()
            .filter(|(_, stored)| stored.generation == generation && !stored.is_expired_at(now))
            .map(|(key, stored)| (K::clone(&key), stored))
            .collect()
    }

    /// The total weight of the entries held, once pending evictions are applied.
    pub(super) fn weight(&self) -> u64 {
        self.settle();
        self.cache.weighted_size()
    }

    /// moka's housekeeping works through a bounded batch per run (after `invalidate_all` of a
    /// large cache, several runs): run it until the count stops moving.
    pub(super) fn settled_len(&self) -> u64 {
        let settled = self.settle();
        drop(self.removals());
        settled
    }

    fn settle(&self) -> u64 {
        let mut count = u64::MAX;
        loop {
            self.cache.run_pending_tasks();
            let settled = self.cache.entry_count();
            if settled == count {
                return settled;
            }
            count = settled;
        }
    }
}

/// Each entry expires at the instant fixed when it was stored; reads never extend it.
struct PerEntryTtl;

/// moka keeps an expiration time to a multiple of 4,096 ns, rounded down (it packs a
/// generation into the low 12 bits of the word), which would expire an entry up to 4 µs
/// before its TTL: asking for that much longer keeps it from ever expiring early.
const MOKA_TIME_GRAIN: Duration = Duration::from_nanos(4_096);

/// What moka is told an entry has left at `now`.
fn time_left<V>(value: &Stored<V>, now: Instant) -> Option<Duration> {
    value
        .time_left(clock::nanos_since_origin(now))
        .map(|left| left.saturating_add(MOKA_TIME_GRAIN))
}

impl<K, V> moka::Expiry<K, Stored<V>> for PerEntryTtl {
    fn expire_after_create(&self, _key: &K, value: &Stored<V>, now: Instant) -> Option<Duration> {
        time_left(value, now)
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Stored<V>,
        now: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        time_left(value, now)
    }

    /// An entry with an idle timeout lives on from this read (`now`, a little later than the
    /// coarse instant its timing records): moka keeps it at least as long as the timing does.
    fn expire_after_read(
        &self,
        _key: &K,
        value: &Stored<V>,
        now: Instant,
        duration_until_expiry: Option<Duration>,
        _last_modified_at: Instant,
    ) -> Option<Duration> {
        match &value.timing {
            None => duration_until_expiry,
            Some(_) => value
                .time_left_after_read(clock::nanos_since_origin(now))
                .map(|left| left.saturating_add(MOKA_TIME_GRAIN)),
        }
    }
}

fn record_removal(counters: &Counters, cause: MokaCause) {
    match cause {
        MokaCause::Size => counters.count(Event::Eviction),
        MokaCause::Expired => counters.count(Event::Expiration),
        MokaCause::Explicit | MokaCause::Replaced => {}
    }
}

fn removal_cause(cause: MokaCause) -> RemovalCause {
    match cause {
        MokaCause::Size => RemovalCause::Size,
        MokaCause::Expired => RemovalCause::Expired,
        MokaCause::Explicit => RemovalCause::Explicit,
        MokaCause::Replaced => RemovalCause::Replaced,
    }
}
