//! Port of the Python suite's `tests/test_ttl.py` (reference §12, tests 95-99) to
//! `#[async_ttl]`.
//!
//! As in `macro_port_lru.rs`, each body counts its runs instead of being timed, and
//! `use_cache=False`, `invalidate_cache` and `clear_cache` map to the generated `refresh`,
//! `invalidate` and `clear`. Expiry is the point of this file, so it uses real time: the short
//! TTL is 0.5 s (Python: 0.3 s) and the wait for expiry 1.5 s (Python: 0.4 s), which leaves a
//! loaded two-core machine room on both sides: a hit must come well within the TTL and a
//! reload well after it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::async_ttl;
use tokio::time::sleep;

/// Long enough for an entry stored with the short TTL to have surely expired.
const PAST_SHORT_TTL: Duration = Duration::from_millis(1500);

/// Runs `future` on a runtime of its own, dropped afterwards (Python's `asyncio.run`).
fn on_fresh_runtime<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

fn count(runs: &AtomicUsize) -> usize {
    runs.fetch_add(1, Ordering::SeqCst) + 1
}

fn runs(runs: &AtomicUsize) -> usize {
    runs.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------------------
// test_hit

static HIT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 60)]
async fn long_expiration_fn(wait_ms: u64) -> u64 {
    count(&HIT_RUNS);
    wait_ms
}

/// Python: test_ttl.py::TestAsyncTTL::test_hit
#[tokio::test]
async fn second_call_within_the_ttl_is_a_hit() {
    assert_eq!(long_expiration_fn(100).await, 100);
    assert_eq!(runs(&HIT_RUNS), 1);
    assert_eq!(long_expiration_fn(100).await, 100);
    assert_eq!(runs(&HIT_RUNS), 1, "the second call is a hit");
    let m = long_expiration_fn::metrics();
    assert_eq!((m.hits, m.misses, m.loads), (1, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// test_expiration

static EXPIRATION_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 0.5)]
async fn short_expiration_fn(wait_ms: u64) -> u64 {
    count(&EXPIRATION_RUNS);
    wait_ms
}

/// Python: test_ttl.py::TestAsyncTTL::test_expiration
#[tokio::test]
async fn call_after_the_ttl_runs_the_body_again() {
    assert_eq!(short_expiration_fn(100).await, 100);
    assert_eq!(short_expiration_fn(100).await, 100);
    assert_eq!(runs(&EXPIRATION_RUNS), 1, "a hit within the TTL");
    sleep(PAST_SHORT_TTL).await;
    assert_eq!(short_expiration_fn(100).await, 100);
    assert_eq!(runs(&EXPIRATION_RUNS), 2, "expired: loaded again");
    let m = short_expiration_fn::metrics();
    assert_eq!((m.hits, m.misses, m.loads), (1, 2, 2));
}

// ---------------------------------------------------------------------------------------------
// test_refreshing

static REFRESH_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 0.5)]
async fn short_cleanup_fn(wait_ms: u64) -> String {
    let run = count(&REFRESH_RUNS);
    format!("{wait_ms}-run{run}")
}

/// Python: test_ttl.py::TestAsyncTTL::test_refreshing
#[test]
fn refresh_on_a_new_runtime_runs_the_body_and_stores_the_fresh_value() {
    assert_eq!(on_fresh_runtime(short_cleanup_fn(100)), "100-run1"); // t1: miss
    assert_eq!(on_fresh_runtime(short_cleanup_fn(100)), "100-run1"); // t2: hit
    assert_eq!(runs(&REFRESH_RUNS), 1);
    // t3: `use_cache=False` runs the body, as t1 did.
    assert_eq!(on_fresh_runtime(short_cleanup_fn::refresh(100)), "100-run2");
    assert_eq!(runs(&REFRESH_RUNS), 2);
    assert_eq!(on_fresh_runtime(short_cleanup_fn(100)), "100-run2");
    assert_eq!(runs(&REFRESH_RUNS), 2, "the fresh value was stored");
}

// ---------------------------------------------------------------------------------------------
// test_clear

static CLEAR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 0.5)]
async fn cache_clear_fn(wait_ms: u64) -> u64 {
    count(&CLEAR_RUNS);
    wait_ms
}

/// Python: test_ttl.py::TestAsyncTTL::test_clear
#[tokio::test]
async fn clear_within_the_ttl_makes_the_next_call_run_the_body_again() {
    assert_eq!(cache_clear_fn(100).await, 100);
    assert_eq!(cache_clear_fn(100).await, 100);
    assert_eq!(runs(&CLEAR_RUNS), 1);
    cache_clear_fn::clear();
    assert_eq!(cache_clear_fn(100).await, 100);
    assert_eq!(runs(&CLEAR_RUNS), 2);
}

// ---------------------------------------------------------------------------------------------
// test_invalidate

static LONG_INVALIDATE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 60)]
async fn long_expiration_invalidated(wait_ms: u64) -> u64 {
    count(&LONG_INVALIDATE_RUNS);
    wait_ms
}

static SHORT_INVALIDATE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 0.5)]
async fn short_expiration_invalidated(wait_ms: u64) -> u64 {
    count(&SHORT_INVALIDATE_RUNS);
    wait_ms
}

/// Python: test_ttl.py::TestAsyncTTL::test_invalidate
#[tokio::test]
async fn invalidate_within_the_ttl_makes_the_next_call_run_the_body_again() {
    assert_eq!(long_expiration_invalidated(110).await, 110);
    assert_eq!(long_expiration_invalidated(110).await, 110);
    assert_eq!(runs(&LONG_INVALIDATE_RUNS), 1);
    long_expiration_invalidated::invalidate(110);
    assert_eq!(long_expiration_invalidated(110).await, 110);
    assert_eq!(runs(&LONG_INVALIDATE_RUNS), 2);

    assert_eq!(short_expiration_invalidated(120).await, 120);
    assert_eq!(short_expiration_invalidated(120).await, 120);
    assert_eq!(runs(&SHORT_INVALIDATE_RUNS), 1);
    short_expiration_invalidated::invalidate(120);
    assert_eq!(short_expiration_invalidated(120).await, 120);
    assert_eq!(runs(&SHORT_INVALIDATE_RUNS), 2);
}
