//! Port of the `AsyncCache` parts of the Python suite's `tests/test_correctness.py`
//! (reference §12, tests 28-29 and 33-35). `len(cache.cache)` maps to `metrics().size` and
//! `key in cache.cache` to `contains_key`. Tests 24-27 and 30-32 cover the decorators and the
//! Python key helpers and are not ported here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::AsyncCache;
use futures_util::future::join_all;
use tokio::time::sleep;

/// Python: test_correctness.py::TestIssue3MaxsizeZero::test_maxsize_zero_should_not_store
#[tokio::test]
async fn maxsize_zero_stores_nothing_but_loads_still_return_their_value() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder().maxsize(0).build();
    cache.insert("k", "v");
    assert_eq!(cache.get("k"), None);
    assert!(!cache.contains_key("k"));

    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let calls = Arc::clone(&calls);
        let value = cache
            .get_with("loaded", async move {
                calls.fetch_add(1, Ordering::SeqCst);
                "fresh"
            })
            .await;
        assert_eq!(value, "fresh");
    }
    // Nothing was stored, so the second call loaded again.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.metrics().size, 0);
}

/// Python: test_correctness.py::TestIssue3MaxsizeZero::test_maxsize_zero_cache_size_stays_zero
#[test]
fn maxsize_zero_size_stays_zero_after_inserts() {
    let cache: AsyncCache<u32, u32> = AsyncCache::builder().maxsize(0).build();
    for i in 0..10 {
        cache.insert(i, i);
    }
    let m = cache.metrics();
    assert_eq!((m.size, m.capacity), (0, Some(0)));
}

/// Python: test_correctness.py::TestIssue5ContainsDeleteWithoutLock::test_expired_key_deleted_safely
#[tokio::test]
async fn expired_keys_are_not_contained() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder()
        .maxsize(10)
        .default_ttl(Duration::from_millis(200))
        .build();
    cache.insert("k1", "v1");
    cache.insert("k2", "v2");
    assert!(cache.contains_key("k1"));
    assert!(cache.contains_key("k2"));

    sleep(Duration::from_millis(600)).await;
    assert!(!cache.contains_key("k1"));
    assert!(!cache.contains_key("k2"));
}

/// Python: test_correctness.py::TestIssue5ContainsDeleteWithoutLock::test_expired_key_deleted_safely
///
/// The `len(cache.cache) == 0` half of the Python test, split off so the half above keeps running.
/// moka sweeps expired entries on a timer wheel whose finest buckets span about a second, so
/// `size` drops within about a second of expiry (documented on `CacheMetrics::size`); lookups
/// never return them meanwhile.
#[tokio::test]
async fn expired_keys_leave_size_zero() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder()
        .maxsize(10)
        .default_ttl(Duration::from_millis(200))
        .build();
    cache.insert("k1", "v1");
    cache.insert("k2", "v2");
    assert_eq!(cache.metrics().size, 2);

    sleep(Duration::from_millis(600)).await;
    assert!(!cache.contains_key("k1"));
    assert!(!cache.contains_key("k2"));
    sleep(Duration::from_millis(1_400)).await;
    let m = cache.metrics();
    assert_eq!((m.size, m.expirations), (0, 2));
}

/// Python: test_correctness.py::TestIssue5ContainsDeleteWithoutLock::test_concurrent_contains_on_expired_keys
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_contains_checks_on_expired_keys_all_return_false() {
    let cache: AsyncCache<u32, u32> = AsyncCache::builder()
        .maxsize(100)
        .default_ttl(Duration::from_millis(200))
        .build();
    for i in 0..50 {
        cache.insert(i, i);
    }
    assert!((0..50).all(|i| cache.contains_key(&i)));

    sleep(Duration::from_millis(600)).await;
    let checks = (0..50).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.contains_key(&i) })
    });
    let present: Vec<bool> = join_all(checks)
        .await
        .into_iter()
        .map(|joined| joined.expect("task panicked"))
        .collect();
    assert_eq!(present, [false; 50]);
}

/// Python: test_correctness.py::TestIssue2ContainsPromotesLRU::test_contains_should_not_promote_key
#[test]
fn contains_key_does_not_refresh_recency() {
    let cache: AsyncCache<&str, i32> = AsyncCache::builder().maxsize(3).build();
    cache.insert("a", 1);
    cache.insert("b", 2);
    cache.insert("c", 3);
    assert!(cache.contains_key("a"));
    cache.insert("d", 4);

    // `a` is still the least recently used, so `d` evicted it.
    assert_eq!(cache.get("a"), None);
    assert_eq!(cache.get("b"), Some(2));
    assert_eq!(cache.get("c"), Some(3));
    assert_eq!(cache.get("d"), Some(4));
}
