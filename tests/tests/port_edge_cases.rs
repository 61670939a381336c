//! Port of the `AsyncCache` parts of the Python suite's `tests/test_edge_cases.py`
//! (reference §12, tests 39-64, 66 and 67). Tests 36-38 cover the decorators, and test 65
//! (an asyncio "Future exception was never retrieved" log) has no Rust counterpart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::AsyncCache;
use futures_util::future::join_all;
use tests::{join_every, until_misses};
use tokio::sync::Barrier;
use tokio::time::{sleep, timeout};

/// The Python suite's `ValueError("Load failed")`.
#[derive(Debug, PartialEq)]
struct ValueError(&'static str);

/// The keys of each batch call, in call order.
type Batches = Arc<Mutex<Vec<Vec<&'static str>>>>;

// ---------------------------------------------------------------------------------------------
// TestDirectCacheUsage

/// Python: test_edge_cases.py::TestDirectCacheUsage::test_basic_get_set
#[test]
fn insert_and_update_are_visible_to_get() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder().maxsize(100).build();
    cache.insert("key1", "value1");
    assert_eq!(cache.get("key1"), Some("value1"));
    cache.insert("key1", "value2");
    assert_eq!(cache.get("key1"), Some("value2"));
}

/// Python: test_edge_cases.py::TestDirectCacheUsage::test_get_with_loader
#[tokio::test]
async fn loader_value_is_cached_and_the_second_get_is_a_hit() {
    let cache = AsyncCache::<&str, &str>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let calls = Arc::clone(&calls);
        let value = cache
            .get_with("key", async move {
                calls.fetch_add(1, Ordering::SeqCst);
                "loaded_value"
            })
            .await;
        assert_eq!(value, "loaded_value");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.loads), (1, 1, 1));
}

/// Python: test_edge_cases.py::TestDirectCacheUsage::test_cache_miss_without_loader
#[test]
fn get_without_a_loader_misses_with_none() {
    let cache = AsyncCache::<&str, &str>::new();
    assert_eq!(cache.get("nonexistent"), None);
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.loads), (0, 1, 0));
}

/// Python: test_edge_cases.py::TestDirectCacheUsage::test_delete_operation
#[test]
fn invalidate_makes_the_next_get_miss() {
    let cache = AsyncCache::<&str, &str>::new();
    cache.insert("key", "value");
    assert_eq!(cache.get("key"), Some("value"));
    cache.invalidate("key");
    assert_eq!(cache.get("key"), None);
}

/// Python: test_edge_cases.py::TestDirectCacheUsage::test_delete_nonexistent_key
#[test]
fn invalidating_an_absent_key_is_harmless() {
    let cache = AsyncCache::<&str, &str>::new();
    cache.insert("other", "kept");
    cache.invalidate("nonexistent");
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (0, 0, 1));
    assert_eq!(cache.get("other"), Some("kept"));
}

/// Python: test_edge_cases.py::TestDirectCacheUsage::test_clear_operation
#[test]
fn clear_empties_the_store() {
    let cache = AsyncCache::<&str, &str>::new();
    cache.insert("key1", "value1");
    cache.insert("key2", "value2");
    assert_eq!(cache.metrics().size, 2);
    cache.clear();
    assert_eq!(cache.get("key1"), None);
    assert_eq!(cache.get("key2"), None);
    assert_eq!(cache.metrics().size, 0);
}

// ---------------------------------------------------------------------------------------------
// TestThunderingHerdProtection

/// Python: test_edge_cases.py::TestThunderingHerdProtection::test_single_loader_for_concurrent_misses
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_misses_run_the_loader_once() {
    let cache = AsyncCache::<&str, &str>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks = (0..50).map(|_| {
        let cache = cache.clone();
        let calls = Arc::clone(&calls);
        let gate = cache.clone();
        tokio::spawn(async move {
            cache
                .get_with("key", async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(100)).await;
                    until_misses(&gate, 50).await;
                    "value"
                })
                .await
        })
    });
    let results = join_every(tasks).await;
    assert_eq!(results, ["value"; 50]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.metrics().loads, 1);
}

