//! Port of the Python suite's `tests/test_concurrency.py` (reference §12, tests 13-18 and
//! 20-23) to `AsyncCache`. Test 19 exercises the decorators only and is not ported here.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::AsyncCache;
use tests::{join_every, until_misses};
use tokio::time::sleep;

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_concurrent_metrics_accuracy
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_hits_are_all_counted() {
    let cache = AsyncCache::<&str, &str>::new();
    let tasks = (0..1000).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache.insert("key", "value");
            tokio::task::yield_now().await;
            cache.get("key")
        })
    });
    let results = join_every(tasks).await;
    assert!(results.iter().all(|value| *value == Some("value")));

    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (1000, 0, 1));
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_concurrent_misses_metrics_accuracy
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_are_all_counted() {
    let cache = AsyncCache::<u32, u32>::new();
    let tasks = (0..500).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&i) })
    });
    let results = join_every(tasks).await;
    assert!(results.iter().all(Option::is_none));

    let m = cache.metrics();
    assert_eq!((m.hits, m.misses), (0, 500));
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_lru_eviction_stability_under_pressure
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn size_bound_holds_under_concurrent_loads_and_rereads() {
    let cache: AsyncCache<u32, String> = AsyncCache::builder().maxsize(50).build();
    let loads = (0..100).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move {
            let value = cache.get_with(i, async move { format!("v{i}") }).await;
            assert_eq!(value, format!("v{i}"));
        })
    });
    join_every(loads).await;
    let before = cache.metrics();
    assert_eq!((before.size, before.misses, before.loads), (50, 100, 100));

    // Python shuffles the keys; a fixed permutation of 0..100 (37 is coprime with 100).
    let rereads = (0..100).map(|i| (i * 37) % 100).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move {
            if let Some(value) = cache.get(&i) {
                assert_eq!(value, format!("v{i}"));
            }
        })
    });
    join_every(rereads).await;

    let after = cache.metrics();
    // Python allows 45..=50 hits; with an exact bound and reads that store nothing, it is 50.
    assert_eq!(after.hits - before.hits, 50);
    assert_eq!(after.misses - before.misses, 50);
    assert_eq!(after.size, 50);
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_thundering_herd_protection
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_misses_on_one_key_run_one_load() {
    let cache = AsyncCache::<&str, &str>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks = (0..100).map(|_| {
        let cache = cache.clone();
        let calls = Arc::clone(&calls);
        let gate = cache.clone();
        tokio::spawn(async move {
            cache
                .get_with("key", async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(100)).await;
                    until_misses(&gate, 100).await;
                    "result"
                })
                .await
        })
    });
    let results = join_every(tasks).await;
    assert_eq!(results.len(), 100);
    assert!(results.iter().all(|value| *value == "result"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let m = cache.metrics();
    assert_eq!((m.loads, m.misses, m.hits, m.size), (1, 100, 0, 1));
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_concurrent_set_and_get
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_inserts_and_gets_never_see_a_wrong_value() {
    let cache: AsyncCache<u32, String> = AsyncCache::builder().maxsize(1000).build();
    let tasks = (0..1000u32).map(|i| {
        let cache = cache.clone();
        let key = i % 100;
        // Rounds of 100 alternate between writing and reading every key.
        tokio::spawn(async move {
            if (i / 100) % 2 == 0 {
                cache.insert(key, format!("value-{key}"));
            } else if let Some(value) = cache.get(&key) {
                assert_eq!(value, format!("value-{key}"));
            }
        })
    });
    join_every(tasks).await;

    for key in 0..100 {
        assert_eq!(cache.get(&key), Some(format!("value-{key}")), "key {key}");
    }
    assert_eq!(cache.metrics().size, 100);
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_concurrent_clear_and_get
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clears_from_other_threads_during_gets_break_nothing() {
    let cache: AsyncCache<u32, String> = AsyncCache::builder().maxsize(100).build();
    for key in 0..50 {
        cache.insert(key, format!("value-{key}"));
    }

    let clearers: Vec<_> = (0..10u64)
        .map(|i| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2 * i));
                cache.clear();
            })
        })
        .collect();
    let gets = (0..500u32).map(|i| {
        let cache = cache.clone();
        let key = i % 50;
        tokio::spawn(async move {
            let value = cache
                .get_with(key, async move {
                    sleep(Duration::from_millis(1)).await;
                    format!("value-{key}")
                })
                .await;
            assert_eq!(value, format!("value-{key}"));
        })
    });
    join_every(gets).await;
    for clearer in clearers {
        clearer.join().expect("a clearing thread panicked");
    }

    assert!(cache.metrics().size <= 50);
    for key in 0..50 {
        if let Some(value) = cache.get(&key) {
            assert_eq!(value, format!("value-{key}"));
        }
    }
    // The cache is still fully usable.
    assert_eq!(
        cache.get_with(1000, async { "fresh".to_string() }).await,
        "fresh"
    );
    assert_eq!(cache.get(&1000).as_deref(), Some("fresh"));
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_batch_loader_concurrency
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_batch_loads_are_batched_and_routed_to_their_keys() {
    let cache: AsyncCache<String, String> = AsyncCache::builder()
        .batch_window(Duration::from_millis(10))
        .max_batch_size(50)
        .build();
    let batches: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let recorded = Arc::clone(&batches);
    let loader = cache.batch_loader(move |keys: Vec<String>| {
        recorded.lock().unwrap().push(keys.clone());
        async move {
            sleep(Duration::from_millis(50)).await;
            Ok::<_, String>(
                keys.into_iter()
                    .map(|key| {
                        let value = format!("val-{key}");
                        (key, value)
                    })
                    .collect::<HashMap<_, _>>(),
            )
        }
    });

    let tasks = (0..100).map(|i| {
        let loader = loader.clone();
        tokio::spawn(async move { loader.load(format!("key-{i}")).await })
    });
    let results = join_every(tasks).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), Some(format!("val-key-{i}")));
    }

    let batches = batches.lock().unwrap();
    assert!(batches.len() < 100, "{} batch calls", batches.len());
    assert!(batches.iter().all(|batch| batch.len() <= 50), "{batches:?}");
    let sent: Vec<&String> = batches.iter().flatten().collect();
    let distinct: HashSet<&String> = sent.iter().copied().collect();
    assert_eq!((sent.len(), distinct.len()), (100, 100));
    assert_eq!(cache.metrics().loads, batches.len() as u64);
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_stress_test_mixed_operations
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_mixed_operations_complete_and_stay_consistent() {
    let cache: AsyncCache<u32, String> = AsyncCache::builder().maxsize(100).build();
    let completed = Arc::new(AtomicUsize::new(0));
    let tasks = (0..1000u32).map(|i| {
        let cache = cache.clone();
        let completed = Arc::clone(&completed);
        let key = i % 50;
        tokio::spawn(async move {
            let expected = format!("value-{key}");
            match i % 5 {
                0 => cache.insert(key, expected),
                1 => {
                    if let Some(value) = cache.get(&key) {
                        assert_eq!(value, expected);
                    }
                }
                2 => cache.invalidate(&key),
                3 => assert!(cache.metrics().size <= 100),
                _ => {
                    let loaded = expected.clone();
                    let value = cache
                        .get_with(key, async move {
                            sleep(Duration::from_millis(1)).await;
                            loaded
                        })
                        .await;
                    assert_eq!(value, expected);
                }
            }
            completed.fetch_add(1, Ordering::SeqCst);
        })
    });
    join_every(tasks).await;
    assert_eq!(completed.load(Ordering::SeqCst), 1000);
    assert!(cache.metrics().size <= 50);
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_metrics_consistency_after_clear
#[test]
fn clear_resets_hits_misses_and_size() {
    let cache = AsyncCache::<&str, &str>::new();
    cache.insert("key", "value");
    assert_eq!(cache.get("key"), Some("value"));
    assert_eq!(cache.get("missing"), None);
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (1, 1, 1));

    cache.clear();
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (0, 0, 0));
    assert!(m.hit_rate.abs() < f64::EPSILON);
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_high_contention_same_key
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_misses_on_one_key_run_one_load() {
    let cache = AsyncCache::<&str, &str>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks = (0..500).map(|_| {
        let cache = cache.clone();
        let calls = Arc::clone(&calls);
        let gate = cache.clone();
        tokio::spawn(async move {
            cache
                .get_with("key", async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(50)).await;
                    until_misses(&gate, 500).await;
                    "shared-value"
                })
                .await
        })
    });
    let results = join_every(tasks).await;
    assert!(results.iter().all(|value| *value == "shared-value"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let m = cache.metrics();
    assert_eq!((m.loads, m.misses, m.hits), (1, 500, 0));
}
