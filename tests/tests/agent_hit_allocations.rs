//! What an `#[agent_cache]` hit allocates, counted by a global allocator per thread over real
//! calls: nothing for a tool whose resources name no parameter, in a session (loop detection
//! on) or outside one; for a session-scoped tool whose resource names its parameter
//! (`cart:{user}`), only the formatted path, once. Its hit neither resolves nor keeps the
//! resource nodes (a miss does, for its entry), and the path is written into a string with
//! room for it, not grown.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use agent_cache::{AgentCacheSession, agent_cache, agent_invalidator};

/// Counts the allocations (and reallocations) made on each thread, so that tests running
/// beside this one on other threads do not count.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // A thread being torn down has no counter left: its allocations are not ours.
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Runs `future` with one poll and no runtime: a hit completes at once, and so do these loads.
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the call must complete on its first poll"),
    }
}

const HITS: u64 = 1_000;

static CATALOG_RUNS: AtomicU64 = AtomicU64::new(0);
static CART_RUNS: AtomicU64 = AtomicU64::new(0);

#[agent_cache(resource = "catalog", ttl = 3600, maxsize = 64)]
async fn catalog_item(id: u64) -> u64 {
    CATALOG_RUNS.fetch_add(1, Ordering::Relaxed);
    id * 2
}

#[agent_cache(resource = "cart:{user}", scope = "session", maxsize = 64)]
async fn cart_total(user: u64) -> u64 {
    CART_RUNS.fetch_add(1, Ordering::Relaxed);
    user + 100
}

#[agent_invalidator(resource = "cart:{user}", scope = "session")]
async fn add_to_cart(user: u64) {
    let _ = user;
}

/// Keys read in turn: more than the detector's longest cycle (`max_cycle_len`, 10), so that
/// going round them is no loop.
const KEYS: u64 = 16;

/// Allocations per call of `read` over `HITS` calls of keys `0..KEYS` in turn, each already
/// cached.
fn per_hit(mut read: impl FnMut(u64) -> u64) -> f64 {
    for key in 0..KEYS {
        read(key);
    }
    let before = allocations();
    for i in 0..HITS {
        read(i % KEYS);
    }
    (allocations() - before) as f64 / HITS as f64
}

fn detecting_session() -> AgentCacheSession {
    AgentCacheSession::builder()
        .loop_detection(true)
        .max_tool_repeats(u32::MAX)
        .max_execution_depth(u64::MAX)
        .build()
}

#[test]
fn a_hit_of_a_tool_whose_resources_name_no_parameter_allocates_nothing() {
    let outside = per_hit(|id| poll_once(catalog_item(id)));
    assert_eq!(outside, 0.0, "outside any session");
    let runs = CATALOG_RUNS.load(Ordering::Relaxed);
    let session = detecting_session();
    let inside = poll_once(session.run(async { per_hit(|id| poll_once(catalog_item(id))) }))
        .expect("no loop");
    assert_eq!(inside, 0.0, "in a session that detects loops");
    assert_eq!(CATALOG_RUNS.load(Ordering::Relaxed), runs, "every call hit");
}

#[test]
fn a_session_hit_of_a_resource_naming_its_parameter_allocates_only_its_path() {
    let session = detecting_session();
    let per = poll_once(session.run(async { per_hit(|user| poll_once(cart_total(user))) }))
        .expect("no loop");
    assert_eq!(per, 1.0, "one allocation a hit: the path `cart:{{user}}`");
    let m = session.metrics();
    assert_eq!(
        (m.hits, m.misses),
        (HITS, KEYS),
        "only the first call of each user missed"
    );
}

#[test]
fn a_session_hit_after_its_resource_was_invalidated_is_a_miss_then_a_hit_again() {
    let session = detecting_session();
    poll_once(session.run(async {
        let before = CART_RUNS.load(Ordering::Relaxed);
        assert_eq!(poll_once(cart_total(7)), 107);
        assert_eq!(poll_once(cart_total(7)), 107);
        assert_eq!(
            CART_RUNS.load(Ordering::Relaxed) - before,
            1,
            "the second call hit"
        );
        poll_once(add_to_cart(7));
        assert_eq!(poll_once(cart_total(7)), 107);
        assert_eq!(
            CART_RUNS.load(Ordering::Relaxed) - before,
            2,
            "invalidated: ran again"
        );
        assert_eq!(poll_once(cart_total(8)), 108);
        poll_once(add_to_cart(7));
        assert_eq!(poll_once(cart_total(8)), 108);
        assert_eq!(
            CART_RUNS.load(Ordering::Relaxed) - before,
            3,
            "another user's entry stayed"
        );
    }))
    .expect("no loop");
}
