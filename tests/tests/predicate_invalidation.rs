//! `invalidate_if` and `iter` on both engines: the predicate removes exactly what it selects,
//! fences the loads of the keys it removes, may call the cache, and iteration sees exactly the
//! live entries without counting or promoting them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::{AsyncCache, Engine, RemovalCause};

const ENGINES: [Engine; 2] = [Engine::QuickCache, Engine::Moka];

fn cache(engine: Engine) -> AsyncCache<u64, u64> {
    AsyncCache::builder().maxsize(10_000).engine(engine).build()
}

#[test]
fn invalidate_if_removes_exactly_the_entries_its_predicate_selects() {
    for engine in ENGINES {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .maxsize(10_000)
            .engine(engine)
            .on_evict(move |key, _value, cause| sink.lock().unwrap().push((key, cause)))
            .build();
        for key in 0..1_000 {
            cache.insert(key, key * 10);
        }
        let removed = cache.invalidate_if(|key, value| key % 3 == 0 && *value == key * 10);
        assert_eq!(removed, 334, "{engine:?}");
        for key in 0..1_000 {
            assert_eq!(
                cache.contains_key(&key),
                key % 3 != 0,
                "{engine:?}: key {key}"
            );
        }
        assert_eq!(cache.metrics().size, 666, "{engine:?}");
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 334, "{engine:?}");
        assert!(
            log.iter()
                .all(|(key, cause)| key % 3 == 0 && *cause == RemovalCause::Explicit),
            "{engine:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_if_fences_a_load_of_a_key_it_removes() {
    for engine in ENGINES {
        let cache = cache(engine);
        cache.insert(1, 100);
        cache.insert(2, 200);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(Mutex::new(Some(released)));
        let load = Arc::new(Mutex::new(None));
        let runtime = tokio::runtime::Handle::current();
        let removed = {
            let (cache, load) = (cache.clone(), Arc::clone(&load));
            tokio::task::spawn_blocking(move || {
                let outer = cache.clone();
                outer.invalidate_if(|key, _value| {
                    if *key != 1 {
                        return false;
                    }
                    // While the predicate runs (after the entries were read, before they are
                    // removed), key 1 is dropped and a load of it starts with the old value.
                    cache.invalidate(&1);
                    let (started, is_started) = std::sync::mpsc::channel();
                    let (loader, released) = (cache.clone(), Arc::clone(&released));
                    *load.lock().unwrap() = Some(runtime.spawn(async move {
                        loader
                            .get_with(1, async move {
                                started.send(()).unwrap();
                                let gate = released.lock().unwrap().take().unwrap();
                                gate.await.unwrap();
                                101 // loaded before the invalidation returned
                            })
                            .await
                    }));
                    is_started.recv_timeout(Duration::from_secs(30)).unwrap();
                    true
                })
            })
            .await
            .unwrap()
        };
        assert_eq!(removed, 1, "{engine:?}");
        release.send(()).unwrap();
        let handle = load.lock().unwrap().take().unwrap();
        // Its caller still gets its value...
        assert_eq!(handle.await.unwrap(), 101, "{engine:?}");
        // ... but it was not stored: a call after `invalidate_if` returned loads afresh.
        assert_eq!(
            cache.get(&1),
            None,
            "{engine:?}: a fenced load stored its value"
        );
        assert_eq!(cache.get_with(1, async { 102 }).await, 102, "{engine:?}");
        assert_eq!(cache.get(&2), Some(200), "{engine:?}");
    }
}

#[test]
fn iter_sees_every_live_entry_once_and_counts_nothing() {
    for engine in ENGINES {
        let cache = cache(engine);
        for key in 0..500 {
            cache.insert(key, key + 1);
        }
        cache.insert_with_ttl(9_999, 1, Some(Duration::from_millis(20)));
        cache.insert_with_ttl(8_888, 2, Some(Duration::from_secs(3_600)));
        std::thread::sleep(Duration::from_millis(200));
        let mut entries: Vec<_> = cache.iter().collect();
        entries.sort_unstable();
        let mut expected: Vec<_> = (0..500).map(|key| (key, key + 1)).collect();
        expected.push((8_888, 2));
        assert_eq!(
            entries, expected,
            "{engine:?}: the expired entry was listed, or one missed"
        );
        let left: Vec<_> = cache
            .iter()
            .with_time_left()
            .filter_map(|(key, _, left)| left.map(|left| (key, left)))
            .collect();
        assert_eq!(left.len(), 1, "{engine:?}");
        assert!(
            left[0].1 > Duration::from_secs(3_500),
            "{engine:?}: {left:?}"
        );
        let m = cache.metrics();
        assert_eq!((m.hits, m.misses), (0, 0), "{engine:?}");
        cache.clear();
        assert_eq!(cache.iter().len(), 0, "{engine:?}: cleared entries listed");
    }
}

#[test]
fn the_predicate_may_call_the_cache() {
    for engine in ENGINES {
        let cache = cache(engine);
        for key in 0..100 {
            cache.insert(key, key);
        }
        let inner = cache.clone();
        let removed = cache.invalidate_if(|key, _| {
            inner.insert(key + 1_000, 0); // a write from inside the predicate
            inner.contains_key(&(key + 1))
        });
        assert_eq!(removed, 99, "{engine:?}");
        assert_eq!(cache.metrics().size, 1 + 100, "{engine:?}");
    }
}
