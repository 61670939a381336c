//! The miss paths: a miss and insert at capacity, a herd of 10,000 callers on one key (as
//! 10,000 spawned tasks, then as 10,000 futures joined in one task), an error storm of 100
//! callers, and 10,000 distinct keys through a batch loader.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::{AsyncCache, Engine};
use cached::{Cached, LruCache};
use futures_util::future::join_all;
use tokio::runtime::Runtime;

use crate::Settings;
use crate::peers::{self, CpuTimer, LOAD_TIME, counter, median, poll_once};
use crate::report::Table;

pub const MISS: &str = "miss + insert at capacity 10,000 (ns per call)";
pub const HERD: &str = "herd of 10,000 on one key: time above the loader's 1 ms (ms)";
pub const HERD_JOINED: &str = "herd of 10,000 on one key, as 10,000 futures joined in one task \
     (join_all, no spawn): time above the loader's 1 ms (ms)";
pub const STORM: &str = "error storm of 100 callers, loader fails after 1 ms (ms)";
pub const BATCH: &str = "batch of 10,000 distinct keys (ms)";

pub const HERD_OURS: &str = "AsyncCache::get_with [quick_cache, default]";
pub const LOADER_ALONE: &str = "the loader alone (1 task, sleep 1 ms)";
pub const LOADER_ALONE_JOINED: &str = "the loader alone (sleep 1 ms in the calling task, no spawn)";

const CAPACITY: u64 = 10_000;

pub fn run(settings: &Settings, table: &mut Table) {
    miss_and_insert(settings, table);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    herd(settings, table, &runtime, Callers::Tasks);
    herd(settings, table, &runtime, Callers::Joined);
    storm(settings, table, &runtime);
    batch(settings, table, &runtime);
}

/// Nanoseconds (of this thread's CPU time: every peer does all its work on the caller's
/// thread) per call of `op` on keys never seen before, after filling to capacity.
fn per_miss(settings: &Settings, mut op: impl FnMut(u64) -> u64) -> f64 {
    for key in 0..CAPACITY {
        assert_eq!(op(key), key);
    }
    let timer = CpuTimer::start();
    for key in CAPACITY..CAPACITY + settings.misses as u64 {
        std::hint::black_box(op(key));
    }
    timer.elapsed().as_nanos() as f64 / settings.misses as f64
}

fn miss_and_insert(settings: &Settings, table: &mut Table) {
    for engine in [Engine::QuickCache, Engine::Moka] {
        let cache: AsyncCache<u64, u64> = AsyncCache::builder()
            .maxsize(CAPACITY)
            .engine(engine)
            .build();
        let ns = per_miss(settings, |k| poll_once(cache.get_with(k, async move { k })));
        assert_eq!(cache.metrics().size, CAPACITY);
        table.push(
            MISS,
            format!("AsyncCache::get_with [{}]", engine_name(engine)),
            ns,
            "ns",
        );
    }
    let before = peers::loads(counter::MISS);
    let ns = per_miss(settings, |k| poll_once(peers::miss_lru(k)));
    table.push(MISS, "#[async_lru] [quick_cache, default]", ns, "ns");
    let ns = per_miss(settings, |k| poll_once(peers::miss_lru_moka(k)));
    table.push(MISS, "#[async_lru(engine = \"moka\")]", ns, "ns");
    let ns = per_miss(settings, |k| poll_once(peers::miss_cached(k)));
    table.push(MISS, "cached 4.1 #[cached] async fn", ns, "ns");
    let expected = 3 * (CAPACITY + settings.misses as u64);
    assert_eq!(
        peers::loads(counter::MISS) - before,
        expected,
        "every call was a miss"
    );

    let moka_future: moka::future::Cache<u64, u64> = moka::future::Cache::new(CAPACITY);
    let ns = per_miss(settings, |k| {
        poll_once(moka_future.get_with(k, async move { k }))
    });
    table.push(MISS, "moka::future::Cache::get_with (TinyLFU)", ns, "ns");
    let moka_sync: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(CAPACITY);
    let ns = per_miss(settings, |k| moka_sync.get_with(k, || k));
    table.push(MISS, "moka::sync::Cache::get_with (TinyLFU)", ns, "ns");
    let quick = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize);
    let ns = per_miss(settings, |k| {
        quick
            .get_or_insert_with(&k, || Ok::<_, Infallible>(k))
            .unwrap_or(0)
    });
    table.push(
        MISS,
        "quick_cache::sync::Cache::get_or_insert_with",
        ns,
        "ns",
    );
    let lru = parking_lot::RwLock::new(
        LruCache::<u64, u64>::builder()
            .max_size(CAPACITY as usize)
            .build()
            .expect("a valid LruCache size"),
    );
    let ns = per_miss(settings, |k| {
        let mut store = lru.write();
        match store.cache_get(&k) {
            Some(v) => *v,
            None => {
                store.cache_set(k, k);
                k
            }
        }
    });
    table.push(
        MISS,
        "cached LruCache in a RwLock (get, then set)",
        ns,
        "ns",
    );
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Moka => "moka",
        _ => "quick_cache, default",
    }
}

