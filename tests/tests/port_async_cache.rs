//! Port of the Python suite's `tests/test_async_cache.py` (reference §12, tests 1-6) to
//! `AsyncCache`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::AsyncCache;
use tokio::time::sleep;

/// Python: test_async_cache.py::TestAsyncCache::test_get_set
#[test]
fn insert_then_get_returns_the_latest_value() {
    let cache: AsyncCache<&str, &str> = AsyncCache::builder().maxsize(10).build();
    cache.insert("k1", "v1");
    assert_eq!(cache.get("k1"), Some("v1"));
    cache.insert("k1", "v2");
    assert_eq!(cache.get("k1"), Some("v2"));
    assert_eq!(cache.metrics().size, 1);
}

/// Python: test_async_cache.py::TestAsyncCache::test_get_miss
#[test]
fn get_of_an_absent_key_returns_none() {
    let cache = AsyncCache::<&str, &str>::new();
    assert_eq!(cache.get("missing"), None);
    assert_eq!(cache.metrics().misses, 1);
}

/// Python: test_async_cache.py::TestAsyncCache::test_loader
#[tokio::test]
async fn loader_runs_once_and_its_value_is_served_from_the_cache() {
    let cache = AsyncCache::<&str, &str>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let loader = || {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            "loaded"
        }
    };

    assert_eq!(cache.get_with("k", loader()).await, "loaded");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get_with("k", loader()).await, "loaded");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.metrics().loads, 1);
}

/// Python: test_async_cache.py::TestAsyncCache::test_delete
#[test]
fn invalidate_removes_the_entry_and_tolerates_absent_keys() {
    let cache = AsyncCache::<&str, i32>::new();
    cache.insert("k", 42);
    assert_eq!(cache.get("k"), Some(42));
    cache.invalidate("k");
    assert_eq!(cache.get("k"), None);
    cache.invalidate("missing");
    assert_eq!(cache.metrics().size, 0);
}

/// Python: test_async_cache.py::TestAsyncCache::test_clear
#[test]
fn clear_removes_every_entry() {
    let cache = AsyncCache::<&str, i32>::new();
    cache.insert("k1", 1);
    cache.insert("k2", 2);
    assert_eq!(cache.get("k1"), Some(1));
    assert_eq!(cache.get("k2"), Some(2));
    cache.clear();
    assert_eq!(cache.get("k1"), None);
    assert_eq!(cache.get("k2"), None);
}

/// Python: test_async_cache.py::TestAsyncCache::test_ttl
#[tokio::test]
async fn default_ttl_per_entry_ttl_and_no_ttl_expire_as_set() {
    let cache: AsyncCache<&str, i32> = AsyncCache::builder()
        .maxsize(10)
        .default_ttl(Duration::from_millis(200))
        .build();

    // Default TTL.
    cache.insert("k1", 10);
    assert_eq!(cache.get("k1"), Some(10));
    sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("k1"), None);

    // An explicit TTL longer than the default outlives the default.
    cache.insert_with_ttl("k2", 20, Some(Duration::from_millis(1500)));
    assert_eq!(cache.get("k2"), Some(20));
    sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("k2"), Some(20));
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(cache.get("k2"), None);

    // `None` never expires, even with a default TTL.
    cache.insert_with_ttl("k3", 30, None);
    assert_eq!(cache.get("k3"), Some(30));
    sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get("k3"), Some(30));
}