/// Python: test_edge_cases.py::TestThunderingHerdProtection::test_herd_protection_with_error
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_load_gives_every_waiter_the_same_error() {
    let cache = AsyncCache::<&str, &str>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks = (0..10).map(|_| {
        let cache = cache.clone();
        let calls = Arc::clone(&calls);
        let gate = cache.clone();
        tokio::spawn(async move {
            cache
                .try_get_with("key", async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(50)).await;
                    until_misses(&gate, 10).await;
                    Err::<&str, _>(ValueError("Load failed"))
                })
                .await
        })
    });
    let results = join_every(tasks).await;
    let errors: Vec<Arc<ValueError>> = results
        .into_iter()
        .map(|result| result.expect_err("every caller gets the error"))
        .collect();
    assert_eq!(errors.len(), 10);
    assert!(
        errors
            .iter()
            .all(|error| **error == ValueError("Load failed"))
    );
    // One load, one error instance shared by all its waiters.
    assert!(errors.iter().all(|error| Arc::ptr_eq(error, &errors[0])));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let m = cache.metrics();
    assert_eq!((m.loads, m.load_errors, m.size), (1, 1, 0));
}

/// Python: test_edge_cases.py::TestThunderingHerdProtection::test_no_herd_for_different_keys
#[tokio::test]
async fn loads_of_different_keys_run_separately_and_in_parallel() {
    let cache = AsyncCache::<&str, String>::new();
    let calls: Arc<Mutex<HashMap<&str, usize>>> = Arc::default();
    // Each loader waits for the other two: serialized loads would never get past it.
    let all_started = Arc::new(Barrier::new(3));

    let loads = ["key1", "key2", "key3"].map(|key| {
        let calls = Arc::clone(&calls);
        let all_started = Arc::clone(&all_started);
        cache.get_with(key, async move {
            *calls.lock().unwrap().entry(key).or_default() += 1;
            timeout(Duration::from_secs(10), all_started.wait())
                .await
                .expect("loads of different keys did not run in parallel");
            format!("value-{key}")
        })
    });
    let values = join_all(loads).await;

    assert_eq!(values, ["value-key1", "value-key2", "value-key3"]);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls.values().all(|count| *count == 1), "{calls:?}");
}

// ---------------------------------------------------------------------------------------------
// TestBatchLoader

/// Python: test_edge_cases.py::TestBatchLoader::test_batch_loader_basic
#[tokio::test]
async fn five_concurrent_batch_loads_make_one_call() {
    let cache: AsyncCache<&str, String> = AsyncCache::builder()
        .batch_window(Duration::from_millis(10))
        .max_batch_size(10)
        .build();
    let batches = Batches::default();
    let recorded = Arc::clone(&batches);
    // Rust contract: the batch function returns a map (Python also accepts a list in key order).
    let loader = cache.batch_loader(move |keys: Vec<&'static str>| {
        recorded.lock().unwrap().push(keys.clone());
        async move {
            Ok::<_, ValueError>(
                keys.into_iter()
                    .map(|key| (key, format!("value-{key}")))
                    .collect::<HashMap<_, _>>(),
            )
        }
    });

    let keys = ["key0", "key1", "key2", "key3", "key4"];
    let results = join_all(keys.map(|key| loader.load(key))).await;
    let values: Vec<String> = results
        .into_iter()
        .map(|result| result.unwrap().expect("every key is in the map"))
        .collect();
    assert_eq!(
        values,
        [
            "value-key0",
            "value-key1",
            "value-key2",
            "value-key3",
            "value-key4"
        ]
    );
    assert_eq!(batches.lock().unwrap().len(), 1);
    assert_eq!(cache.metrics().loads, 1);
}

/// Python: test_edge_cases.py::TestBatchLoader::test_batch_loader_respects_max_size
#[tokio::test]
async fn a_full_batch_goes_out_at_max_batch_size() {
    let cache: AsyncCache<&str, String> = AsyncCache::builder()
        .batch_window(Duration::from_millis(100))
        .max_batch_size(3)
        .build();
    let batches = Batches::default();
    let recorded = Arc::clone(&batches);
    let loader = cache.batch_loader(move |keys: Vec<&'static str>| {
        recorded.lock().unwrap().push(keys.clone());
        async move {
            Ok::<_, ValueError>(
                keys.into_iter()
                    .map(|key| (key, format!("value-{key}")))
                    .collect::<HashMap<_, _>>(),
            )
        }
    });

    let keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6"];
    let results = join_all(keys.map(|key| loader.load(key))).await;
    for (key, result) in keys.iter().zip(results) {
        assert_eq!(result.unwrap(), Some(format!("value-{key}")));
    }
    let sizes: Vec<usize> = batches.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
}

