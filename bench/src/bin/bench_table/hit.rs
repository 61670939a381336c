//! The hit path: one thread, then two threads at once, on 10,000 warm `u64 -> u64` entries
//! read in a shuffled order, for every peer.

use std::time::Instant;

use cache_core::{AsyncCache, Engine};
use cached::{Cached, LruCache};

use crate::Settings;
use crate::peers::{
    self, ENTRIES, counter, key_sets, median, ns_per_op, poll_once, poll_until_ready,
};
use crate::report::Table;

pub const SINGLE: &str = "hit, 1 thread (ns per hit)";
pub const TWO_THREADS: &str = "hit, 2 threads (M hits/s)";

pub const QUICK_CACHE: &str = "quick_cache::sync::Cache::get";
pub const OURS_GET: &str = "AsyncCache::get [quick_cache, default]";
pub const OURS_GET_MOKA: &str = "AsyncCache::get [moka]";
pub const LRU: &str = "#[async_lru] [quick_cache, default]";
pub const LRU_MOKA: &str = "#[async_lru(engine = \"moka\")]";
pub const CACHED_FN: &str = "cached 4.1 #[cached] async fn";
pub const MOKA_SYNC: &str = "moka::sync::Cache::get (TinyLFU)";

/// quick_cache splits its bound over its shards (8 here): 20% headroom keeps all 10,000 keys.
const QUICK_CACHE_CAPACITY: usize = 12_000;

pub fn run(settings: &Settings, table: &mut Table) {
    let (inserted, lookups) = key_sets();
    let capacity = ENTRIES as u64;

    let ours = |engine| -> AsyncCache<u64, u64> {
        AsyncCache::builder()
            .maxsize(capacity)
            .engine(engine)
            .build()
    };
    let (ours_quick, ours_moka) = (ours(Engine::QuickCache), ours(Engine::Moka));
    let moka_sync: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(capacity);
    let moka_future: moka::future::Cache<u64, u64> = moka::future::Cache::new(capacity);
    let quick = quick_cache::sync::Cache::<u64, u64>::new(QUICK_CACHE_CAPACITY);
    let cached_store = parking_lot::RwLock::new(
        LruCache::<u64, u64>::builder()
            .max_size(ENTRIES)
            .build()
            .expect("a valid LruCache size"),
    );
    for &key in &inserted {
        ours_quick.insert(key, key);
        ours_moka.insert(key, key);
        moka_sync.insert(key, key);
        poll_once(moka_future.insert(key, key));
        quick.insert(key, key);
        cached_store.write().cache_set(key, key);
        poll_once(peers::hit_lru(key));
        poll_once(peers::hit_lru_moka(key));
        poll_once(peers::hit_cached(key));
    }
    moka_sync.run_pending_tasks();
    poll_once(moka_future.run_pending_tasks());
    let before = [counter::HIT_LRU, counter::HIT_LRU_MOKA, counter::HIT_CACHED].map(peers::loads);

    measure(settings, table, &lookups, QUICK_CACHE, |k| {
        quick.get(&k).unwrap_or(0)
    });
    measure(settings, table, &lookups, MOKA_SYNC, |k| {
        moka_sync.get(&k).unwrap_or(0)
    });
    measure(
        settings,
        table,
        &lookups,
        "moka::future::Cache::get (TinyLFU)",
        |k| poll_until_ready(moka_future.get(&k)).unwrap_or(0),
    );
    measure(
        settings,
        table,
        &lookups,
        "cached LruCache in a RwLock (#[cached] sync fn)",
        |k| cached_store.write().cache_get(&k).copied().unwrap_or(0),
    );
    measure(settings, table, &lookups, CACHED_FN, |k| {
        poll_until_ready(peers::hit_cached(k))
    });
    measure(settings, table, &lookups, OURS_GET, |k| {
        ours_quick.get(&k).unwrap_or(0)
    });
    measure(settings, table, &lookups, OURS_GET_MOKA, |k| {
        ours_moka.get(&k).unwrap_or(0)
    });
    measure(
        settings,
        table,
        &lookups,
        "AsyncCache::get_with [quick_cache, default]",
        |k| {
            poll_until_ready(ours_quick.get_with(k, async { unreachable!("a hit runs no loader") }))
        },
    );
    measure(
        settings,
        table,
        &lookups,
        "AsyncCache::get_with [moka]",
        |k| poll_until_ready(ours_moka.get_with(k, async { unreachable!("a hit runs no loader") })),
    );
    measure(settings, table, &lookups, LRU, |k| {
        poll_until_ready(peers::hit_lru(k))
    });
    measure(settings, table, &lookups, LRU_MOKA, |k| {
        poll_until_ready(peers::hit_lru_moka(k))
    });

    let after = [counter::HIT_LRU, counter::HIT_LRU_MOKA, counter::HIT_CACHED].map(peers::loads);
    assert_eq!(
        before, after,
        "a timed call ran its body: not every call was a hit"
    );
}

/// Times `op` (a warm hit on every key) on one thread and on two, as two rows. Generic, so each
/// peer's call is inlined into its own loop.
fn measure<F>(settings: &Settings, table: &mut Table, lookups: &[u64], name: &str, op: F)
where
    F: Fn(u64) -> u64 + Sync,
{
    for &key in lookups {
        assert_eq!(op(key), key, "{name}: key {key} is not a warm hit");
    }
    let single = ns_per_op(settings.rounds, settings.ops, lookups, &op);
    table.push(SINGLE, name, single, "ns");
    let throughput = two_threads(settings, lookups, &op);
    table.push(TWO_THREADS, name, throughput, "M/s");
}

/// Millions of calls per second with two threads calling `op` at once, each over the keys
/// from its own starting point; the median of the rounds.
fn two_threads<F>(settings: &Settings, keys: &[u64], op: &F) -> f64
where
    F: Fn(u64) -> u64 + Sync,
{
    let samples = (0..settings.rounds)
        .map(|_| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for thread in 0..2 {
                    scope.spawn(move || {
                        let offset = thread * keys.len() / 2;
                        let keys = keys[offset..].iter().chain(&keys[..offset]).cycle();
                        for key in keys.take(settings.ops) {
                            std::hint::black_box(op(std::hint::black_box(*key)));
                        }
                    });
                }
            });
            (2 * settings.ops) as f64 / start.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    median(samples)
}
