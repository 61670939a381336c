//! A hit through `#[async_lru]`/`#[async_ttl]` whose key is one argument allocates nothing:
//! the cache is looked up by the borrowed argument (`&str` against the `String` key), so a hit
//! neither clones nor converts it. Counted by a global allocator, per thread, over real calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::num::ParseIntError;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

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