/// Python: test_edge_cases.py::TestBatchLoader::test_batch_loader_returns_dict
#[tokio::test]
async fn batch_map_values_reach_their_keys_and_are_cached() {
    let cache: AsyncCache<&str, String> = AsyncCache::builder()
        .batch_window(Duration::from_millis(10))
        .build();
    let batches = Batches::default();
    let recorded = Arc::clone(&batches);
    let loader = cache.batch_loader(move |keys: Vec<&'static str>| {
        recorded.lock().unwrap().push(keys.clone());
        async move {
            Ok::<_, ValueError>(
                keys.into_iter()
                    .filter(|key| *key != "absent")
                    .map(|key| (key, format!("value-{key}")))
                    .collect::<HashMap<_, _>>(),
            )
        }
    });

    let keys = ["key0", "key1", "key2"];
    let results = join_all(keys.map(|key| loader.load(key))).await;
    let values: Vec<Option<String>> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        values,
        ["value-key0", "value-key1", "value-key2"].map(|value| Some(value.to_string()))
    );
    for key in keys {
        assert_eq!(cache.get(key), Some(format!("value-{key}")));
    }

    // Rust contract: a key missing from the map yields Ok(None) and is not cached (Python caches None).
    assert_eq!(loader.load("absent").await.unwrap(), None);
    assert!(!cache.contains_key("absent"));
    assert_eq!(loader.load("absent").await.unwrap(), None);
    assert_eq!(batches.lock().unwrap().len(), 3);
}

/// Python: test_edge_cases.py::TestBatchLoader::test_batch_loader_error_handling
#[tokio::test]
async fn a_failed_batch_gives_every_key_its_error_and_caches_nothing() {
    let cache: AsyncCache<&str, String> = AsyncCache::builder()
        .batch_window(Duration::from_millis(10))
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let loader = cache.batch_loader(move |_keys: Vec<&'static str>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<HashMap<&'static str, String>, _>(ValueError("Batch failed")) }
    });

    let results = join_all(["key0", "key1", "key2"].map(|key| loader.load(key))).await;
    let errors: Vec<Arc<ValueError>> = results
        .into_iter()
        .map(|result| result.expect_err("every key of the batch fails"))
        .collect();
    assert!(
        errors
            .iter()
            .all(|error| **error == ValueError("Batch failed"))
    );
    assert!(errors.iter().all(|error| Arc::ptr_eq(error, &errors[0])));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for key in ["key0", "key1", "key2"] {
        assert!(!cache.contains_key(key));
    }
    let m = cache.metrics();
    assert_eq!((m.size, m.loads, m.load_errors), (0, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// TestCacheWarmup

/// Python: test_edge_cases.py::TestCacheWarmup::test_warmup_basic
#[tokio::test]
async fn warmup_loads_every_key_concurrently() {
    let cache = AsyncCache::<&str, String>::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (running, highest) = (Arc::clone(&in_flight), Arc::clone(&peak));

    let report = cache
        .warmup(["key0", "key1", "key2"], move |key| {
            let (running, highest) = (Arc::clone(&running), Arc::clone(&highest));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                highest.fetch_max(now, Ordering::SeqCst);
                sleep(Duration::from_millis(50)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ValueError>(format!("value-{key}"))
            }
        })
        .await;

    let mut loaded = report.loaded.clone();
    loaded.sort_unstable();
    assert_eq!(loaded, ["key0", "key1", "key2"]);
    assert!(
        report.skipped.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    for key in ["key0", "key1", "key2"] {
        assert_eq!(cache.get(key), Some(format!("value-{key}")));
    }
    // Rust contract: warmup loads concurrently (Python awaits one key after the other).
    assert!(
        peak.load(Ordering::SeqCst) > 1,
        "warmup loaded one key at a time"
    );
}

/// Python: test_edge_cases.py::TestCacheWarmup::test_warmup_with_existing_keys
#[tokio::test]
async fn warmup_keeps_an_existing_value_and_skips_its_loader() {
    let cache = AsyncCache::<&str, &str>::new();
    cache.insert("existing", "old_value");
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);

    let report = cache
        .warmup(["existing"], move |_key| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, ValueError>("new_value") }
        })
        .await;

    assert_eq!(cache.get("existing"), Some("old_value"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Rust contract: the report says the key was skipped.
    assert_eq!(report.skipped, ["existing"]);
    assert!(
        report.loaded.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// TestTTLEdgeCases

/// Python: test_edge_cases.py::TestTTLEdgeCases::test_ttl_expiration
#[tokio::test]
async fn entries_expire_after_the_default_ttl() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder()
        .default_ttl(Duration::from_millis(200))
        .build();
    cache.insert("key", "value");
    assert_eq!(cache.get("key"), Some("value"));
    sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("key"), None);
}

/// Python: test_edge_cases.py::TestTTLEdgeCases::test_ttl_override
#[tokio::test]
async fn a_per_entry_ttl_overrides_the_default() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder()
        .default_ttl(Duration::from_secs(10))
        .build();
    cache.insert_with_ttl("short", "value", Some(Duration::from_millis(200)));
    cache.insert_with_ttl("long", "value", Some(Duration::from_secs(10)));
    assert_eq!(cache.get("short"), Some("value"));
    assert_eq!(cache.get("long"), Some("value"));

    sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("short"), None);
    assert_eq!(cache.get("long"), Some("value"));
}

