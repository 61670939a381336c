//! A bound by weight (`max_weight` + `weigher`) on both engines: the weight held never passes
//! the bound, entries too heavy to admit are returned but not stored, and zero-weight entries
//! do not count against the bound.

use std::sync::{Arc, Mutex};

use cache_core::{AsyncCache, Engine, RemovalCause};

const ENGINES: [Engine; 2] = [Engine::QuickCache, Engine::Moka];

fn by_length(engine: Engine, max_weight: u64) -> AsyncCache<u64, String> {
    AsyncCache::builder()
        .max_weight(max_weight)
        .weigher(|_key: &u64, value: &String| value.len() as u32)
        .engine(engine)
        .build()
}

#[test]
fn the_weight_held_never_passes_the_bound_while_threads_insert_values_of_every_size() {
    for engine in ENGINES {
        let cache = by_length(engine, 100_000);
        std::thread::scope(|s| {
            for thread in 0..4_u64 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..3_000_u64 {
                        let key = thread * 1_000_000 + i;
                        cache.insert(key, "x".repeat(((key * 7919) % 2_000) as usize + 1));
                    }
                });
            }
        });
        let m = cache.metrics();
        let weight = m.weight.expect("a weighted cache reports its weight");
        assert!(weight <= 100_000, "{engine:?}: {weight} over the bound");
        // The bound is used, not left mostly empty: mean value ~1 KB, so ~100 entries.
        assert!(weight > 50_000, "{engine:?}: only {weight} held");
        assert_eq!(m.capacity, Some(100_000), "{engine:?}");
        let summed: u64 = cache.iter().map(|(_, value)| value.len() as u64).sum();
        assert_eq!(
            summed, weight,
            "{engine:?}: the reported weight is the entries' weight"
        );
        assert!(
            m.evictions > 10_000,
            "{engine:?}: {} evictions",
            m.evictions
        );
    }
}

#[tokio::test]
async fn a_value_heavier_than_the_bound_is_returned_but_not_stored_and_reported_as_size() {
    for engine in ENGINES {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let cache: AsyncCache<u64, String> = AsyncCache::builder()
            .max_weight(1_000)
            .weigher(|_key: &u64, value: &String| value.len() as u32)
            .engine(engine)
            .on_evict(move |key, value: String, cause| {
                sink.lock().unwrap().push((key, value.len(), cause));
            })
            .build();
        cache.insert(1, "small".into());
        cache.insert(2, "kept".into());
        let huge = cache
            .get_with(1, async { unreachable!("1 is cached") })
            .await;
        assert_eq!(huge, "small");
        // A load of a value too heavy for the whole cache: its callers get it...
        let loaded = cache.get_with(3, async { "y".repeat(5_000) }).await;
        assert_eq!(loaded.len(), 5_000, "{engine:?}");
        // ... and so does an insert over an existing key, which loses its old value.
        cache.insert(1, "z".repeat(5_000));
        let _ = cache.metrics();
        assert_eq!(
            cache.get(&3),
            None,
            "{engine:?}: the heavy value was stored"
        );
        assert_eq!(
            cache.get(&1),
            None,
            "{engine:?}: the heavy value was stored"
        );
        assert_eq!(cache.get(&2).as_deref(), Some("kept"), "{engine:?}");
        let mut log = log.lock().unwrap().clone();
        log.sort_unstable_by_key(|(key, len, _)| (*key, *len));
        assert_eq!(
            log,
            [
                (1, 5, RemovalCause::Replaced),
                (1, 5_000, RemovalCause::Size),
                (3, 5_000, RemovalCause::Size),
            ],
            "{engine:?}"
        );
        assert_eq!(cache.metrics().weight, Some(4), "{engine:?}");
    }
}

