//! `herd_10k`: 10,000 concurrent `get_with` calls on one cold key, on a multi-thread tokio
//! runtime with 2 workers. The loader sleeps 1 ms; one iteration is one whole herd: spawn
//! 10,000 tasks, each calling `get_with`, and join them all. A fresh cache is built before
//! each herd, outside the timed section, and each herd must run its loader exactly once.
//!
//! Two baselines in the same group put the herd's time in context:
//! - `loader alone`: one spawned task that runs the loader (a 1 ms tokio sleep, which the
//!   timer rounds up to its 1 ms tick), joined: the loader's own time;
//! - `spawn+join 10k tasks, no cache`: 10,000 tasks that return at once: the runtime's share.
//!
//! Overhead above the loader = herd time - `loader alone`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache_core::{AsyncCache, Engine};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const HERD: usize = 10_000;
const KEY: u64 = 7;
const VALUE: u64 = 42;
const LOAD_TIME: Duration = Duration::from_millis(1);

async fn loader(loads: &AtomicUsize) -> u64 {
    loads.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(LOAD_TIME).await;
    VALUE
}

/// Times `iters` herds, each on a fresh `cache` made by `make` (outside the timed section);
/// `get_with` is one caller's call on the shared cache.
fn time_herds<C, F, Fut>(
    runtime: &Runtime,
    iters: u64,
    make: impl Fn() -> C,
    get_with: F,
) -> Duration
where
    C: Clone + Send + 'static,
    F: Fn(C, Arc<AtomicUsize>) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let cache = make();
        let loads = Arc::new(AtomicUsize::new(0));
        let callers: Vec<Fut> = (0..HERD)
            .map(|_| get_with(cache.clone(), Arc::clone(&loads)))
            .collect();
        let start = Instant::now();
        runtime.block_on(async {
            let tasks: Vec<_> = callers.into_iter().map(tokio::spawn).collect();
            for task in tasks {
                assert_eq!(task.await.unwrap(), VALUE);
            }
        });
        total += start.elapsed();
        assert_eq!(loads.load(Ordering::Relaxed), 1, "a herd must run one load");
        drop(cache);
    }
    total
}

fn herd_10k(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");

    let mut group = c.benchmark_group("herd_10k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    for engine in [Engine::QuickCache, Engine::Moka] {
        group.bench_function(format!("AsyncCache::get_with [{engine:?}]"), |b| {
            b.iter_custom(|iters| {
                time_herds(
                    &runtime,
                    iters,
                    || {
                        AsyncCache::<u64, u64>::builder()
                            .maxsize(1_000)
                            .engine(engine)
                            .build()
                    },
                    |cache, loads| async move { cache.get_with(KEY, loader(&loads)).await },
                )
            });
        });
    }
    group.bench_function("moka::future::Cache::get_with", |b| {
        b.iter_custom(|iters| {
            time_herds(
                &runtime,
                iters,
                || moka::future::Cache::<u64, u64>::new(1_000),
                |cache, loads| async move { cache.get_with(KEY, loader(&loads)).await },
            )
        });
    });
    group.bench_function("loader alone (1 task, sleep 1 ms)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let loads = Arc::new(AtomicUsize::new(0));
                let start = Instant::now();
                let value = runtime.block_on(async move {
                    tokio::spawn(async move { loader(&loads).await })
                        .await
                        .unwrap()
                });
                total += start.elapsed();
                assert_eq!(value, VALUE);
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
                    let tasks: Vec<_> = (0..HERD).map(|_| tokio::spawn(async { VALUE })).collect();
                    for task in tasks {
                        assert_eq!(task.await.unwrap(), VALUE);
                    }
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, herd_10k);
criterion_main!(benches);
