//! Port of the decorator tests spread over the rest of the Python suite (reference §12):
//! `test_edge_cases.py` tests 36-38, `test_correctness.py` tests 24-25 and
//! `test_concurrency.py` test 19.
//!
//! Python's `__name__` check becomes: the function keeps its path, its docs (this file denies
//! `missing_docs`, so a documented `pub` function that lost its docs would not compile) and
//! its signature (it can be passed where a plain `async fn` of that type is expected).
#![deny(missing_docs)]

use std::any::type_name_of_val;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{async_lru, async_ttl};
use futures_util::future::join_all;
use tokio::time::timeout;

/// Any await that could hang fails the test after this instead.
const HANG: Duration = Duration::from_secs(10);

fn count(runs: &AtomicUsize) -> usize {
    runs.fetch_add(1, Ordering::SeqCst) + 1
}

fn runs(runs: &AtomicUsize) -> usize {
    runs.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------------------
// test_edge_cases.py::TestBackwardCompatibility

static FETCH_DATA_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(maxsize = 128)]
async fn fetch_data(x: u64) -> u64 {
    count(&FETCH_DATA_RUNS);
    x * 2
}

/// Python: test_edge_cases.py::TestBackwardCompatibility::test_lru_decorator_basic
#[tokio::test]
async fn lru_runs_the_body_once_per_distinct_argument() {
    assert_eq!(fetch_data(5).await, 10);
    assert_eq!(runs(&FETCH_DATA_RUNS), 1);
    assert_eq!(fetch_data(5).await, 10);
    assert_eq!(runs(&FETCH_DATA_RUNS), 1);
    assert_eq!(fetch_data(10).await, 20);
    assert_eq!(runs(&FETCH_DATA_RUNS), 2);
}

static FETCH_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 60)]
async fn fetch(x: u64) -> u64 {
    count(&FETCH_RUNS);
    x * 3
}

/// Python: test_edge_cases.py::TestBackwardCompatibility::test_ttl_decorator_basic
#[tokio::test]
async fn ttl_runs_the_body_once_within_the_ttl() {
    assert_eq!(fetch(5).await, 15);
    assert_eq!(runs(&FETCH_RUNS), 1);
    assert_eq!(fetch(5).await, 15);
    assert_eq!(runs(&FETCH_RUNS), 1);
}

/// Python's `TestClass`: its instances differ and are not hashable, so `self` must be skipped.
struct TestClass {
    id: u32,
}

static METHOD_RUNS: AtomicUsize = AtomicUsize::new(0);

impl TestClass {
    #[async_lru(maxsize = 128, skip_args = 1)]
    async fn method(&self, x: u64) -> u64 {
        count(&METHOD_RUNS);
        x * 2
    }
}

/// Python: test_edge_cases.py::TestBackwardCompatibility::test_decorator_with_skip_args
#[tokio::test]
async fn method_with_skipped_self_is_shared_by_every_instance() {
    let (obj1, obj2) = (TestClass { id: 1 }, TestClass { id: 2 });
    assert_ne!(obj1.id, obj2.id);
    let result1 = obj1.method(5).await;
    let result2 = obj2.method(5).await;
    assert_eq!(result1, result2);
    assert_eq!(runs(&METHOD_RUNS), 1);
    assert_eq!(TestClass::method_metrics().hits, 1);
}

// ---------------------------------------------------------------------------------------------
// test_correctness.py::TestIssue1WrapperName

/// A documented cached function: the docs must survive the attribute.
#[async_lru(maxsize = 128)]
pub async fn my_lru_function(x: u64) -> u64 {
    x + 1
}

/// A documented cached function with a TTL.
#[async_ttl(time_to_live = 60)]
pub async fn my_ttl_function(x: u64) -> u64 {
    x + 2
}

/// Calls `f` through a plain `async fn(u64) -> u64` bound: only a function whose signature was
/// kept fits.
async fn call_as_plain_async_fn<F, Fut>(f: F, x: u64) -> u64
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    f(x).await
}

/// Python: test_correctness.py::TestIssue1WrapperName::test_lru_preserves_function_name
#[tokio::test]
async fn lru_function_keeps_its_name_and_signature() {
    assert!(
        type_name_of_val(&my_lru_function).ends_with("::my_lru_function"),
        "{}",
        type_name_of_val(&my_lru_function)
    );
    assert_eq!(call_as_plain_async_fn(my_lru_function, 1).await, 2);
    assert_eq!(call_as_plain_async_fn(my_lru_function, 1).await, 2);
    assert_eq!(my_lru_function::metrics().hits, 1, "still cached");
}

/// Python: test_correctness.py::TestIssue1WrapperName::test_ttl_preserves_function_name
#[tokio::test]
async fn ttl_function_keeps_its_name_and_signature() {
    assert!(
        type_name_of_val(&my_ttl_function).ends_with("::my_ttl_function"),
        "{}",
        type_name_of_val(&my_ttl_function)
    );
    assert_eq!(call_as_plain_async_fn(my_ttl_function, 1).await, 3);
    assert_eq!(call_as_plain_async_fn(my_ttl_function, 1).await, 3);
    assert_eq!(my_ttl_function::metrics().hits, 1, "still cached");
}

// ---------------------------------------------------------------------------------------------
// test_concurrency.py::TestConcurrencyEdgeCases::test_decorator_concurrent_access

static LRU_FUNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(maxsize = 50)]
async fn lru_func(x: u64) -> u64 {
    count(&LRU_FUNC_RUNS);
    tokio::time::sleep(Duration::from_millis(10)).await;
    x * 2
}

static TTL_FUNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 60, maxsize = 50)]
async fn ttl_func(x: u64) -> u64 {
    count(&TTL_FUNC_RUNS);
    tokio::time::sleep(Duration::from_millis(10)).await;
    x * 3
}

/// Python: test_concurrency.py::TestConcurrencyEdgeCases::test_decorator_concurrent_access
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unique_keys_run_every_body_and_keep_maxsize_entries() {
    let lru_calls = (0..100).map(|x| tokio::spawn(lru_func(x)));
    let ttl_calls = (0..100).map(|x| tokio::spawn(ttl_func(x)));
    let (lru_results, ttl_results) = timeout(HANG, async {
        tokio::join!(join_all(lru_calls), join_all(ttl_calls))
    })
    .await
    .expect("no call hangs");
    for (x, result) in (0..).zip(lru_results) {
        assert_eq!(result.expect("no call panics"), x * 2);
    }
    for (x, result) in (0..).zip(ttl_results) {
        assert_eq!(result.expect("no call panics"), x * 3);
    }
    assert_eq!(runs(&LRU_FUNC_RUNS), 100);
    assert_eq!(runs(&TTL_FUNC_RUNS), 100);
    let (lru, ttl) = (lru_func::metrics(), ttl_func::metrics());
    assert_eq!((lru.size, lru.misses, lru.loads), (50, 100, 100));
    assert_eq!((ttl.size, ttl.misses, ttl.loads), (50, 100, 100));
}