/// How the callers of a crowd run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Callers {
    /// One tokio task each, spawned onto the 2-worker runtime and joined in order (as Python's
    /// `create_task` and `gather`).
    Tasks,
    /// One future each, all joined in the task that `block_on` runs with
    /// `futures_util::future::join_all`: no task is spawned.
    Joined,
}

/// The median time of `rounds` crowds of `callers` callers each running `call(round)`, and the
/// loads per crowd (the largest seen). `call(round)` is one caller of that round's crowd.
fn crowd<F, Fut>(
    runtime: &Runtime,
    mode: Callers,
    rounds: usize,
    callers: usize,
    loads: impl Fn() -> u64,
    call: F,
) -> (f64, u64)
where
    F: Fn(u64) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let mut samples = Samples::default();
    for round in 0..rounds {
        samples.push(one_crowd(runtime, mode, round, callers, &loads, &call));
    }
    samples.result()
}

/// One crowd of `callers` callers each running `call(round)`: its time in ms, and the loads it
/// made.
fn one_crowd<F, Fut>(
    runtime: &Runtime,
    mode: Callers,
    round: usize,
    callers: usize,
    loads: impl Fn() -> u64,
    call: F,
) -> (f64, u64)
where
    F: Fn(u64) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let before = loads();
    let futures: Vec<Fut> = (0..callers).map(|_| call(round as u64)).collect();
    let start = Instant::now();
    runtime.block_on(async {
        match mode {
            Callers::Tasks => {
                let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
                for task in tasks {
                    task.await.expect("a caller panicked");
                }
            }
            Callers::Joined => {
                std::hint::black_box(join_all(futures).await);
            }
        }
    });
    (start.elapsed().as_secs_f64() * 1e3, loads() - before)
}

/// One peer's crowds: their times, and the most loads a crowd made.
#[derive(Default)]
struct Samples {
    times: Vec<f64>,
    most_loads: u64,
}

impl Samples {
    fn push(&mut self, (ms, loads): (f64, u64)) {
        self.times.push(ms);
        self.most_loads = self.most_loads.max(loads);
    }

    /// The median time, and the most loads a crowd made.
    fn result(self) -> (f64, u64) {
        (median(self.times), self.most_loads)
    }
}

