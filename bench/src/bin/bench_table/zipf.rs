//! Hit ratio on a skewed key trace: 100,000 keys drawn by a Zipf law (exponent 1.0), generated
//! in-process from a fixed seed, replayed through each peer as "read, and insert on a miss".

use cache_core::{AsyncCache, Engine};

use crate::Settings;
use crate::peers::splitmix64;
use crate::report::Table;

pub const ZIPF: &str = "hit ratio, Zipf 1.0 over 100,000 keys (%)";
pub const KEYS: usize = 100_000;
pub const CAPACITIES: [u64; 3] = [100, 1_000, 10_000];

pub fn ours_name(capacity: u64) -> String {
    format!("AsyncCache [quick_cache, default], capacity {capacity}")
}

pub fn moka_name(capacity: u64) -> String {
    format!("moka::sync::Cache (TinyLFU), capacity {capacity}")
}

/// `len` keys drawn from a Zipf law over `KEYS` ranks; rank r has weight 1/r. Ranks map to
/// scattered keys so a key's popularity says nothing about its hash.
pub fn trace(len: usize) -> Vec<u64> {
    let mut cumulative = Vec::with_capacity(KEYS);
    let mut total = 0.0;
    for rank in 1..=KEYS {
        total += 1.0 / rank as f64;
        cumulative.push(total);
    }
    let mut state = 0x21FF;
    (0..len)
        .map(|_| {
            let u = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = cumulative.partition_point(|&c| c < u) as u64;
            let mut scatter = rank;
            splitmix64(&mut scatter)
        })
        .collect()
}

/// The share of `trace` that hit, reading each key and inserting it on a miss.
pub fn hit_ratio(
    trace: &[u64],
    mut get: impl FnMut(u64) -> bool,
    mut insert: impl FnMut(u64),
) -> f64 {
    let mut hits = 0;
    for &key in trace {
        if get(key) {
            hits += 1;
        } else {
            insert(key);
        }
    }
    100.0 * hits as f64 / trace.len() as f64
}

pub fn run(settings: &Settings, table: &mut Table) {
    let trace = trace(settings.trace);
    for capacity in CAPACITIES {
        let moka = moka::sync::Cache::<u64, u64>::new(capacity);
        let ratio = hit_ratio(&trace, |k| moka.get(&k).is_some(), |k| moka.insert(k, k));
        table.push(ZIPF, moka_name(capacity), ratio, "%");
        let moka_lru = moka::sync::Cache::<u64, u64>::builder()
            .max_capacity(capacity)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build();
        let ratio = hit_ratio(
            &trace,
            |k| moka_lru.get(&k).is_some(),
            |k| moka_lru.insert(k, k),
        );
        table.push(
            ZIPF,
            format!("moka::sync::Cache (LRU), capacity {capacity}"),
            ratio,
            "%",
        );
        let quick = quick_cache::sync::Cache::<u64, u64>::new(capacity as usize);
        let ratio = hit_ratio(&trace, |k| quick.get(&k).is_some(), |k| quick.insert(k, k));
        table.push(
            ZIPF,
            format!("quick_cache::sync::Cache (defaults), capacity {capacity}"),
            ratio,
            "%",
        );
        for engine in [Engine::QuickCache, Engine::Moka] {
            let cache: AsyncCache<u64, u64> = AsyncCache::builder()
                .maxsize(capacity)
                .engine(engine)
                .build();
            let ratio = hit_ratio(&trace, |k| cache.get(&k).is_some(), |k| cache.insert(k, k));
            let name = match engine {
                Engine::Moka => format!("AsyncCache [moka], capacity {capacity}"),
                _ => ours_name(capacity),
            };
            table.push(ZIPF, name, ratio, "%");
        }
    }
}
