//! Whole-cache operations: iteration over the live entries and removal by predicate.

use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use crate::AsyncCache;
use crate::clock;

/// An iterator over the live entries of a cache, from [`AsyncCache::iter`]: a clone of each
/// key and value, with the time it has left.
pub struct Iter<K, V> {
    entries: std::vec::IntoIter<(K, V, Option<Duration>)>,
}

impl<K, V> Iterator for Iter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        self.entries.next().map(|(key, value, _)| (key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl<K, V> ExactSizeIterator for Iter<K, V> {}

impl<K, V> Iter<K, V> {
    /// The entries left, each with the time it has left to live (`None`: it never expires),
    /// as of the call to [`iter`](AsyncCache::iter).
    pub fn with_time_left(self) -> impl ExactSizeIterator<Item = (K, V, Option<Duration>)> {
        self.entries
    }
}

impl<K, V> fmt::Debug for Iter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.entries.len())
            .finish()
    }
}

impl<K, V> AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The live entries: every key with its value, in no particular order.
    ///
    /// The entries are cloned out of the cache when `iter` is called, a lock at a time, so
    /// the iterator holds no lock and sees none of the changes made while it runs. It counts
    /// no hit or miss and does not touch the entries' recency. Expired entries are skipped.
    ///
    /// ```
    /// let cache = cache_core::AsyncCache::<u64, u64>::new();
    /// cache.insert(1, 10);
    /// cache.insert(2, 20);
    /// let mut entries: Vec<(u64, u64)> = cache.iter().collect();
    /// entries.sort();
    /// assert_eq!(entries, [(1, 10), (2, 20)]);
    /// assert_eq!(cache.metrics().hits, 0);
    /// ```
    pub fn iter(&self) -> Iter<K, V> {
        let now = clock::now();
        let entries: Vec<_> = self
            .inner
            .store
            .entries(self.inner.generation())
            .into_iter()
            .map(|(key, stored)| {
                let left = stored.time_to_expiry(now);
                (key, stored.value, left)
            })
            .collect();
        // A sweep of the engine may have removals waiting for the listener.
        drop(self.inner.store.remove_many(&[]));
        Iter {
            entries: entries.into_iter(),
        }
    }

    /// Removes every entry for which `predicate` returns `true`, fencing the loads in flight
    /// of the keys it removes as [`invalidate`](Self::invalidate) does: once it returns, no
    /// call sees a value of those keys loaded before it. Returns how many entries it removed.
    ///
    /// The predicate runs on a copy of the entries, with no lock held (it may call the
    /// cache), once per live entry. An entry stored while it runs may be missed; an entry of a
    /// removed key replaced while it runs is removed too (a removal is never stale). A load
    /// in flight of a key the cache does not hold is not fenced, since there is no value to
    /// test: [`invalidate`](Self::invalidate) it by key. In a fleet cache, each removed key
    /// is invalidated across the fleet. The eviction listener hears each removal as
    /// `Explicit`.
    ///
    /// ```
    /// let cache = cache_core::AsyncCache::<String, u64>::new();
    /// for (name, stock) in [("apple", 0), ("pear", 3), ("plum", 0)] {
    ///     cache.insert(name.to_string(), stock);
    /// }
    /// assert_eq!(cache.invalidate_if(|_name, stock| *stock == 0), 2);
    /// assert_eq!(cache.get("pear"), Some(3));
    /// assert_eq!(cache.get("apple"), None);
    /// ```
    pub fn invalidate_if(&self, mut predicate: impl FnMut(&K, &V) -> bool) -> usize {
        let keys: Vec<K> = self
            .inner
            .store
            .entries(self.inner.generation())
            .into_iter()
            .filter(|(key, stored)| predicate(key, &stored.value))
            .map(|(key, _)| key)
            .collect();
        for key in &keys {
            self.inner.fence(key);
        }
        drop(self.inner.store.remove_many(&keys));
        if let Some(fleet) = &self.inner.fleet {
            for key in &keys {
                drop(fleet.publish_invalidate(key, &self.inner.counters));
            }
        }
        keys.len()
    }
}
