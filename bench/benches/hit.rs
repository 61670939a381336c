//! `hit`: the single-thread hit path on 10,000 warm `u64 -> u64` entries, with `AsyncCache`
//! on each storage engine.
//!
//! Every peer holds the same 10,000 keys (pseudo-random `u64`s, inserted in one order) and is
//! read in the same shuffled sequence, one lookup per criterion iteration, so no peer is
//! measured on one hot key. The async lookups (`AsyncCache::get_with` and moka's
//! `future::Cache::get`) are polled once with a no-op waker, with no runtime: they complete on
//! their first poll on a hit, so this measures the cache, not an executor.
//!
//! The `cached` crate's peer is its store as `#[cached(size = N)]` uses it on a sync function
//! in cached 4.x: a `static` `parking_lot::RwLock<LruCache<K, V>>` (`LruCache` is the 3.0+
//! name of `SizedCache`), write-locked for `Cached::cache_get` and the value cloned out. The
//! same store behind a `std::sync::Mutex` is measured too.

use std::hint::black_box;
use std::time::Duration;

use bench::{key_sets, poll_once};
use cache_core::{AsyncCache, Engine};
use cached::{Cached, LruCache};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ENTRIES: usize = 10_000;
/// quick_cache splits its bound evenly over its shards (8 here), so at a bound of exactly
/// 10,000 a shard that draws more than its share of keys evicts some (about 120 of these
/// keys). 20% headroom keeps all 10,000; the other peers are bounded at 10,000.
const QUICK_CACHE_CAPACITY: usize = 12_000;

/// Panics unless every key is a hit with its value: a peer that evicted or refused a key
/// would otherwise be timed on misses.
fn assert_warm(peer: &str, keys: &[u64], mut get: impl FnMut(u64) -> Option<u64>) {
    for &key in keys {
        assert_eq!(get(key), Some(key), "{peer}: key {key} is not a hit");
    }
}

fn hit(c: &mut Criterion) {
    let (inserted, lookups) = key_sets(ENTRIES);
    let capacity = ENTRIES as u64;

    let ours: AsyncCache<u64, u64> = AsyncCache::builder().maxsize(capacity).build();
    let ours_moka: AsyncCache<u64, u64> = AsyncCache::builder()
        .maxsize(capacity)
        .engine(Engine::Moka)
        .build();
    let moka_sync: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(capacity);
    let moka_future: moka::future::Cache<u64, u64> = moka::future::Cache::new(capacity);
    let quick = quick_cache::sync::Cache::<u64, u64>::new(QUICK_CACHE_CAPACITY);
    let lru_store = || {
        LruCache::<u64, u64>::builder()
            .max_size(ENTRIES)
            .build()
            .expect("a valid LruCache size")
    };
    let cached_rwlock = parking_lot::RwLock::new(lru_store());
    let cached_mutex = std::sync::Mutex::new(lru_store());

    for &key in &inserted {
        ours.insert(key, key);
        ours_moka.insert(key, key);
        moka_sync.insert(key, key);
        poll_once(moka_future.insert(key, key));
        quick.insert(key, key);
        cached_rwlock.write().cache_set(key, key);
        cached_mutex.lock().unwrap().cache_set(key, key);
    }
    moka_sync.run_pending_tasks();
    poll_once(moka_future.run_pending_tasks());

    assert_warm("AsyncCache::get", &lookups, |k| ours.get(&k));
    assert_warm("AsyncCache::get_with", &lookups, |k| {
        Some(poll_once(
            ours.get_with(k, async { unreachable!("a hit runs no loader") }),
        ))
    });
    assert_warm("AsyncCache::get [moka]", &lookups, |k| ours_moka.get(&k));
    assert_warm("moka sync", &lookups, |k| moka_sync.get(&k));
    assert_warm("moka future", &lookups, |k| poll_once(moka_future.get(&k)));
    assert_warm("quick_cache", &lookups, |k| quick.get(&k));
    assert_warm("cached (RwLock)", &lookups, |k| {
        cached_rwlock.write().cache_get(&k).cloned()
    });
    assert_warm("cached (Mutex)", &lookups, |k| {
        cached_mutex.lock().unwrap().cache_get(&k).cloned()
    });

    let mut group = c.benchmark_group("hit");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));

    group.bench_function("AsyncCache::get [quick_cache, default]", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| ours.get(black_box(keys.next().unwrap())));
    });
    group.bench_function("AsyncCache::get [moka]", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| ours_moka.get(black_box(keys.next().unwrap())));
    });
    group.bench_function("AsyncCache::get_with (1 noop-waker poll)", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| {
            let key = *black_box(keys.next().unwrap());
            poll_once(ours.get_with(key, async { unreachable!("a hit runs no loader") }))
        });
    });
    group.bench_function("moka::sync::Cache::get", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| moka_sync.get(black_box(keys.next().unwrap())));
    });
    group.bench_function("moka::future::Cache::get (1 noop-waker poll)", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| poll_once(moka_future.get(black_box(keys.next().unwrap()))));
    });
    group.bench_function("quick_cache::sync::Cache::get", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| quick.get(black_box(keys.next().unwrap())));
    });
    group.bench_function(
        "cached LruCache in parking_lot RwLock (as #[cached])",
        |b| {
            let mut keys = lookups.iter().cycle();
            b.iter(|| {
                cached_rwlock
                    .write()
                    .cache_get(black_box(keys.next().unwrap()))
                    .cloned()
            });
        },
    );
    group.bench_function("cached LruCache in std Mutex", |b| {
        let mut keys = lookups.iter().cycle();
        b.iter(|| {
            cached_mutex
                .lock()
                .unwrap()
                .cache_get(black_box(keys.next().unwrap()))
                .cloned()
        });
    });
    group.finish();
}

criterion_group!(benches, hit);
criterion_main!(benches);
