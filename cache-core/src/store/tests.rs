//! What each engine must do behind the seam: an exact bound, eviction order, expiry checked
//! on read, and every removal counted once under the right name.

use std::thread::sleep;
use std::time::Duration;

use crate::{AsyncCache, Engine};

const ENGINES: [Engine; 2] = [Engine::QuickCache, Engine::Moka];

fn bounded(engine: Engine, maxsize: u64) -> AsyncCache<u64, u64> {
    AsyncCache::builder()
        .maxsize(maxsize)
        .engine(engine)
        .build()
}

#[test]
fn the_bound_is_exact_and_every_eviction_is_counted() {
    for engine in ENGINES {
        let cache = bounded(engine, 100);
        for key in 0..1_000 {
            cache.insert(key, key);
            assert!(cache.metrics().size <= 100, "{engine:?}: over the bound");
        }
        let m = cache.metrics();
        assert_eq!(
            (m.size, m.evictions, m.expirations),
            (100, 900, 0),
            "{engine:?}"
        );
        let live = (0..1_000).filter(|key| cache.contains_key(key)).count();
        assert_eq!(live, 100, "{engine:?}");
    }
}

#[test]
fn threads_inserting_and_reading_at_once_never_take_the_cache_over_its_bound() {
    for engine in ENGINES {
        let cache = bounded(engine, 500);
        let over = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for thread in 0..4_u64 {
                let (cache, over) = (&cache, &over);
                s.spawn(move || {
                    for i in 0..5_000 {
                        let key = thread * 1_000_000 + i;
                        cache.insert(key, key);
                        // Readers hit while the others insert (and evict).
                        assert_eq!(cache.get(&key).unwrap_or(key), key);
                        if i % 500 == 0 && cache.metrics().size > 500 {
                            over.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert!(
            !over.into_inner(),
            "{engine:?}: over the bound while threads inserted"
        );
        let m = cache.metrics();
        assert_eq!((m.size, m.evictions), (500, 19_500), "{engine:?}");
    }
}

#[test]
fn a_cache_filled_to_its_bound_keeps_every_entry() {
    for engine in ENGINES {
        let cache = bounded(engine, 1_000);
        for key in 0..1_000 {
            cache.insert(key, key);
        }
        assert!(
            (0..1_000).all(|key| cache.get(&key) == Some(key)),
            "{engine:?}"
        );
        assert_eq!(cache.metrics().evictions, 0, "{engine:?}");
    }
}

#[test]
fn a_read_entry_outlives_unread_ones_and_unread_ones_go_oldest_first() {
    for engine in ENGINES {
        let cache = bounded(engine, 4);
        for key in 1..=4 {
            cache.insert(key, key);
        }
        assert_eq!(cache.get(&1), Some(1));
        cache.insert(5, 5); // evicts 2: 1 was read
        cache.insert(6, 6); // evicts the oldest unread one left
        assert_eq!(cache.get(&1), Some(1), "{engine:?}: the read entry went");
        assert!(!cache.contains_key(&2), "{engine:?}: 2 stayed");
        assert_eq!(cache.metrics().size, 4, "{engine:?}");
    }
}

#[test]
fn an_expired_entry_is_never_returned_and_is_counted_once() {
    for engine in ENGINES {
        let cache = bounded(engine, 100);
        cache.insert_with_ttl(1, 10, Some(Duration::from_millis(50)));
        cache.insert_with_ttl(2, 20, None);
        cache.insert_with_ttl(3, 30, Some(Duration::from_secs(3_600)));
        assert_eq!(cache.get(&1), Some(10));
        sleep(Duration::from_millis(200));
        assert_eq!(
            cache.get(&1),
            None,
            "{engine:?}: an expired entry was returned"
        );
        assert!(!cache.contains_key(&1), "{engine:?}");
        assert_eq!((cache.get(&2), cache.get(&3)), (Some(20), Some(30)));
        if engine == Engine::QuickCache {
            // Checked on read: gone at once, and counted by the read that found it expired.
            let m = cache.metrics();
            assert_eq!((m.size, m.expirations, m.evictions), (2, 1, 0));
        }
    }
}

#[test]
fn quick_cache_sweeps_expired_entries_nobody_reads_when_metrics_are_taken() {
    let cache = bounded(Engine::QuickCache, 100);
    for key in 0..10 {
        cache.insert_with_ttl(key, key, Some(Duration::from_millis(50)));
    }
    cache.insert(99, 99);
    sleep(Duration::from_millis(200));
    let m = cache.metrics();
    assert_eq!((m.size, m.expirations), (1, 10));
    assert_eq!(cache.metrics().expirations, 10, "counted once");
}

// The sweep finds expired entries under the shared lock and removes them later, in batches:
// a key stored again in between keeps its new value.
#[test]
fn a_sweep_keeps_the_values_stored_again_while_it_runs() {
    const KEYS: u64 = 20_000;
    for _ in 0..5 {
        let cache = bounded(Engine::QuickCache, 2 * KEYS);
        for key in 0..KEYS {
            cache.insert_with_ttl(key, key, Some(Duration::from_nanos(1)));
        }
        sleep(Duration::from_millis(5));
        let stored = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for key in 0..KEYS {
                    cache.insert(key, key + 1);
                }
                stored.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            // Sweeps while the keys are stored again.
            while !stored.load(std::sync::atomic::Ordering::Relaxed) {
                cache.metrics();
            }
        });
        cache.metrics();
        for key in 0..KEYS {
            assert_eq!(cache.get(&key), Some(key + 1), "key {key}");
        }
    }
}

#[test]
fn quick_cache_counts_an_expired_entry_evicted_for_room_as_an_expiration() {
    let cache = bounded(Engine::QuickCache, 2);
    cache.insert_with_ttl(1, 1, Some(Duration::from_millis(50)));
    cache.insert(2, 2);
    sleep(Duration::from_millis(200));
    cache.insert(3, 3); // the policy evicts 1, already expired
    cache.insert(4, 4);
    let m = cache.metrics();
    assert_eq!(m.size, 2);
    assert_eq!(m.expirations, 1);
    assert_eq!(m.evictions, 1);
}

#[test]
fn a_value_stored_again_after_expiry_is_not_removed_by_the_old_expiry() {
    for engine in ENGINES {
        let cache = bounded(engine, 10);
        cache.insert_with_ttl(1, 10, Some(Duration::from_millis(50)));
        sleep(Duration::from_millis(200));
        cache.insert_with_ttl(1, 11, None);
        assert_eq!(cache.get(&1), Some(11), "{engine:?}");
        assert_eq!(cache.get(&1), Some(11), "{engine:?}");
    }
}

#[test]
fn clear_empties_the_engine_and_an_unbounded_cache_never_evicts() {
    for engine in ENGINES {
        let cache: AsyncCache<u64, u64> = AsyncCache::builder().unbounded().engine(engine).build();
        for key in 0..20_000 {
            cache.insert(key, key);
        }
        let m = cache.metrics();
        assert_eq!(
            (m.size, m.evictions, m.capacity),
            (20_000, 0, None),
            "{engine:?}"
        );
        cache.clear();
        assert_eq!(cache.metrics().size, 0, "{engine:?}");
        assert_eq!(cache.get(&7), None, "{engine:?}");
    }
}

#[test]
fn maxsize_zero_stores_nothing_on_either_engine() {
    for engine in ENGINES {
        let cache = bounded(engine, 0);
        cache.insert(1, 1);
        assert_eq!(
            (cache.get(&1), cache.metrics().size),
            (None, 0),
            "{engine:?}"
        );
    }
}

/// moka's `future::Cache` LRU tests, ported: the two cases the default engine failed when
/// small caches were plain CLOCK (issue 13).
#[test]
fn a_small_cache_evicts_the_least_recently_inserted_unread_entry() {
    for engine in ENGINES {
        let cache = bounded(engine, 2);
        for key in 0..4 {
            cache.insert(key, key);
        }
        let kept: Vec<u64> = (0..4).filter(|key| cache.contains_key(key)).collect();
        assert_eq!(kept, [2, 3], "{engine:?}: not LRU");
        assert_eq!(cache.metrics().evictions, 2, "{engine:?}");
    }
}

#[test]
fn a_small_cache_evicts_an_entry_read_before_newer_inserts() {
    for engine in ENGINES {
        let cache: AsyncCache<&str, u64> = AsyncCache::builder().maxsize(3).engine(engine).build();
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        for key in ["e", "f", "g"] {
            cache.insert(key, 2);
        }
        let kept: Vec<&str> = ["a", "e", "f", "g"]
            .into_iter()
            .filter(|key| cache.contains_key(key))
            .collect();
        assert_eq!(kept, ["e", "f", "g"], "{engine:?}: not LRU");
    }
}

#[test]
fn a_small_cache_keeps_the_recently_read_entries_at_every_bound_under_34() {
    for engine in ENGINES {
        for maxsize in [1_u64, 5, 33] {
            let cache = bounded(engine, maxsize);
            for key in 0..maxsize {
                cache.insert(key, key);
            }
            // Read every entry but the last inserted, newest-first: the last one is now the
            // least recently used, then 0, 1, ...
            for key in (0..maxsize.saturating_sub(1)).rev() {
                assert_eq!(cache.get(&key), Some(key));
            }
            cache.insert(1_000, 0);
            let gone = (0..maxsize).filter(|key| !cache.contains_key(key)).count();
            assert_eq!(gone, 1, "{engine:?} maxsize {maxsize}");
            assert!(
                !cache.contains_key(&(maxsize - 1)),
                "{engine:?} maxsize {maxsize}"
            );
            assert_eq!(
                cache.metrics().size,
                maxsize,
                "{engine:?} maxsize {maxsize}"
            );
        }
    }
}
