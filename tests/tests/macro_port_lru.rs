//! Port of the Python suite's `tests/test_lru.py` (reference §12, tests 87-94) to
//! `#[async_lru]`.
//!
//! Python tells a miss from a hit by timing a 0.1 s body ("slow" vs "fast"); here each body
//! counts its runs, and a call that did not run the body is a hit. Python runs each call under
//! its own `asyncio.run`; [`on_fresh_runtime`] does the same with a new tokio runtime, so the
//! cache must outlive every runtime that touched it. `use_cache=False` maps to the generated
//! `refresh`, `invalidate_cache` to `invalidate` and `clear_cache` to `clear`. Python passes the
//! wait as a float of seconds, which cannot be a Rust key; it is an integer of milliseconds
//! here. Every cached function belongs to one test: caches are per function and tests run in
//! parallel.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use cache_core::{async_lru, async_ttl};

/// Runs `future` on a runtime of its own, dropped afterwards (Python's `asyncio.run`).
fn on_fresh_runtime<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// Counts one run of a body and returns the new total.
fn count(runs: &AtomicUsize) -> usize {
    runs.fetch_add(1, Ordering::SeqCst) + 1
}

fn runs(runs: &AtomicUsize) -> usize {
    runs.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------------------
// test_basic

static BASIC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn basic_func(wait_ms: u64) -> u64 {
    count(&BASIC_RUNS);
    wait_ms
}

/// Python: test_lru.py::TestAsyncLRU::test_basic
#[test]
fn second_call_on_a_new_runtime_is_a_hit() {
    assert_eq!(on_fresh_runtime(basic_func(100)), 100);
    assert_eq!(runs(&BASIC_RUNS), 1, "the first call runs the body");
    assert_eq!(on_fresh_runtime(basic_func(100)), 100);
    assert_eq!(
        runs(&BASIC_RUNS),
        1,
        "the second call is served from the cache"
    );
    let m = basic_func::metrics();
    assert_eq!((m.hits, m.misses, m.loads, m.size), (1, 1, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// test_obj_method, test_refreshing, test_invalidate (method part): `self` keyed by value

/// A receiver keyed by value, like a Python object whose `__dict__` is hashed.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Obj {
    label: String,
}

static OBJ_BASIC_RUNS: AtomicUsize = AtomicUsize::new(0);
static OBJ_REFRESH_RUNS: AtomicUsize = AtomicUsize::new(0);
static OBJ_INVALIDATE_RUNS: AtomicUsize = AtomicUsize::new(0);

impl Obj {
    #[async_lru]
    async fn obj_func(&self, wait_ms: u64) -> String {
        count(&OBJ_BASIC_RUNS);
        format!("{}-{wait_ms}", self.label)
    }

    #[async_lru]
    async fn obj_func_refreshed(&self, wait_ms: u64) -> String {
        let run = count(&OBJ_REFRESH_RUNS);
        format!("{}-{wait_ms}-run{run}", self.label)
    }

    #[async_lru]
    async fn obj_func_invalidated(&self, wait_ms: u64) -> String {
        count(&OBJ_INVALIDATE_RUNS);
        format!("{}-{wait_ms}", self.label)
    }
}

/// Python: test_lru.py::TestAsyncLRU::test_obj_method
#[test]
fn method_keyed_by_self_is_a_hit_the_second_time() {
    let obj = Obj {
        label: "obj".into(),
    };
    assert_eq!(on_fresh_runtime(obj.obj_func(100)), "obj-100");
    assert_eq!(runs(&OBJ_BASIC_RUNS), 1);
    assert_eq!(on_fresh_runtime(obj.obj_func(100)), "obj-100");
    assert_eq!(runs(&OBJ_BASIC_RUNS), 1, "the second call is a hit");
    assert_eq!(Obj::obj_func_metrics().hits, 1);
}

/// Python: test_lru.py::TestAsyncLRU::test_refreshing
#[tokio::test]
async fn refresh_bypasses_the_cache_and_stores_the_fresh_value() {
    let obj = Obj {
        label: "obj".into(),
    };
    assert_eq!(obj.obj_func_refreshed(140).await, "obj-140-run1"); // t1: miss
    assert_eq!(obj.obj_func_refreshed(140).await, "obj-140-run1"); // t2: hit
    assert_eq!(runs(&OBJ_REFRESH_RUNS), 1);
    // t3: `use_cache=False` runs the body again, like t1.
    assert_eq!(obj.obj_func_refreshed_refresh(140).await, "obj-140-run2");
    assert_eq!(runs(&OBJ_REFRESH_RUNS), 2);
    // The fresh value is what the cache now serves.
    assert_eq!(obj.obj_func_refreshed(140).await, "obj-140-run2");
    assert_eq!(runs(&OBJ_REFRESH_RUNS), 2);
}

// ---------------------------------------------------------------------------------------------
// test_class_method

static CLASS_RUNS: AtomicUsize = AtomicUsize::new(0);

struct TestClassFunc;

impl TestClassFunc {
    // A Python classmethod is an associated function without a receiver. The macro cannot
    // tell one from a free function unless the signature mentions `Self` (it would emit a
    // helper `mod` inside the `impl`), hence the `where Self: Sized`.
    #[async_lru]
    async fn class_func(wait_ms: u64) -> u64
    where
        Self: Sized,
    {
        count(&CLASS_RUNS);
        wait_ms
    }
}

/// Python: test_lru.py::TestAsyncLRU::test_class_method
#[test]
fn associated_function_is_a_hit_the_second_time() {
    assert_eq!(on_fresh_runtime(TestClassFunc::class_func(100)), 100);
    assert_eq!(runs(&CLASS_RUNS), 1);
    assert_eq!(on_fresh_runtime(TestClassFunc::class_func(100)), 100);
    assert_eq!(runs(&CLASS_RUNS), 1, "the second call is a hit");
    assert_eq!(TestClassFunc::class_func_metrics().hits, 1);
}

// ---------------------------------------------------------------------------------------------
// test_skip_args, test_skip_args_lru

static SKIP_TTL_RUNS: AtomicUsize = AtomicUsize::new(0);

// Python: `AsyncTTL(maxsize=128, time_to_live=None, skip_args=1)`. `time_to_live` takes a
// positive number here, so "never" becomes an hour, far beyond the test.
#[async_ttl(maxsize = 128, time_to_live = 3600, skip_args = 1)]
async fn skip_arg_func_ttl(arg: u64, wait_ms: u64) -> u64 {
    count(&SKIP_TTL_RUNS);
    arg + wait_ms
}

/// Python: test_lru.py::TestAsyncLRU::test_skip_args
#[test]
fn skipped_first_argument_does_not_change_the_key_with_async_ttl() {
    assert_eq!(on_fresh_runtime(skip_arg_func_ttl(5, 100)), 105);
    assert_eq!(runs(&SKIP_TTL_RUNS), 1);
    // Only `wait_ms` is keyed, so `6` hits the entry `5` stored.
    assert_eq!(on_fresh_runtime(skip_arg_func_ttl(6, 100)), 105);
    assert_eq!(runs(&SKIP_TTL_RUNS), 1);
    assert_eq!(skip_arg_func_ttl::metrics().hits, 1);
}

static SKIP_LRU_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(maxsize = 128, skip_args = 1)]
async fn skip_arg_func_lru(arg: u64, wait_ms: u64) -> u64 {
    count(&SKIP_LRU_RUNS);
    arg + wait_ms
}

/// Python: test_lru.py::TestAsyncLRU::test_skip_args_lru
#[test]
fn skipped_first_argument_does_not_change_the_key_with_async_lru() {
    assert_eq!(on_fresh_runtime(skip_arg_func_lru(5, 100)), 105);
    assert_eq!(runs(&SKIP_LRU_RUNS), 1);
    assert_eq!(on_fresh_runtime(skip_arg_func_lru(6, 100)), 105);
    assert_eq!(runs(&SKIP_LRU_RUNS), 1);
    assert_eq!(skip_arg_func_lru::metrics().hits, 1);
}

// ---------------------------------------------------------------------------------------------
// test_clear

static CLEAR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn cache_clear_fn(wait_ms: u64) -> u64 {
    count(&CLEAR_RUNS);
    wait_ms
}

/// Python: test_lru.py::TestAsyncLRU::test_clear
#[test]
fn clear_makes_the_next_call_run_the_body_again() {
    assert_eq!(on_fresh_runtime(cache_clear_fn(100)), 100);
    assert_eq!(on_fresh_runtime(cache_clear_fn(100)), 100);
    assert_eq!(runs(&CLEAR_RUNS), 1);
    cache_clear_fn::clear();
    let m = cache_clear_fn::metrics();
    assert_eq!(
        (m.hits, m.misses, m.size),
        (0, 0, 0),
        "clear resets the metrics"
    );
    assert_eq!(on_fresh_runtime(cache_clear_fn(100)), 100);
    assert_eq!(runs(&CLEAR_RUNS), 2, "the call after clear is a miss");
}

// ---------------------------------------------------------------------------------------------
// test_invalidate

static INVALIDATE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru]
async fn invalidated_func(wait_ms: u64) -> u64 {
    count(&INVALIDATE_RUNS);
    wait_ms
}

static SKIP_INVALIDATE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_lru(maxsize = 128, skip_args = 1)]
async fn skip_arg_func_invalidated(arg: u64, wait_ms: u64) -> u64 {
    count(&SKIP_INVALIDATE_RUNS);
    arg + wait_ms
}