/// The loader alone, the way `mode` runs a caller: in a spawned task, or in the calling task.
fn loader_alone(runtime: &Runtime, mode: Callers, rounds: usize) -> f64 {
    let times = (0..rounds.max(10))
        .map(|_| {
            let start = Instant::now();
            runtime.block_on(async {
                match mode {
                    Callers::Tasks => tokio::spawn(tokio::time::sleep(LOAD_TIME)).await.unwrap(),
                    Callers::Joined => tokio::time::sleep(LOAD_TIME).await,
                }
            });
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(times)
}

/// The herd, with its callers run as `mode` says: every peer, as rows of `workload`, each
/// minus the loader's own time measured the same way.
fn herd(settings: &Settings, table: &mut Table, runtime: &Runtime, mode: Callers) {
    const CALLERS: usize = 10_000;
    let (workload, alone_name, base) = match mode {
        Callers::Tasks => (HERD, LOADER_ALONE, 0),
        // Fresh keys for the attribute caches, which the first herds already filled.
        Callers::Joined => (HERD_JOINED, LOADER_ALONE_JOINED, 10_000_000),
    };
    let alone = loader_alone(runtime, mode, settings.crowds);
    table.push_noted(
        workload,
        alone_name,
        Some(alone),
        "ms",
        "total time, subtracted from the rows below",
    );
    let loads = Arc::new(AtomicU64::new(0));
    let counted = || {
        let loads = Arc::clone(&loads);
        async move {
            loads.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(LOAD_TIME).await;
            42_u64
        }
    };
    let row = |table: &mut Table, peer: &str, (ms, most): (f64, u64)| {
        table.push_noted(
            workload,
            peer,
            Some(ms - alone),
            "ms",
            format!("{most} load(s) per herd"),
        );
    };
    let caches = [Engine::QuickCache, Engine::Moka].map(|engine| {
        AsyncCache::<u64, u64>::builder()
            .maxsize(1_000)
            .engine(engine)
            .build()
    });
    let moka: moka::future::Cache<u64, u64> = moka::future::Cache::new(1_000);
    let quick = Arc::new(quick_cache::sync::Cache::<u64, u64>::new(1_000));
    let own_loads = || loads.load(Ordering::Relaxed);
    let herd_loads = || peers::loads(counter::HERD);
    // The peers take turns round by round, so that a change in the machine's load during the
    // run falls on all of them rather than on whichever peer was being timed.
    let mut samples: [Samples; 7] = Default::default();
    for round in 0..settings.crowds {
        for (sample, cache) in samples.iter_mut().zip(&caches) {
            sample.push(one_crowd(runtime, mode, round, CALLERS, own_loads, |key| {
                let (cache, load) = (cache.clone(), counted());
                async move { cache.get_with(key, load).await }
            }));
        }
        samples[2].push(one_crowd(runtime, mode, round, CALLERS, own_loads, |key| {
            let (moka, load) = (moka.clone(), counted());
            async move { moka.get_with(key, load).await }
        }));
        samples[3].push(one_crowd(runtime, mode, round, CALLERS, own_loads, |key| {
            let (quick, load) = (Arc::clone(&quick), counted());
            async move {
                quick
                    .get_or_insert_async(&key, async move { Ok::<_, Infallible>(load.await) })
                    .await
            }
        }));
        samples[4].push(one_crowd(runtime, mode, round, CALLERS, herd_loads, |k| {
            peers::herd_lru(base + k)
        }));
        samples[5].push(one_crowd(runtime, mode, round, CALLERS, herd_loads, |k| {
            peers::herd_lru_moka(base + k + 1_000_000)
        }));
        samples[6].push(one_crowd(runtime, mode, round, CALLERS, herd_loads, |k| {
            peers::herd_cached(base + k)
        }));
    }
    let names = [
        &format!("AsyncCache::get_with [{}]", engine_name(Engine::QuickCache)),
        &format!("AsyncCache::get_with [{}]", engine_name(Engine::Moka)),
        "moka::future::Cache::get_with",
        "quick_cache::sync::Cache::get_or_insert_async",
        "#[async_lru] [quick_cache, default]",
        "#[async_lru(engine = \"moka\")]",
        "cached 4.1 #[cached] async fn (no herd protection)",
    ];
    for (name, sample) in names.into_iter().zip(samples) {
        row(table, name, sample.result());
    }
}

fn storm(settings: &Settings, table: &mut Table, runtime: &Runtime) {
    const CALLERS: usize = 100;
    let rounds = settings.crowds * 2;
    let loads = Arc::new(AtomicU64::new(0));
    let failing = || {
        let loads = Arc::clone(&loads);
        async move {
            loads.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(LOAD_TIME).await;
            Err::<u64, String>("backend down".to_string())
        }
    };
    let row = |table: &mut Table, peer: &str, (ms, most): (f64, u64)| {
        table.push_noted(
            STORM,
            peer,
            Some(ms),
            "ms",
            format!("{most} load(s) per storm"),
        );
    };
    for engine in [Engine::QuickCache, Engine::Moka] {
        let cache: AsyncCache<u64, u64> =
            AsyncCache::builder().maxsize(1_000).engine(engine).build();
        let result = crowd(
            runtime,
            Callers::Tasks,
            rounds,
            CALLERS,
            || loads.load(Ordering::Relaxed),
            |key| {
                let (cache, load) = (cache.clone(), failing());
                async move { cache.try_get_with(key, load).await.is_err() }
            },
        );
        row(
            table,
            &format!("AsyncCache::try_get_with [{}]", engine_name(engine)),
            result,
        );
    }
    let moka: moka::future::Cache<u64, u64> = moka::future::Cache::new(1_000);
    let result = crowd(
        runtime,
        Callers::Tasks,
        rounds,
        CALLERS,
        || loads.load(Ordering::Relaxed),
        |key| {
            let (moka, load) = (moka.clone(), failing());
            async move { moka.try_get_with(key, load).await.is_err() }
        },
    );
    row(table, "moka::future::Cache::try_get_with", result);
    let quick = Arc::new(quick_cache::sync::Cache::<u64, u64>::new(1_000));
    let result = crowd(
        runtime,
        Callers::Tasks,
        rounds,
        CALLERS,
        || loads.load(Ordering::Relaxed),
        |key| {
            let (quick, load) = (Arc::clone(&quick), failing());
            async move { quick.get_or_insert_async(&key, load).await.is_err() }
        },
    );
    row(
        table,
        "quick_cache::sync::Cache::get_or_insert_async",
        result,
    );
    let storm_loads = || peers::loads(counter::STORM);
    let result = crowd(
        runtime,
        Callers::Tasks,
        rounds,
        CALLERS,
        storm_loads,
        |k| async move { peers::storm_lru(k).await.is_err() },
    );
    row(table, "#[async_lru] [quick_cache, default], Result", result);
    let result = crowd(
        runtime,
        Callers::Tasks,
        rounds,
        CALLERS,
        storm_loads,
        |k| async move { peers::storm_cached(k).await.is_err() },
    );
    row(table, "cached 4.1 #[cached] async fn, Result", result);
}

fn batch(settings: &Settings, table: &mut Table, runtime: &Runtime) {
    const KEYS: u64 = 10_000;
    let rounds = settings.crowds;
    for engine in [Engine::QuickCache, Engine::Moka] {
        let mut times = Vec::new();
        let mut calls = 0;
        for _ in 0..rounds {
            let cache: AsyncCache<u64, u64> = AsyncCache::builder()
                .maxsize(KEYS)
                .batch_window(Duration::from_millis(1))
                .max_batch_size(1_000)
                .engine(engine)
                .build();
            let loader = cache.batch_loader(|keys: Vec<u64>| async move {
                Ok::<_, Infallible>(
                    keys.into_iter()
                        .map(|k| (k, k * 2))
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
            times.push(start.elapsed().as_secs_f64() * 1e3);
            calls = calls.max(cache.metrics().loads);
        }
        table.push_noted(
            BATCH,
            format!("AsyncCache::batch_loader [{}]", engine_name(engine)),
            Some(median(times)),
            "ms",
            format!("{calls} batch calls (1 ms window, at most 1,000 keys)"),
        );
    }
    let loads = Arc::new(AtomicU64::new(0));
    let moka: moka::future::Cache<u64, u64> = moka::future::Cache::new(KEYS);
    let mut times = Vec::new();
    for round in 0..rounds as u64 {
        let start = Instant::now();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..KEYS)
                .map(|key| {
                    let (moka, loads) = (moka.clone(), Arc::clone(&loads));
                    let key = round * KEYS + key;
                    tokio::spawn(async move {
                        moka.get_with(key, async move {
                            loads.fetch_add(1, Ordering::Relaxed);
                            key * 2
                        })
                        .await
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    table.push_noted(
        BATCH,
        "moka::future::Cache::get_with, no batching",
        Some(median(times)),
        "ms",
        "one load per key (moka has no batch loader)",
    );
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..KEYS)
                .map(|k| tokio::spawn(async move { k * 2 }))
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    table.push_noted(
        BATCH,
        "spawn + join 10,000 tasks, no cache",
        Some(median(times)),
        "ms",
        "the runtime's share",
    );
}
