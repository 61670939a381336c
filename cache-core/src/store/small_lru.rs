//! The quick_cache engine's table for caches of fewer than 34 entries: strict LRU.
//!
//! CLOCK-Pro's probation ring is 3% of the bound, rounded down: none under 34 entries, where
//! quick_cache is plain CLOCK, and CLOCK is not LRU (a read gives an entry a second chance over
//! newer unread ones, and a new key can be the next to go). The Python original and this
//! crate's docs promise LRU for such caches, so they keep their entries here instead: a hash
//! table behind the same reader-sharded lock, each entry stamped from a counter when it is
//! stored or read, and an insert into a full table removing the entry with the oldest stamp
//! (a scan of at most 33 entries). A read takes the shared lock and stamps with one atomic
//! add, so it stays about as cheap as quick_cache's.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use quick_cache::DefaultHashBuilder;

use super::Stored;
use crate::clock;
use crate::evict::{Listener, Pending, RemovalCause, Removals};
use crate::freshness::Found;
use crate::metrics::{Counters, Event};

/// The largest bound kept here: from 34 entries up, CLOCK-Pro has a probation ring.
pub(super) const LARGEST: u64 = 33;

struct Slot<V> {
    stored: Stored<V>,
    /// When it was last stored or read, from [`SmallLru::stamps`].
    used: AtomicU64,
}

/// A strict-LRU table of at most [`LARGEST`] entries.
pub(crate) struct SmallLru<K, V> {
    table: ShardedLock<HashMap<K, Slot<V>, DefaultHashBuilder>>,
    capacity: usize,
    /// The recency counter: a larger stamp is a more recent use.
    stamps: AtomicU64,
    counters: Arc<Counters>,
    /// The eviction listener, if any: removals are handed to it once the lock is released.
    listener: Option<Arc<Listener<K, V>>>,
    /// Expired entries found by reads (whose callers may hold a lock), for the listener.
    pending: Pending<K, V>,
}

