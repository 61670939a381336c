//! The moka engine: strict LRU order, an exact bound, per-entry time to live.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;

use super::Stored;
use crate::clock;
use crate::freshness::Found;
use crate::metrics::{Counters, Event};

/// moka (`sync::Cache`) in LRU mode, with recency and the bound applied at each insert.
pub(crate) struct MokaStore<K, V> {
    cache: moka::sync::Cache<K, Stored<V>>,
    bounded: bool,
    /// Whether entries carry a timing (the cache has a freshness policy).
    timed: bool,
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
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn new(capacity: Option<u64>, counters: &Arc<Counters>, timed: bool) -> Self {
        let counters = Arc::clone(counters);
        let mut builder = moka::sync::Cache::builder()
            // LRU rather than moka's default TinyLFU: an `async_lru` user expects the least
            // recently used entry to go, and TinyLFU may refuse a brand-new key outright.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(PerEntryTtl)
            .eviction_listener(move |_key, _value, cause| record_removal(&counters, cause));
        if let Some(capacity) = capacity {
            builder = builder.max_capacity(capacity);
        }
        MokaStore {
            cache: builder.build(),
            bounded: capacity.is_some(),
            timed,
        }
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

    pub(super) fn insert(&self, key: K, stored: Stored<V>) {
        self.cache.insert(key, stored);
        if self.bounded {
            // moka applies recency and the size bound lazily, in batches. Applying them at
            // each insert keeps the bound exact and the eviction order truly LRU (a read
            // before an insert promotes its key), for about 10% of moka's own insert cost.
            self.cache.run_pending_tasks();
        }
    }

    pub(super) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache.invalidate(key);
    }

    pub(super) fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// moka's housekeeping works through a bounded batch per run (after `invalidate_all` of a
    /// large cache, several runs): run it until the count stops moving.
    pub(super) fn settled_len(&self) -> u64 {
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

fn record_removal(counters: &Counters, cause: RemovalCause) {
    match cause {
        RemovalCause::Size => counters.count(Event::Eviction),
        RemovalCause::Expired => counters.count(Event::Expiration),
        RemovalCause::Explicit | RemovalCause::Replaced => {}
    }
}