/// Python: test_edge_cases.py::TestTTLEdgeCases::test_no_ttl
#[tokio::test]
async fn an_entry_without_ttl_outlives_the_default_ttl() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder()
        .default_ttl(Duration::from_millis(200))
        .build();
    cache.insert_with_ttl("key", "value", None);
    cache.insert("default", "value");
    assert_eq!(cache.get("default"), Some("value"));

    sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("key"), Some("value"));
    // The default TTL was in force all along.
    assert_eq!(cache.get("default"), None);
}

/// Python: test_edge_cases.py::TestTTLEdgeCases::test_ttl_check_on_contains
#[tokio::test]
async fn contains_key_is_false_once_the_ttl_passed() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder()
        .default_ttl(Duration::from_millis(200))
        .build();
    cache.insert("key", "value");
    assert!(cache.contains_key("key"));
    sleep(Duration::from_millis(600)).await;
    assert!(!cache.contains_key("key"));
}

// ---------------------------------------------------------------------------------------------
// TestLRUEviction

/// Python: test_edge_cases.py::TestLRUEviction::test_lru_eviction_order
#[test]
fn a_read_protects_a_key_from_lru_eviction() {
    let cache: AsyncCache<&str, i32> = AsyncCache::builder().maxsize(3).build();
    cache.insert("a", 1);
    cache.insert("b", 2);
    cache.insert("c", 3);
    assert_eq!(cache.get("a"), Some(1));
    cache.insert("d", 4);

    assert_eq!(cache.get("a"), Some(1));
    assert_eq!(cache.get("b"), None);
    assert_eq!(cache.get("c"), Some(3));
    assert_eq!(cache.get("d"), Some(4));
    let m = cache.metrics();
    assert_eq!((m.size, m.evictions), (3, 1));
}

/// Python: test_edge_cases.py::TestLRUEviction::test_maxsize_none_unlimited
#[test]
fn an_unbounded_cache_keeps_every_entry() {
    let cache: AsyncCache<u32, u32> = AsyncCache::builder().unbounded().build();
    for i in 0..1000 {
        cache.insert(i, i);
    }
    let m = cache.metrics();
    assert_eq!((m.size, m.capacity, m.evictions), (1000, None, 0));
    assert_eq!(cache.get(&0), Some(0));
}

// ---------------------------------------------------------------------------------------------
// TestMetrics

/// Python: test_edge_cases.py::TestMetrics::test_metrics_basic
#[tokio::test]
async fn metrics_count_hits_misses_size_and_hit_rate() {
    let cache = AsyncCache::<&str, &str>::new();
    assert_eq!(cache.get_with("key1", async { "value1" }).await, "value1");
    assert_eq!(cache.get("key1"), Some("value1"));
    assert_eq!(cache.get_with("key2", async { "value2" }).await, "value2");

    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (1, 2, 2));
    assert!(
        (m.hit_rate - 1.0 / 3.0).abs() < 0.005,
        "hit_rate {}",
        m.hit_rate
    );
}