/// Python: test_lru.py::TestAsyncLRU::test_invalidate (first part: a function)
#[test]
fn invalidate_makes_the_next_call_of_those_arguments_run_the_body_again() {
    assert_eq!(on_fresh_runtime(invalidated_func(110)), 110);
    assert_eq!(on_fresh_runtime(invalidated_func(110)), 110);
    assert_eq!(runs(&INVALIDATE_RUNS), 1);
    invalidated_func::invalidate(120); // other arguments: no effect
    assert_eq!(on_fresh_runtime(invalidated_func(110)), 110);
    assert_eq!(runs(&INVALIDATE_RUNS), 1);
    invalidated_func::invalidate(110);
    assert_eq!(on_fresh_runtime(invalidated_func(110)), 110);
    assert_eq!(runs(&INVALIDATE_RUNS), 2);
}

/// Python: test_lru.py::TestAsyncLRU::test_invalidate (second part: `obj.obj_func`)
#[test]
fn invalidate_of_a_method_keyed_by_self_takes_the_instance() {
    let obj = Obj {
        label: "obj".into(),
    };
    assert_eq!(on_fresh_runtime(obj.obj_func_invalidated(120)), "obj-120");
    assert_eq!(on_fresh_runtime(obj.obj_func_invalidated(120)), "obj-120");
    assert_eq!(runs(&OBJ_INVALIDATE_RUNS), 1);
    // Python: `obj.obj_func.invalidate_cache(obj, 0.12)`.
    Obj::obj_func_invalidated_invalidate(&obj, 120);
    assert_eq!(on_fresh_runtime(obj.obj_func_invalidated(120)), "obj-120");
    assert_eq!(runs(&OBJ_INVALIDATE_RUNS), 2);
}

/// Python: test_lru.py::TestAsyncLRU::test_invalidate (third part: `skip_arg_func`)
#[test]
fn invalidate_with_skip_args_takes_only_the_keyed_arguments() {
    assert_eq!(on_fresh_runtime(skip_arg_func_invalidated(100, 130)), 230);
    assert_eq!(on_fresh_runtime(skip_arg_func_invalidated(200, 130)), 230);
    assert_eq!(runs(&SKIP_INVALIDATE_RUNS), 1);
    // Python passes a placeholder for the skipped argument (`invalidate_cache(300, 0.13)`);
    // the Rust helper declares only the keyed parameters.
    skip_arg_func_invalidated::invalidate(130);
    assert_eq!(on_fresh_runtime(skip_arg_func_invalidated(400, 130)), 530);
    assert_eq!(
        runs(&SKIP_INVALIDATE_RUNS),
        2,
        "the call after invalidate is a miss"
    );
}
