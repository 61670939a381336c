//! What a hit through the caching macros allocates, counted by a global allocator, per
//! thread, over real calls.
//!
//! - `#[async_lru]`/`#[async_ttl]` whose key is one argument: nothing. The cache is looked up
//!   by the borrowed argument (`&str` against the `String` key), so a hit neither clones nor
//!   converts it.
//! - `#[agent_cache]` whose resources name no parameter: nothing, in a session that detects
//!   loops or outside one.
//! - `#[agent_cache]` in session scope whose resource names its parameter (`cart:{user}`):
//!   only the formatted path, once. Its hit neither resolves nor keeps the resource nodes (a
//!   miss does, for its entry), and the path is written into a string with room for it, not
//!   grown.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::num::ParseIntError;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use agent_cache::{AgentCacheSession, agent_cache};
use cache_core::{async_lru, async_ttl};

/// Counts the allocations made on each thread, so that tests running beside this one on other
/// threads do not count.
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
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Runs `future` with one poll and no runtime, as a hit (and these loads) complete at once.
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

#[async_lru(maxsize = 16)]
async fn name_len(name: &str) -> usize {
    name.len()
}

#[async_ttl(time_to_live = 60, maxsize = 16)]
async fn owned_name_len(name: String) -> usize {
    name.len()
}

#[async_lru(maxsize = 16)]
async fn path_depth(path: &Path) -> usize {
    path.components().count()
}

#[async_lru(maxsize = 16)]
async fn parse(text: &str) -> Result<u64, ParseIntError> {
    text.parse()
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Catalog {
    region: String,
}

impl Catalog {
    #[async_lru(maxsize = 16)]
    async fn region_len(&self) -> usize {
        self.region.len()
    }
}

#[test]
fn a_str_argument_hit_allocates_nothing() {
    assert_eq!(poll_once(name_len("alice")), 5);
    let before = allocations();
    for _ in 0..HITS {
        assert_eq!(poll_once(name_len("alice")), 5);
    }
    assert_eq!(allocations() - before, 0, "a hit allocated");
    let metrics = name_len::metrics();
    assert_eq!((metrics.hits, metrics.misses, metrics.loads), (HITS, 1, 1));
}

#[test]
fn an_owned_string_argument_hit_clones_nothing() {
    let names: Vec<String> = (0..=HITS).map(|_| "bob".to_owned()).collect();
    let mut names = names.into_iter();
    assert_eq!(poll_once(owned_name_len(names.next().unwrap())), 3);
    let before = allocations();
    for name in names {
        assert_eq!(poll_once(owned_name_len(name)), 3);
    }
    assert_eq!(allocations() - before, 0, "a hit cloned its key");
    let metrics = owned_name_len::metrics();
    assert_eq!((metrics.hits, metrics.misses, metrics.loads), (HITS, 1, 1));
}

#[test]
fn a_path_argument_hit_allocates_nothing() {
    let path = Path::new("/srv/data/users");
    assert_eq!(poll_once(path_depth(path)), 4);
    let before = allocations();
    for _ in 0..HITS {
        assert_eq!(poll_once(path_depth(path)), 4);
    }
    assert_eq!(allocations() - before, 0, "a hit allocated");
    assert_eq!(path_depth::metrics().hits, HITS);
}

#[test]
fn a_result_hit_allocates_nothing_and_an_error_is_still_not_cached() {
    assert_eq!(poll_once(parse("42")), Ok(42));
    let before = allocations();
    for _ in 0..HITS {
        assert_eq!(poll_once(parse("42")), Ok(42));
    }
    assert_eq!(allocations() - before, 0, "a hit allocated");
    assert!(poll_once(parse("forty-two")).is_err());
    assert!(poll_once(parse("forty-two")).is_err());
    let metrics = parse::metrics();
    assert_eq!((metrics.hits, metrics.loads), (HITS, 3));
    assert_eq!(metrics.load_errors, 2);
}

#[test]
fn a_self_keyed_method_hit_clones_nothing() {
    let catalog = Catalog {
        region: "eu-west".to_owned(),
    };
    assert_eq!(poll_once(catalog.region_len()), 7);
    let before = allocations();
    for _ in 0..HITS {
        assert_eq!(poll_once(catalog.region_len()), 7);
    }
    assert_eq!(allocations() - before, 0, "a hit cloned `self`");
}

static CATALOG_RUNS: AtomicU64 = AtomicU64::new(0);

#[agent_cache(resource = "catalog", ttl = 3600, maxsize = 64)]
async fn catalog_item(id: u64) -> u64 {
    CATALOG_RUNS.fetch_add(1, Ordering::Relaxed);
    id * 2
}

#[agent_cache(resource = "cart:{user}", scope = "session", maxsize = 64)]
async fn cart_total(user: u64) -> u64 {
    user + 100
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
fn an_agent_hit_of_a_tool_whose_resources_name_no_parameter_allocates_nothing() {
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
fn an_agent_session_hit_of_a_resource_naming_its_parameter_allocates_only_its_path() {
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