#[test]
fn zero_weight_entries_do_not_count_against_the_bound() {
    for engine in ENGINES {
        let cache = by_length(engine, 100);
        for key in 0..50 {
            cache.insert(key, String::new()); // weighs 0
        }
        for key in 1_000..1_100 {
            cache.insert(key, "0123456789".into()); // 10 each: at most 10 fit
        }
        let m = cache.metrics();
        assert!(m.weight.unwrap() <= 100, "{engine:?}");
        let heavy = (1_000..1_100).filter(|key| cache.contains_key(key)).count();
        assert!(
            (9..=10).contains(&heavy),
            "{engine:?}: {heavy} weighted entries held"
        );
        let zero = (0..50).filter(|key| cache.contains_key(key)).count();
        match engine {
            // quick_cache never evicts a zero-weight entry for the bound.
            Engine::QuickCache => assert_eq!(zero, 50),
            // moka evicts in LRU order whatever the weight: the oldest went first.
            _ => assert!(zero <= 50, "{engine:?}"),
        }
        assert_eq!(m.size, (heavy + zero) as u64, "{engine:?}");
    }
}

#[test]
fn without_a_weigher_max_weight_is_a_bound_in_entries() {
    for engine in ENGINES {
        let cache: AsyncCache<u64, u64> =
            AsyncCache::builder().max_weight(10).engine(engine).build();
        for key in 0..100 {
            cache.insert(key, key);
        }
        let m = cache.metrics();
        assert_eq!(
            (m.size, m.weight, m.evictions),
            (10, None, 90),
            "{engine:?}"
        );
    }
}

// A weight bound under 34 is not a number of entries: the quick_cache engine keeps caches of
// fewer than 34 entries in a strict-LRU table of its own, which must not take a weighted one.
#[test]
fn a_weight_bound_under_34_bounds_the_weight_not_the_entries() {
    for engine in ENGINES {
        let cache = by_length(engine, 20);
        for key in 0..10 {
            cache.insert(key, "12345".to_owned()); // 5 each: at most 4 fit
        }
        let m = cache.metrics();
        let weight = m.weight.expect("a weighted cache reports its weight");
        assert!(weight <= 20, "{engine:?}: {weight} over the bound");
        assert!(cache.iter().count() <= 4, "{engine:?}: {m:?}");
        assert!(cache.iter().count() >= 1, "{engine:?}: {m:?}");
    }
}

mod attributes {
    use std::sync::atomic::{AtomicU64, Ordering};

    use cache_core::{RemovalCause, async_lru, async_ttl};

    static EVICTED_FOR_SIZE: AtomicU64 = AtomicU64::new(0);

    #[allow(clippy::ptr_arg, reason = "a weigher is a fn(&K, &V), and V is String")]
    fn page_bytes(_id: &u64, page: &String) -> u32 {
        page.len() as u32
    }

    fn count_evictions(_id: u64, _page: String, cause: RemovalCause) {
        if cause == RemovalCause::Size {
            EVICTED_FOR_SIZE.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[async_lru(max_weight = 1_000, weigher = page_bytes, on_evict = count_evictions)]
    async fn page(id: u64) -> String {
        format!("{id:0>100}") // 100 bytes
    }

    #[async_ttl(
        time_to_live = 60,
        max_weight = 500,
        weigher = |_id: &u64, page: &String| page.len() as u32
    )]
    async fn fallible_page(id: u64) -> Result<String, String> {
        Ok(format!("{id:0>100}"))
    }

    #[tokio::test]
    async fn the_attributes_bound_a_cached_function_by_weight_and_report_its_evictions() {
        for id in 0..50 {
            assert_eq!(page(id).await.len(), 100);
        }
        let m = page::metrics();
        assert_eq!(m.capacity, Some(1_000));
        let weight = m.weight.expect("a weighted cache reports its weight");
        assert!(weight <= 1_000, "{weight} over the bound");
        // 5,000 bytes asked for, at most 1,000 held: at least 40 pages went for size.
        assert!(
            EVICTED_FOR_SIZE.load(Ordering::Relaxed) >= 40,
            "{m:?}, {} evictions heard",
            EVICTED_FOR_SIZE.load(Ordering::Relaxed)
        );
        assert_eq!(m.evictions, EVICTED_FOR_SIZE.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_closure_weighs_the_ok_values_of_a_result_fn() {
        for id in 0..20 {
            assert!(fallible_page(id).await.is_ok());
        }
        let m = fallible_page::metrics();
        let weight = m.weight.expect("a weighted cache reports its weight");
        assert!(weight <= 500, "{weight} over the bound");
        assert!(m.size <= 5, "{m:?}");
    }
}
