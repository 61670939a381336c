//! `macro_hit`: what `#[async_lru]` costs on a hit over the call it expands to.
//!
//! Every peer is an `async fn(u64) -> u64` caching the identity over the same 10,000 warm keys
//! (the pseudo-random keys of `hit.rs`, inserted in one order), read in the same shuffled
//! sequence, one call per criterion iteration:
//!
//! - `#[async_lru(maxsize = 20_000)]`: its arguments are all owned, so it expands to a
//!   `CacheSlot` static and `get_with_detached`; on the default engine (quick_cache), and with
//!   `engine = "moka"`;
//! - the same by hand: a `static LazyLock<AsyncCache<u64, u64>>` and `get_with_detached`, the
//!   call the expansion makes, which is the baseline of the ratios; and `get_with`, the inline
//!   form;
//! - the `cached` crate's `#[cached(max_size = 20_000)]` on an `async fn` (cached 4.1 renamed
//!   `size` to `max_size`): an `LruCache` in an `async_lock::RwLock`, write-locked per call.
//!
//! And a `&str` key (`macro_hit_str`): `#[async_lru]` looks a hit up by the borrowed argument,
//! against the short hand-written form, `get_with(name.to_owned(), ...)`, which allocates the
//! owned key on every call.
//!
//! Each call is polled once with a no-op waker, with no runtime: on a hit every peer completes
//! on its first poll, so this measures the cache and the function around it, not an executor.
//! Before timing, every peer is checked to complete on its first poll on every key without
//! running its body.

use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bench::{key_sets, poll_once};
use cache_core::{AsyncCache, async_lru};
use cached::macros::cached;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ENTRIES: usize = 10_000;
const MAXSIZE: u64 = 20_000;

/// How many times each peer's body ran: one per key while warming, none after.
static MACRO_LOADS: AtomicU64 = AtomicU64::new(0);
static HAND_LOADS: AtomicU64 = AtomicU64::new(0);
static CACHED_LOADS: AtomicU64 = AtomicU64::new(0);
static MOKA_LOADS: AtomicU64 = AtomicU64::new(0);

#[async_lru(maxsize = 20_000)]
async fn via_macro(k: u64) -> u64 {
    MACRO_LOADS.fetch_add(1, Ordering::Relaxed);
    k
}

#[async_lru(maxsize = 20_000, engine = "moka")]
async fn via_macro_moka(k: u64) -> u64 {
    MOKA_LOADS.fetch_add(1, Ordering::Relaxed);
    k
}

/// What `#[async_lru(maxsize = 20_000)]` builds, written by hand.
static HAND: LazyLock<AsyncCache<u64, u64>> =
    LazyLock::new(|| AsyncCache::builder().maxsize(MAXSIZE).build());

/// The expansion of `via_macro`, by hand: the detached form, as for all-owned arguments.
async fn by_hand_detached(k: u64) -> u64 {
    HAND.get_with_detached(k, async move {
        HAND_LOADS.fetch_add(1, Ordering::Relaxed);
        k
    })
    .await
}

/// The same over the same cache with the inline form.
async fn by_hand_inline(k: u64) -> u64 {
    HAND.get_with(k, async move {
        HAND_LOADS.fetch_add(1, Ordering::Relaxed);
        k
    })
    .await
}

/// A `&str` key: the macro looks a hit up by the borrowed argument, so a hit allocates nothing.
#[async_lru(maxsize = 20_000)]
async fn name_via_macro(name: &str) -> usize {
    MACRO_LOADS.fetch_add(1, Ordering::Relaxed);
    name.len()
}

static HAND_STR: LazyLock<AsyncCache<String, usize>> =
    LazyLock::new(|| AsyncCache::builder().maxsize(MAXSIZE).build());

/// The same by hand, the short way: the owned key built on every call, hits included.
async fn name_by_hand_owned(name: &str) -> usize {
    HAND_STR
        .get_with(name.to_owned(), async move {
            HAND_LOADS.fetch_add(1, Ordering::Relaxed);
            name.len()
        })
        .await
}

#[cached(max_size = 20_000)]
async fn via_cached(k: u64) -> u64 {
    CACHED_LOADS.fetch_add(1, Ordering::Relaxed);
    k
}

