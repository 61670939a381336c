//! A bound in bytes: the Zipf trace of `zipf.rs` over values of very different sizes (64 B to
//! 16 KiB, log-uniform, fixed per key), replayed as "read, and insert on a miss" through each
//! peer bounded by the same byte budget with a weigher (the value's length). Two figures per
//! peer and budget: the hit ratio, and the heap the cache holds at the end of the trace per
//! byte of budget (the values' bytes included, counted by this process's allocator).

use std::sync::Arc;

use cache_core::{AsyncCache, Engine};

use crate::Settings;
use crate::peers::splitmix64;
use crate::report::Table;
use crate::zipf::{hit_ratio, trace};
use bench::alloc::live_bytes;

pub const BUDGETS: [u64; 2] = [1 << 20, 16 << 20];

pub fn ratio_workload(budget: u64) -> String {
    format!(
        "weighted bound, {} MiB budget: hit ratio, Zipf 1.0, values 64 B-16 KiB (%)",
        budget >> 20
    )
}

pub fn heap_workload(budget: u64) -> String {
    format!(
        "weighted bound, {} MiB budget: heap held per budget byte",
        budget >> 20
    )
}

pub const OURS: &str = "AsyncCache [quick_cache, default] .max_weight().weigher()";
pub const OURS_MOKA: &str = "AsyncCache [moka] .max_weight().weigher()";
pub const MOKA: &str = "moka::sync::Cache (TinyLFU) .max_capacity().weigher()";
pub const MOKA_LRU: &str = "moka::sync::Cache (LRU) .max_capacity().weigher()";
pub const QUICK: &str = "quick_cache::sync::Cache::with_weighter";

type Value = Arc<[u8]>;

/// The size of `key`'s value: log-uniform from 64 B to 16 KiB, fixed per key.
fn size_of(key: u64) -> usize {
    let mut state = key ^ 0x5EED;
    let u = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    (64.0 * 256f64.powf(u)) as usize
}

fn value(key: u64) -> Value {
    vec![0xAB; size_of(key)].into()
}

fn weight(value: &Value) -> u32 {
    value.len() as u32
}

#[derive(Clone)]
struct ByLength;

impl quick_cache::Weighter<u64, Value> for ByLength {
    fn weight(&self, _key: &u64, value: &Value) -> u64 {
        value.len() as u64
    }
}

/// Replays `trace` through the cache `build` makes: the hit ratio, and the heap it holds at
/// the end per byte of `budget`.
fn measure<C>(
    trace: &[u64],
    budget: u64,
    build: impl FnOnce() -> C,
    get: impl Fn(&C, u64) -> bool,
    insert: impl Fn(&C, u64),
    settle: impl Fn(&C),
) -> (f64, f64) {
    let before = live_bytes();
    let cache = build();
    let ratio = hit_ratio(trace, |k| get(&cache, k), |k| insert(&cache, k));
    settle(&cache);
    let held = live_bytes() - before;
    drop(cache);
    (ratio, held as f64 / budget as f64)
}

pub fn run(settings: &Settings, table: &mut Table) {
    let trace = trace(settings.trace);
    for budget in BUDGETS {
        let mut push = |name: &str, (ratio, heap): (f64, f64)| {
            table.push(ratio_workload(budget), name, ratio, "%");
            table.push(heap_workload(budget), name, heap, "x");
        };
        for engine in [Engine::QuickCache, Engine::Moka] {
            let figures = measure(
                &trace,
                budget,
                || -> AsyncCache<u64, Value> {
                    AsyncCache::builder()
                        .max_weight(budget)
                        .weigher(|_key: &u64, value: &Value| weight(value))
                        .engine(engine)
                        .build()
                },
                |cache, k| cache.get(&k).is_some(),
                |cache, k| cache.insert(k, value(k)),
                |cache| {
                    let m = cache.metrics();
                    assert!(m.weight.unwrap() <= budget, "over the byte budget");
                },
            );
            push(
                if engine == Engine::Moka {
                    OURS_MOKA
                } else {
                    OURS
                },
                figures,
            );
        }
        for (name, policy) in [
            (MOKA, moka::policy::EvictionPolicy::tiny_lfu()),
            (MOKA_LRU, moka::policy::EvictionPolicy::lru()),
        ] {
            let figures = measure(
                &trace,
                budget,
                || -> moka::sync::Cache<u64, Value> {
                    moka::sync::Cache::builder()
                        .max_capacity(budget)
                        .weigher(|_key: &u64, value: &Value| weight(value))
                        .eviction_policy(policy)
                        .build()
                },
                |cache, k| cache.get(&k).is_some(),
                |cache, k| cache.insert(k, value(k)),
                |cache| {
                    cache.run_pending_tasks();
                    assert!(cache.weighted_size() <= budget, "over the byte budget");
                },
            );
            push(name, figures);
        }
        let figures = measure(
            &trace,
            budget,
            || {
                // Sized for the mean value (about 3 KB), as its docs ask.
                quick_cache::sync::Cache::<u64, Value, ByLength>::with_weighter(
                    (budget / 3_000) as usize,
                    budget,
                    ByLength,
                )
            },
            |cache, k| cache.get(&k).is_some(),
            |cache, k| cache.insert(k, value(k)),
            |cache| assert!(cache.weight() <= budget, "over the byte budget"),
        );
        push(QUICK, figures);
    }
}
