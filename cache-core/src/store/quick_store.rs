//! The quick_cache engine: reads that scale across threads, an exact bound, expiry checked
//! on read.
//!
//! One quick_cache policy (its `unsync::Cache`) holds every entry, so the bound is exactly
//! `maxsize`: quick_cache's own sharded cache bounds each shard at its share of it, whatever
//! room the others have. Its policy is CLOCK-Pro: a read only bumps a reference count on the
//! entry (no list to reorder, so reads need no exclusive access), and eviction gives
//! referenced entries a second chance. Entries fill a hot ring first; once it is full, new keys
//! wait in a cold (probation) ring of 3% of the bound and stay only if they are read (or were
//! evicted recently) before their turn comes, which keeps one-off keys from flushing the
//! working set. The cold ring's share is rounded down, so a cache of fewer than 34 entries would
//! have none, and plain CLOCK is not LRU (a read entry outlives newer unread ones, and a new
//! key can be the next to go): such caches use the [`small_lru`](super::small_lru) table.
//!
//! The policy sits behind crossbeam's `ShardedLock`, a reader-writer lock split in eight: a
//! reader locks the part of its own thread, so threads hitting one cache at once never write
//! the same lock word (one word shared by every reader is what held two threads to fewer hits
//! than one), and a writer locks all eight (about 35 ns more per insert or removal).
//!
//! quick_cache has no time to live: each entry carries the instant it expires at, checked on
//! read against the coarse [`clock`](crate::clock). Entries stored without a TTL never read the
//! clock.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use quick_cache::unsync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use super::Stored;
use crate::clock;
use crate::evict::{self, Hooks, Listener, Pending, RemovalCause, Removals};
use crate::freshness::{Found, Reading};
use crate::metrics::{Counters, Event};

/// The share of the bound that CLOCK-Pro's cold (probation) ring gets: quick_cache's default.
const COLD_PERCENT: u64 = 3;

/// The hot ring's share of `capacity`: all but 3% of it, the cold ring's share rounded down
/// (quick_cache rounds the hot share down instead, which gives a 3-entry cache a cold ring of
/// one entry and evicts a new key before an old unread one).
fn hot_allocation(capacity: u64) -> f64 {
    let hot = capacity - capacity / 100 * COLD_PERCENT - capacity % 100 * COLD_PERCENT / 100;
    // Half an entry over `hot`, so that quick_cache's `(capacity * share) as u64` is `hot`.
    ((hot as f64 + 0.5) / capacity as f64).min(1.0)
}

/// How many expired entries a sweep removes under one hold of the write lock (about 100 µs
/// of it in a table of a million entries), and how long it lets go of the lock between two
/// holds.
const SWEEP_BATCH: usize = 256;
const SWEEP_PAUSE: std::time::Duration = std::time::Duration::from_micros(20);

/// How many entries an unbounded store is sized for up front (it grows past this as needed).
const UNBOUNDED_ESTIMATE: usize = 4_096;

type Engine<K, V> = Cache<K, Stored<V>, Weigh<K, V>, DefaultHashBuilder, CollectEvicted>;

/// quick_cache's policy behind a reader-sharded lock, with an exact bound and per-entry expiry.
pub(crate) struct QuickStore<K, V> {
    cache: ShardedLock<Engine<K, V>>,
    /// Set once an entry with a TTL was stored: from then on `settled_len` sweeps expired
    /// entries, so that `size` drops once they expire even if nobody reads them.
    expiring: AtomicBool,
    counters: Arc<Counters>,
    /// The eviction listener, if any: removals are handed to it once the lock is released.
    listener: Option<Arc<Listener<K, V>>>,
    /// Expired entries found by reads (whose callers may hold a lock), for the listener.
    pending: Pending<K, V>,
}

