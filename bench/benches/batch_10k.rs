//! `batch_10k`: 10,000 distinct keys loaded concurrently through one
//! [`AsyncCache::batch_loader`] (window 1 ms, at most 1,000 keys a batch) whose batch function
//! returns its `HashMap` at once. One iteration spawns 10,000 tasks on a multi-thread tokio
//! runtime with 2 workers, each loading one key, and joins them all. A fresh cache and loader
//! are built before each iteration, outside the timed section, and every key must come back
//! with its value.
//!
//! Baseline in the same group: `spawn+join 10k tasks, no cache`, the runtime's share.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use cache_core::AsyncCache;
use criterion::{Criterion, criterion_group, criterion_main};

const KEYS: u64 = 10_000;

fn batch_10k(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");

    let mut group = c.benchmark_group("batch_10k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("AsyncCache::batch_loader", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache: AsyncCache<u64, u64> = AsyncCache::builder()
                    .maxsize(KEYS)
                    .batch_window(Duration::from_millis(1))
                    .max_batch_size(1_000)
                    .build();
                let loader = cache.batch_loader(|keys: Vec<u64>| async move {
                    Ok::<_, Infallible>(
                        keys.into_iter()
                            .map(|key| (key, key * 2))
                            .collect::<HashMap<_, _>>(),
                    )
                });
                let start = Instant::now();
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..KEYS)
                        .map(|key| {
                            let loader = loader.clone();
                            tokio::spawn(async move { (key, loader.load(key).await) })
                        })
                        .collect();
                    for task in tasks {
                        let (key, value) = task.await.unwrap();
                        assert_eq!(value, Ok(Some(key * 2)));
                    }
                });
                total += start.elapsed();
                let m = cache.metrics();
                assert_eq!(m.size, KEYS);
                assert!(m.loads >= KEYS / 1_000, "at most 1,000 keys a batch");
            }
            total
        });
    });
    group.bench_function("spawn+join 10k tasks, no cache", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..KEYS)
                        .map(|key| tokio::spawn(async move { (key, key * 2) }))
                        .collect();
                    for task in tasks {
                        let (key, value) = task.await.unwrap();
                        assert_eq!(value, key * 2);
                    }
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, batch_10k);
criterion_main!(benches);