/// Loads every key through `call` (one body run each), then panics unless every key is a hit:
/// the call completes on its first poll with the key's value and the body does not run.
fn warm<F: Future<Output = u64>>(
    peer: &str,
    inserted: &[u64],
    lookups: &[u64],
    loads: &AtomicU64,
    call: impl Fn(u64) -> F,
) {
    let before = loads.load(Ordering::Relaxed);
    for &key in inserted {
        assert_eq!(poll_once(call(key)), key, "{peer}: key {key} loaded wrong");
    }
    let warmed = loads.load(Ordering::Relaxed);
    assert_eq!(warmed - before, ENTRIES as u64, "{peer}: one load per key");
    for &key in lookups {
        assert_eq!(poll_once(call(key)), key, "{peer}: key {key} read wrong");
    }
    assert_eq!(
        loads.load(Ordering::Relaxed),
        warmed,
        "{peer}: a warm key ran the body"
    );
}

fn macro_hit(c: &mut Criterion) {
    let (inserted, lookups) = key_sets(ENTRIES);

    warm("#[async_lru]", &inserted, &lookups, &MACRO_LOADS, via_macro);
    let metrics = via_macro::metrics();
    assert_eq!(metrics.size, ENTRIES as u64);
    assert_eq!(metrics.hits, ENTRIES as u64);
    warm(
        "by hand, get_with_detached",
        &inserted,
        &lookups,
        &HAND_LOADS,
        by_hand_detached,
    );
    // Same cache, already warm: the inline form must hit every key too.
    for &key in &lookups {
        assert_eq!(poll_once(by_hand_inline(key)), key);
    }
    assert_eq!(HAND_LOADS.load(Ordering::Relaxed), ENTRIES as u64);
    warm("#[cached]", &inserted, &lookups, &CACHED_LOADS, via_cached);
    warm(
        "#[async_lru(engine = \"moka\")]",
        &inserted,
        &lookups,
        &MOKA_LOADS,
        via_macro_moka,
    );

    let mut group = c.benchmark_group("macro_hit");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));

    group.bench_function("by hand LazyLock + get_with_detached", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| poll_once(by_hand_detached(*black_box(keys.next().unwrap()))));
    });
    group.bench_function("async_lru macro (get_with_detached)", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| poll_once(via_macro(*black_box(keys.next().unwrap()))));
    });
    group.bench_function("async_lru macro, engine = \"moka\"", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| poll_once(via_macro_moka(*black_box(keys.next().unwrap()))));
    });
    group.bench_function("by hand LazyLock + get_with", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| poll_once(by_hand_inline(*black_box(keys.next().unwrap()))));
    });
    group.bench_function("cached macro (async RwLock LruCache)", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| poll_once(via_cached(*black_box(keys.next().unwrap()))));
    });
    group.finish();

    // `&str` keys: the same 10,000 keys as decimal strings.
    let names: Vec<String> = lookups.iter().map(u64::to_string).collect();
    for name in &names {
        assert_eq!(poll_once(name_via_macro(name)), name.len());
        assert_eq!(poll_once(name_by_hand_owned(name)), name.len());
    }
    let mut group = c.benchmark_group("macro_hit_str");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("async_lru macro, &str key (looked up borrowed)", |b| {
        let mut names = names.iter().cycle();
        b.iter(|| poll_once(name_via_macro(black_box(names.next().unwrap()))));
    });
    group.bench_function("by hand get_with(name.to_owned())", |b| {
        let mut names = names.iter().cycle();
        b.iter(|| poll_once(name_by_hand_owned(black_box(names.next().unwrap()))));
    });
    group.finish();

    // Nothing above loaded: every timed call was a hit.
    assert_eq!(MACRO_LOADS.load(Ordering::Relaxed), 2 * ENTRIES as u64);
    assert_eq!(HAND_LOADS.load(Ordering::Relaxed), 2 * ENTRIES as u64);
    assert_eq!(CACHED_LOADS.load(Ordering::Relaxed), ENTRIES as u64);
}

criterion_group!(benches, macro_hit);
criterion_main!(benches);
