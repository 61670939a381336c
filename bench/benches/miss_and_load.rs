//! `miss_and_load`: a miss that runs a trivial loader and stores its value, at capacity.
//!
//! Each cache holds at most 10,000 entries and is filled to that bound before timing; every
//! iteration then asks for a key never seen before (keys keep increasing), so every call is a
//! miss, a load, an insert and an eviction. The loader returns at once, so each call completes
//! on its first poll: the futures are polled once with a no-op waker, with no runtime.
//!
//! Peers keep their default policies: moka's `future::Cache` is TinyLFU (AsyncCache's moka
//! engine runs moka in LRU mode and applies evictions at each insert), quick_cache is
//! CLOCK-Pro (AsyncCache's quick_cache engine too, in one shard for an exact bound).

use std::convert::Infallible;
use std::time::Duration;

use bench::poll_once;
use cache_core::{AsyncCache, Engine};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CAPACITY: u64 = 10_000;

fn miss_and_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("miss_and_load");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    for engine in [Engine::QuickCache, Engine::Moka] {
        let ours: AsyncCache<u64, u64> = AsyncCache::builder()
            .maxsize(CAPACITY)
            .engine(engine)
            .build();
        for key in 0..CAPACITY {
            poll_once(ours.get_with(key, async move { key }));
        }
        assert_eq!(ours.metrics().size, CAPACITY);
        group.bench_function(format!("AsyncCache::get_with [{engine:?}]"), |b| {
            let mut next = CAPACITY;
            b.iter(|| {
                let key = next;
                next += 1;
                poll_once(ours.get_with(key, async move { key }))
            });
        });
        let m = ours.metrics();
        assert_eq!(m.size, CAPACITY);
        assert_eq!(
            m.loads, m.misses,
            "every timed call must have been a miss and a load"
        );
    }

    let moka: moka::future::Cache<u64, u64> = moka::future::Cache::new(CAPACITY);
    for key in 0..CAPACITY {
        poll_once(moka.get_with(key, async move { key }));
    }
    group.bench_function("moka::future::Cache::get_with", |b| {
        let mut next = CAPACITY;
        b.iter(|| {
            let key = next;
            next += 1;
            poll_once(moka.get_with(key, async move { key }))
        });
    });
    drop(moka);

    let quick = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize);
    for key in 0..CAPACITY {
        poll_once(quick.get_or_insert_async(&key, async move { Ok::<_, Infallible>(key) }))
            .unwrap();
    }
    group.bench_function("quick_cache::sync::Cache::get_or_insert_async", |b| {
        let mut next = CAPACITY;
        b.iter(|| {
            let key = next;
            next += 1;
            poll_once(quick.get_or_insert_async(&key, async move { Ok::<_, Infallible>(key) }))
        });
    });
    assert!(quick.len() <= CAPACITY as usize);
    group.finish();
}

criterion_group!(benches, miss_and_load);
criterion_main!(benches);