impl<K, V> QuickStore<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn new(capacity: Option<u64>, counters: &Arc<Counters>, hooks: Hooks<K, V>) -> Self {
        let weighted = hooks.weigher.is_some();
        let mut options = OptionsBuilder::new();
        match capacity {
            // A bound in weight says nothing of the number of entries: size the table as an
            // unbounded one, and let it grow.
            Some(capacity) if weighted => options
                .estimated_items_capacity(
                    UNBOUNDED_ESTIMATE.min(usize::try_from(capacity).unwrap_or(usize::MAX)),
                )
                .weight_capacity(capacity)
                .hot_allocation(hot_allocation(capacity)),
            Some(capacity) => options
                .estimated_items_capacity(usize::try_from(capacity).unwrap_or(usize::MAX))
                .weight_capacity(capacity)
                .hot_allocation(hot_allocation(capacity)),
            None => options
                .estimated_items_capacity(UNBOUNDED_ESTIMATE)
                .weight_capacity(u64::MAX),
        };
        let options = options
            .build()
            .expect("every required quick_cache option is set");
        QuickStore {
            cache: ShardedLock::new(Cache::with_options(
                options,
                Weigh(hooks.weigher),
                DefaultHashBuilder::default(),
                CollectEvicted,
            )),
            expiring: AtomicBool::new(false),
            counters: Arc::clone(counters),
            listener: hooks.listener,
            pending: Pending::default(),
        }
    }

    /// A panic under the lock (a key's `Hash` or `Eq`) leaves quick_cache consistent enough to
    /// go on serving, as with the `parking_lot` lock quick_cache takes by default, which does
    /// not poison.
    #[inline]
    fn read(&self) -> ShardedLockReadGuard<'_, Engine<K, V>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> ShardedLockWriteGuard<'_, Engine<K, V>> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live value of `key` stored in `generation`. Reads the clock only for an entry
    /// that has a deadline; an expired entry is removed (and counted) on the spot.
    #[inline]
    pub(super) fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cache = self.read();
        let stored = cache.get(key)?;
        if stored.generation != generation {
            return None;
        }
        if stored.expires() {
            let now = clock::recent();
            if stored.is_due_at(now) {
                return self.due(cache, key, now).value();
            }
        }
        Some(stored.value.clone())
    }

    /// [`get`](Self::get), also telling whether the value is due for refresh-ahead.
    #[inline]
    pub(super) fn find<Q>(&self, key: &Q, generation: u64) -> Found<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cache = self.read();
        let Some(stored) = cache.get(key) else {
            return Found::Miss;
        };
        if stored.generation != generation {
            return Found::Miss;
        }
        if stored.expires() {
            let now = clock::recent();
            if stored.is_due_at(now) {
                return self.due(cache, key, now);
            }
        }
        Found::Hit(stored.value.clone())
    }

    /// A read of `key` (its live entry, under `cache`) past its deadline word: expired (and
    /// then removed unless a stale-on-error window keeps it), or due for its policy.
    #[cold]
    #[inline(never)]
    fn due<Q>(&self, cache: ShardedLockReadGuard<'_, Engine<K, V>>, key: &Q, now: u64) -> Found<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(stored) = cache.peek(key) else {
            return Found::Miss;
        };
        if let Some(found) = stored.found_at(now) {
            return found;
        }
        let identity = stored.identity();
        drop(cache);
        self.expire(key, identity);
        Found::Miss
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
        self.read().peek(key).and_then(look)
    }

    /// [`get`](Self::get), handing the value to `then` under the lock instead of cloning it.
    #[inline(always)]
    pub(super) fn get_then<Q, R>(
        &self,
        key: &Q,
        generation: u64,
        then: impl FnOnce(Option<&V>) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cache = self.read();
        let Some(stored) = cache
            .get(key)
            .filter(|stored| stored.generation == generation)
        else {
            return then(None);
        };
        if stored.expires() {
            let now = clock::recent();
            if stored.is_due_at(now) {
                match stored.read_at(now) {
                    Reading::Live | Reading::RefreshDue => {}
                    Reading::Stale => return then(None),
                    Reading::Dead => {
                        let identity = stored.identity();
                        drop(cache);
                        self.expire(key, identity);
                        return then(None);
                    }
                }
            }
        }
        then(Some(&stored.value))
    }

    /// Whether `key` has a live entry, without counting as a read for the eviction policy.
    pub(super) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cache = self.read();
        let Some(stored) = cache.peek(key) else {
            return false;
        };
        let now = clock::recent();
        if !stored.expires() || !stored.is_due_at(now) {
            return true;
        }
        if stored.is_dead_at(now) {
            let identity = stored.identity();
            drop(cache);
            self.expire(key, identity);
            return false;
        }
        !stored.is_expired_at(now)
    }

    /// Stores `stored`, handing back what it replaced and what the bound evicted.
    pub(super) fn insert(&self, key: K, stored: Stored<V>) -> Removals<K, V> {
        if stored.expires() && !self.expiring.load(Ordering::Relaxed) {
            self.expiring.store(true, Ordering::Relaxed);
        }
        let mut evicted = Evicted::<K, V>::default();
        let mut cache = self.write();
        // quick_cache reports the value an insert replaces as its first eviction (a key too
        // heavy to admit has its old value removed first too): knowing the key was resident
        // tells a replacement from an eviction.
        let replacing = cache.peek(&key).is_some();
        cache.insert_with_lifecycle(key, stored, &mut evicted);
        drop(cache);
        let mut removals = self.removals();
        for (index, (key, stored)) in evicted.drain().enumerate() {
            let cause = if index == 0 && replacing {
                RemovalCause::Replaced
            } else if stored.expires() && stored.is_expired_at(clock::now()) {
                self.counters.count(Event::Expiration);
                RemovalCause::Expired
            } else {
                self.counters.count(Event::Eviction);
                RemovalCause::Size
            };
            removals.push(key, stored.value, cause);
        }
        removals
    }

    pub(super) fn remove<Q>(&self, key: &Q) -> Removals<K, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = self.write().remove(key);
        let mut removals = self.removals();
        if let Some((key, stored)) = removed {
            removals.push(key, stored.value, RemovalCause::Explicit);
        }
        removals
    }

    /// Removes the entries of `keys`, under one lock.
    pub(super) fn remove_many(&self, keys: &[K]) -> Removals<K, V> {
        let mut cache = self.write();
        let removed: Vec<_> = keys.iter().filter_map(|key| cache.remove(key)).collect();
        drop(cache);
        let mut removals = self.removals();
        for (key, stored) in removed {
            removals.push(key, stored.value, RemovalCause::Explicit);
        }
        removals
    }

    pub(super) fn clear(&self) -> Removals<K, V> {
        let mut cache = self.write();
        // Emptied under the lock, dropped (or handed to the listener) after it.
        let entries: Vec<_> = cache.drain().collect();
        drop(cache);
        let mut removals = self.removals();
        for (key, stored) in entries {
            removals.push(key, stored.value, RemovalCause::Explicit);
        }
        removals
    }

    /// A clone of every live entry of `generation`, read under the lock.
    pub(super) fn entries(&self, generation: u64) -> Vec<(K, Stored<V>)> {
        let now = clock::now();
        self.read()
            .iter()
            .filter(|(_, stored)| stored.generation == generation && !stored.is_expired_at(now))
            .map(|(key, stored)| (key.clone(), stored.clone()))
            .collect()
    }

    /// The total weight of the entries held.
    pub(super) fn weight(&self) -> u64 {
        self.read().weight()
    }

    /// An empty batch of removals for this cache, with the removals that reads left waiting.
    fn removals(&self) -> Removals<K, V> {
        self.pending.removals(self.listener.as_ref())
    }

    /// The number of entries, after sweeping the expired ones if any entry has a TTL.
    ///
    /// A scrape must not stall the hits around it: the expired entries are found under the
    /// shared lock (reads go on meanwhile), then removed under the write lock a few at a time,
    /// each only if it still holds the entry found (a value stored since stays).
    pub(super) fn settled_len(&self) -> u64 {
        if !self.expiring.load(Ordering::Relaxed) {
            drop(self.removals());
            return self.read().len() as u64;
        }
        let now = clock::now();
        let dead: Vec<(K, (u64, usize))> = self
            .read()
            .iter()
            .filter(|(_, stored)| stored.is_dead_at(now))
            .map(|(key, stored)| (key.clone(), stored.identity()))
            .collect();
        for (index, batch) in dead.chunks(SWEEP_BATCH).enumerate() {
            if index > 0 {
                // Time for the readers the last batch kept waiting to take the lock: a
                // writer that takes it straight back would starve them.
                std::thread::sleep(SWEEP_PAUSE);
            }
            let mut cache = self.write();
            let removed: Vec<_> = batch
                .iter()
                .filter_map(|(key, identity)| {
                    cache.remove_if(key, |stored| stored.identity() == *identity)
                })
                .collect();
            drop(cache);
            self.counters.add(Event::Expiration, removed.len() as u64);
            let mut removals = self.removals();
            if removals.is_heard() {
                for (key, stored) in removed {
                    removals.push(key, stored.value, RemovalCause::Expired);
                }
            }
        }
        drop(self.removals());
        self.read().len() as u64
    }

    /// Removes `key` if it still holds the entry of `identity` (a newer value stored
    /// meanwhile stays), counting one expiration.
    #[cold]
    fn expire<Q>(&self, key: &Q, identity: (u64, usize))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = self
            .write()
            .remove_if(key, |stored| stored.identity() == identity);
        if let Some((key, stored)) = removed {
            self.counters.count(Event::Expiration);
            // The caller may hold a lock (a flight registry's shard): the listener hears of
            // it at the cache's next write.
            if self.listener.is_some() {
                self.pending.push(key, stored.value, RemovalCause::Expired);
            }
        }
    }
}