impl<K, V> SmallLru<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn new(
        capacity: u64,
        counters: &Arc<Counters>,
        listener: Option<Arc<Listener<K, V>>>,
    ) -> Self {
        let capacity = usize::try_from(capacity.min(LARGEST)).unwrap_or(1);
        SmallLru {
            table: ShardedLock::new(HashMap::with_capacity_and_hasher(
                capacity,
                DefaultHashBuilder::default(),
            )),
            capacity,
            stamps: AtomicU64::new(0),
            counters: Arc::clone(counters),
            listener,
            pending: Pending::default(),
        }
    }

    /// An empty batch of removals for this cache, with the removals that reads left waiting.
    fn removals(&self) -> Removals<K, V> {
        self.pending.removals(self.listener.as_ref())
    }

    /// As quick_cache's lock: a panic under it (a key's `Hash` or `Eq`) does not poison.
    #[inline]
    fn read(&self) -> ShardedLockReadGuard<'_, HashMap<K, Slot<V>, DefaultHashBuilder>> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> ShardedLockWriteGuard<'_, HashMap<K, Slot<V>, DefaultHashBuilder>> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    fn stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed)
    }

    /// The live value of `key` stored in `generation`, made the most recently used. Never
    /// inlined: the other engines' reads are inlined into the store's, and this one's code
    /// beside them would keep the compiler from inlining quick_cache's lookup.
    #[inline(never)]
    pub(super) fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key, generation).value()
    }

    /// [`get`](Self::get), also telling whether the value is due for refresh-ahead.
    #[inline(never)]
    pub(super) fn find<Q>(&self, key: &Q, generation: u64) -> Found<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let table = self.read();
        let Some(slot) = table.get(key) else {
            return Found::Miss;
        };
        let stored = &slot.stored;
        if stored.generation != generation {
            return Found::Miss;
        }
        if stored.expires() {
            let now = clock::recent();
            if stored.is_due_at(now) {
                if let Some(found) = stored.found_at(now) {
                    slot.used.store(self.stamp(), Ordering::Relaxed);
                    return found;
                }
                let identity = stored.identity();
                drop(table);
                self.expire(key, identity);
                return Found::Miss;
            }
        }
        slot.used.store(self.stamp(), Ordering::Relaxed);
        Found::Hit(stored.value.clone())
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
        self.read().get(key).and_then(|slot| look(&slot.stored))
    }

    pub(super) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = clock::recent();
        self.peek(key, |stored| {
            Some(!stored.expires() || !stored.is_due_at(now) || !stored.is_expired_at(now))
        })
        .unwrap_or(false)
    }

    /// Stores `stored`, handing back what it replaced and what the bound evicted.
    pub(super) fn insert(&self, key: K, stored: Stored<V>) -> Removals<K, V> {
        let slot = Slot {
            stored,
            used: AtomicU64::new(self.stamp()),
        };
        let mut table = self.write();
        let evicted = if table.len() >= self.capacity && !table.contains_key(&key) {
            // Stamps are unique (each is one counter increment), so the oldest one names one
            // entry; no reader can stamp while the write lock is held.
            let oldest = table
                .values()
                .map(|slot| slot.used.load(Ordering::Relaxed))
                .min();
            oldest.and_then(|oldest| {
                table
                    .extract_if(|_, slot| slot.used.load(Ordering::Relaxed) == oldest)
                    .next()
            })
        } else {
            None
        };
        let replaced = table.remove_entry(&key);
        table.insert(key, slot);
        drop(table);
        let mut removals = self.removals();
        if let Some((key, slot)) = replaced {
            removals.push(key, slot.stored.value, RemovalCause::Replaced);
        }
        if let Some((key, slot)) = evicted {
            let cause = if slot.stored.is_expired_at(clock::now()) {
                self.counters.count(Event::Expiration);
                RemovalCause::Expired
            } else {
                self.counters.count(Event::Eviction);
                RemovalCause::Size
            };
            removals.push(key, slot.stored.value, cause);
        }
        removals
    }

    pub(super) fn remove<Q>(&self, key: &Q) -> Removals<K, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = self.write().remove_entry(key);
        let mut removals = self.removals();
        if let Some((key, slot)) = removed {
            removals.push(key, slot.stored.value, RemovalCause::Explicit);
        }
        removals
    }

    /// Removes the entries of `keys`, under one lock.
    pub(super) fn remove_many(&self, keys: &[K]) -> Removals<K, V> {
        let mut table = self.write();
        let removed: Vec<_> = keys
            .iter()
            .filter_map(|key| table.remove_entry(key))
            .collect();
        drop(table);
        let mut removals = self.removals();
        for (key, slot) in removed {
            removals.push(key, slot.stored.value, RemovalCause::Explicit);
        }
        removals
    }

    pub(super) fn clear(&self) -> Removals<K, V> {
        // Emptied under the lock, dropped (or handed to the listener) after it.
        let entries: Vec<_> = self.write().drain().collect();
        let mut removals = self.removals();
        for (key, slot) in entries {
            removals.push(key, slot.stored.value, RemovalCause::Explicit);
        }
        removals
    }

    /// A clone of every live entry of `generation`, read under the lock.
    pub(super) fn entries(&self, generation: u64) -> Vec<(K, Stored<V>)> {
        let now = clock::now();
        self.read()
            .iter()
            .filter(|(_, slot)| {
                slot.stored.generation == generation && !slot.stored.is_expired_at(now)
            })
            .map(|(key, slot)| (key.clone(), slot.stored.clone()))
            .collect()
    }

    /// The number of entries, after sweeping the expired ones.
    pub(super) fn settled_len(&self) -> u64 {
        let now = clock::now();
        let mut removals = self.removals();
        let mut table = self.write();
        let expired: Vec<_> = table
            .extract_if(|_, slot| slot.stored.is_dead_at(now))
            .collect();
        let len = table.len();
        drop(table);
        self.counters.add(Event::Expiration, expired.len() as u64);
        for (key, slot) in expired {
            removals.push(key, slot.stored.value, RemovalCause::Expired);
        }
        drop(removals);
        len as u64
    }

    /// Removes `key` if it still holds the entry of `identity`, counting one expiration.
    #[cold]
    fn expire<Q>(&self, key: &Q, identity: (u64, usize))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut table = self.write();
        if table
            .get(key)
            .is_some_and(|slot| slot.stored.identity() == identity)
        {
            let removed = table.remove_entry(key);
            drop(table);
            self.counters.count(Event::Expiration);
            // The caller may hold a lock (a flight registry's shard): the listener hears of
            // it at the cache's next write.
            if let (Some((key, slot)), Some(_)) = (removed, &self.listener) {
                self.pending
                    .push(key, slot.stored.value, RemovalCause::Expired);
            }
        }
    }
}