/// Python: test_edge_cases.py::TestMetrics::test_metrics_after_clear
#[tokio::test]
async fn clear_resets_the_lookup_counters() {
    let cache = AsyncCache::<&str, &str>::new();
    cache.get_with("key", async { "value" }).await;
    assert_eq!(cache.get("key"), Some("value"));
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses), (1, 1));

    cache.clear();
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (0, 0, 0));
}

/// Python: test_edge_cases.py::TestMetrics::test_metrics_empty_cache
#[test]
fn a_fresh_cache_reports_zeros_without_any_runtime() {
    let cache = AsyncCache::<&str, &str>::new();
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (0, 0, 0));
    assert!(m.hit_rate.abs() < f64::EPSILON, "hit_rate {}", m.hit_rate);
}

// ---------------------------------------------------------------------------------------------
// TestErrorHandling

/// Python: test_edge_cases.py::TestErrorHandling::test_loader_exception_propagates
#[tokio::test]
async fn a_loader_error_reaches_the_caller_unchanged() {
    let cache = AsyncCache::<&str, &str>::new();
    let result = cache
        .try_get_with("key", async { Err::<&str, _>(ValueError("Load failed")) })
        .await;
    assert_eq!(*result.unwrap_err(), ValueError("Load failed"));
}

/// Python: test_edge_cases.py::TestErrorHandling::test_cache_usable_after_loader_failure
#[tokio::test]
async fn errors_are_not_cached_and_the_next_load_succeeds() {
    let cache = AsyncCache::<&str, &str>::new();
    let failed = cache
        .try_get_with("key", async { Err::<&str, _>(ValueError("Load failed")) })
        .await;
    assert!(failed.is_err());
    assert!(!cache.contains_key("key"));

    let loaded = cache
        .try_get_with("key", async { Ok::<_, ValueError>("success") })
        .await;
    assert_eq!(loaded, Ok("success"));
    assert_eq!(cache.get("key"), Some("success"));
    let m = cache.metrics();
    assert_eq!((m.loads, m.load_errors), (2, 1));
}

// ---------------------------------------------------------------------------------------------
// TestConcurrentAccessPatterns

/// Python: test_edge_cases.py::TestConcurrentAccessPatterns::test_mixed_read_write
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_readers_and_threaded_clears_run_together_without_error() {
    let cache: AsyncCache<u32, String> = AsyncCache::builder().maxsize(100).build();
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let writer = cache.clone();
        tasks.push(tokio::spawn(async move {
            writer.insert(i, format!("value-{i}"));
        }));
        let reader = cache.clone();
        tasks.push(tokio::spawn(async move {
            if let Some(value) = reader.get(&i) {
                assert_eq!(value, format!("value-{i}"));
            }
        }));
        if i % 10 == 0 {
            let clearer = cache.clone();
            tasks.push(tokio::task::spawn_blocking(move || clearer.clear()));
        }
    }
    assert_eq!(tasks.len(), 210);
    join_every(tasks).await;

    assert!(cache.metrics().size <= 100);
    for i in 0..100 {
        if let Some(value) = cache.get(&i) {
            assert_eq!(value, format!("value-{i}"));
        }
    }
}

/// Python: test_edge_cases.py::TestConcurrentAccessPatterns::test_rapid_cache_clear_during_access
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rapid_clears_from_threads_during_access_break_nothing() {
    let cache = AsyncCache::<u32, String>::new();
    let completed = Arc::new(AtomicUsize::new(0));

    let clearers: Vec<_> = (0..10u64)
        .map(|i| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(i));
                cache.clear();
            })
        })
        .collect();
    let tasks = (0..50u32).map(|i| {
        let cache = cache.clone();
        let completed = Arc::clone(&completed);
        tokio::spawn(async move {
            cache.insert(i, format!("value-{i}"));
            tokio::task::yield_now().await;
            if let Some(value) = cache.get(&i) {
                assert_eq!(value, format!("value-{i}"));
            }
            assert!(cache.metrics().size <= 50);
            completed.fetch_add(1, Ordering::SeqCst);
        })
    });
    join_every(tasks).await;
    for clearer in clearers {
        clearer.join().expect("a clearing thread panicked");
    }
    assert_eq!(completed.load(Ordering::SeqCst), 50);

    // Still usable afterwards.
    cache.insert(1000, "after".to_string());
    assert_eq!(cache.get(&1000).as_deref(), Some("after"));
}