/// The weight of an entry: the cache's weigher, or 1 for every entry (a bound in entries).
struct Weigh<K, V>(Option<Arc<evict::Weigher<K, V>>>);

impl<K, V> Clone for Weigh<K, V> {
    fn clone(&self) -> Self {
        Weigh(self.0.clone())
    }
}

impl<K, V> Weighter<K, Stored<V>> for Weigh<K, V> {
    #[inline]
    fn weight(&self, key: &K, stored: &Stored<V>) -> u64 {
        match &self.0 {
            None => 1,
            Some(weigher) => u64::from(evict::weigh(&**weigher, key, &stored.value)),
        }
    }
}

/// quick_cache's hooks: keeps each entry an insert removes, in order, to be classified,
/// counted and dropped (or handed to the listener) once the lock is released.
#[derive(Clone)]
struct CollectEvicted;

/// What one insert removed.
struct Evicted<K, V> {
    /// One or two entries at most, but for a heavy entry that evicts many light ones.
    inline: [Option<(K, Stored<V>)>; 2],
    spill: Vec<(K, Stored<V>)>,
}

impl<K, V> Default for Evicted<K, V> {
    fn default() -> Self {
        Evicted {
            inline: [None, None],
            spill: Vec::new(),
        }
    }
}

impl<K, V> Evicted<K, V> {
    fn drain(&mut self) -> impl Iterator<Item = (K, Stored<V>)> + '_ {
        self.inline
            .iter_mut()
            .filter_map(Option::take)
            .chain(self.spill.drain(..))
    }
}

impl<K, V> Lifecycle<K, Stored<V>> for CollectEvicted {
    type RequestState = Evicted<K, V>;

    fn on_evict(&self, state: &mut Self::RequestState, key: K, stored: Stored<V>) {
        match state.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some((key, stored)),
            None => state.spill.push((key, stored)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hot_allocation;

    #[test]
    fn the_cold_ring_is_three_percent_of_the_bound_rounded_down() {
        for (capacity, hot) in [
            (1, 1),
            (3, 3),
            (33, 33),
            (34, 33),
            (100, 97),
            (10_001, 9_701),
        ] {
            let share = hot_allocation(capacity);
            assert!(share <= 1.0);
            assert_eq!((capacity as f64 * share) as u64, hot, "capacity {capacity}");
        }
    }
}
