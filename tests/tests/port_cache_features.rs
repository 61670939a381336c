//! Port of the Python suite's `tests/test_cache_features.py` (reference §12, tests 7-12) to
//! `AsyncCache`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::AsyncCache;
use futures_util::future::join_all;
use tests::until_misses;
use tokio::time::sleep;

/// Python: test_cache_features.py::TestCacheFeatures::test_metrics
#[tokio::test]
async fn metrics_count_a_load_miss_and_a_hit_and_clear_empties_the_store() {
    let cache = AsyncCache::<&str, i32>::new();
    assert_eq!(cache.get_with("k1", async { 42 }).await, 42);
    assert_eq!(cache.get("k1"), Some(42));

    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.size), (1, 1, 1));
    assert!((m.hit_rate - 0.5).abs() < 1e-9, "hit_rate {}", m.hit_rate);

    cache.clear();
    let m = cache.metrics();
    assert_eq!(m.size, 0);
    // Rust contract (as Python's code, despite test 7's comment): clear resets hits and misses.
    assert_eq!((m.hits, m.misses), (0, 0));
}

/// Python: test_cache_features.py::TestCacheFeatures::test_herd_protection
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_misses_share_one_load_and_each_counts_a_miss() {
    let cache = AsyncCache::<&str, String>::new();
    let calls = Arc::new(AtomicUsize::new(0));

    let tasks = (0..10).map(|_| {
        let cache = cache.clone();
        let calls = Arc::clone(&calls);
        let gate = cache.clone();
        tokio::spawn(async move {
            cache
                .get_with("k", async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(100)).await;
                    until_misses(&gate, 10).await;
                    "value".to_string()
                })
                .await
        })
    });
    let results: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("task panicked"))
        .collect();

    assert_eq!(results.len(), 10);
    assert!(results.iter().all(|value| value == "value"), "{results:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let m = cache.metrics();
    assert_eq!((m.loads, m.misses, m.hits, m.size), (1, 10, 0, 1));
}

/// Python: test_cache_features.py::TestCacheFeatures::test_batching
#[tokio::test]
async fn three_concurrent_batch_loads_go_out_in_one_call() {
    let cache: AsyncCache<&str, String> = AsyncCache::builder()
        .batch_window(Duration::from_millis(10))
        .max_batch_size(5)
        .build();
    let batches: Arc<Mutex<Vec<Vec<&str>>>> = Arc::default();
    let recorded = Arc::clone(&batches);
    let loader = cache.batch_loader(move |keys: Vec<&'static str>| {
        recorded.lock().unwrap().push(keys.clone());
        async move {
            sleep(Duration::from_millis(50)).await;
            Ok::<_, String>(
                keys.into_iter()
                    .map(|key| (key, format!("val-{key}")))
                    .collect::<HashMap<_, _>>(),
            )
        }
    });

    let results = join_all(["a", "b", "c"].map(|key| loader.load(key))).await;
    let values: Vec<Option<String>> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        values,
        [Some("val-a"), Some("val-b"), Some("val-c")].map(|v| v.map(String::from))
    );

    let batches = batches.lock().unwrap();
    assert_eq!(batches.len(), 1, "{batches:?}");
    let mut sent = batches[0].clone();
    sent.sort_unstable();
    assert_eq!(sent, ["a", "b", "c"]);
}

/// Python: test_cache_features.py::TestCacheFeatures::test_warmup
#[tokio::test]
async fn warmup_loads_every_key_once_and_the_values_are_then_hits() {
    let cache = AsyncCache::<&str, &str>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    // Rust contract: one loader for all keys (not a key->loader dict), and a report comes back.
    let report = cache
        .warmup(["k1", "k2"], move |key| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match key {
                    "k1" => Ok::<_, String>("v1"),
                    "k2" => Ok("v2"),
                    other => Err(format!("unexpected key {other}")),
                }
            }
        })
        .await;

    let mut loaded = report.loaded.clone();
    loaded.sort_unstable();
    assert_eq!(loaded, ["k1", "k2"]);
    assert!(
        report.skipped.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(cache.get("k1"), Some("v1"));
    assert_eq!(cache.get("k2"), Some("v2"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let m = cache.metrics();
    // Rust contract: warmup is not traffic, so only the two gets count (Python counts 2 misses).
    assert_eq!((m.hits, m.misses, m.loads), (2, 0, 2));
}

/// Python: test_cache_features.py::TestCacheFeatures::test_key_stability
///
/// `KEY`, `make_key` and `_to_hashable` are Python-only; what remains for `AsyncCache` is that
/// keys are used as given, by their `Hash + Eq`: equal keys built separately share one entry.
#[tokio::test]
async fn keys_equal_by_value_share_one_entry() {
    let cache = AsyncCache::<(u32, String, BTreeMap<String, u32>), &str>::new();
    let kwargs = |pairs: &[(&str, u32)]| -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };

    // Like `_to_hashable({'z':1,'a':2}) == _to_hashable({'a':2,'z':1})`: an ordered map key
    // does not depend on insertion order.
    let first = (1, "a".to_string(), kwargs(&[("z", 1), ("a", 2)]));
    let same = (1, "a".to_string(), kwargs(&[("a", 2), ("z", 1)]));
    let other = (1, "a".to_string(), kwargs(&[("a", 2)]));

    assert_eq!(cache.get_with(first, async { "loaded" }).await, "loaded");
    assert_eq!(cache.get(&same), Some("loaded"));
    assert_eq!(cache.get(&other), None);
    assert_eq!(cache.metrics().loads, 1);
}

/// Python: test_cache_features.py::TestCacheFeatures::test_lru_concurrent_eviction
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_loads_past_maxsize_keep_exactly_maxsize_entries() {
    let cache: AsyncCache<u32, String> = AsyncCache::builder().maxsize(94).build();

    let loads = (0..100).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_with(i, async move { format!("v{i}") }).await })
    });
    for (i, joined) in join_all(loads).await.into_iter().enumerate() {
        assert_eq!(joined.expect("task panicked"), format!("v{i}"));
    }
    let m = cache.metrics();
    assert_eq!((m.size, m.misses, m.loads), (94, 100, 100));

    let rereads = (0..100).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&i).map(|value| (i, value)) })
    });
    let found: Vec<(u32, String)> = join_all(rereads)
        .await
        .into_iter()
        .filter_map(|joined| joined.expect("task panicked"))
        .collect();
    for (i, value) in &found {
        assert_eq!(*value, format!("v{i}"));
    }

    let after = cache.metrics();
    // Python asserts at least 89 hits; an exact bound leaves exactly the 94 stored keys to hit.
    assert_eq!(found.len(), 94);
    assert_eq!(after.hits - m.hits, 94);
    assert_eq!(after.misses - m.misses, 6);
    assert_eq!(after.size, 94);
}
