//! The hit path: one thread, then 1, 2, 4, ... threads at once up to `nproc`, on 10,000 warm
//! `u64 -> u64` entries read in a shuffled order, for every peer; and what an expiry check
//! costs a hit with each clock.

use std::time::{Duration, Instant};

use cache_core::{AsyncCache, Engine};
use cached::{Cached, LruCache};

use crate::Settings;
use crate::peers::{
    self, ENTRIES, counter, key_sets, median, ns_per_op, poll_once, poll_until_ready,
};
use crate::report::Table;

pub const SINGLE: &str = "hit, 1 thread (ns per hit)";

pub const QUICK_CACHE: &str = "quick_cache::sync::Cache::get";
pub const QUICK_CACHE_STD_CLOCK: &str =
    "quick_cache::sync::Cache::get + expiry check by std::time::Instant::now()";
pub const QUICK_CACHE_QUANTA: &str =
    "quick_cache::sync::Cache::get + expiry check by quanta::Instant::now()";
pub const OURS_GET: &str = "AsyncCache::get [quick_cache, default]";
pub const OURS_GET_TTL: &str = "AsyncCache::get, entries with a TTL [quick_cache, default]";
pub const OURS_GET_MOKA: &str = "AsyncCache::get [moka]";
pub const OURS_GET_HOOKED: &str =
    "AsyncCache::get, with .weigher() and .on_evict() [quick_cache, default]";
pub const OURS_GET_HOOKED_MOKA: &str = "AsyncCache::get, with .weigher() and .on_evict() [moka]";
pub const LRU: &str = "#[async_lru] [quick_cache, default]";
pub const TTL: &str = "#[async_ttl] (ttl 3600 s) [quick_cache, default]";
pub const LRU_MOKA: &str = "#[async_lru(engine = \"moka\")]";
pub const CACHED_FN: &str = "cached 4.1 #[cached] async fn";
pub const MOKA_SYNC: &str = "moka::sync::Cache::get (TinyLFU)";

/// quick_cache splits its bound over its shards (8 here): 20% headroom keeps all 10,000 keys.
const QUICK_CACHE_CAPACITY: usize = 12_000;

/// The workload of `threads` threads hitting one cache at once.
pub fn threads_workload(threads: usize) -> String {
    let plural = if threads == 1 { "" } else { "s" };
    format!("hits, {threads} thread{plural} at once (M hits/s)")
}

/// The thread counts of the throughput rows: 1, 2, 4, ... up to `nproc` (and `nproc`
/// itself), at least 2 (the target's row).
pub fn thread_counts() -> Vec<usize> {
    let nproc = crate::nproc().max(2);
    let mut counts: Vec<usize> = std::iter::successors(Some(1), |n| Some(n * 2))
        .take_while(|&n| n <= nproc)
        .collect();
    if counts.last() != Some(&nproc) {
        counts.push(nproc);
    }
    counts
}

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
    // The options of issue 15 in use (each entry weighs 1, so the bound is the same): a hit
    // consults neither the listener nor the weigher.
    let hooked = |engine| -> AsyncCache<u64, u64> {
        AsyncCache::builder()
            .max_weight(capacity)
            .weigher(|_, _| 1)
            .on_evict(|_, _, _| {})
            .engine(engine)
            .build()
    };
    let (hooked_quick, hooked_moka) = (hooked(Engine::QuickCache), hooked(Engine::Moka));
    let ours_ttl: AsyncCache<u64, u64> = AsyncCache::builder()
        .maxsize(capacity)
        .default_ttl(Duration::from_secs(3600))
        .build();
    let moka_sync: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(capacity);
    let moka_future: moka::future::Cache<u64, u64> = moka::future::Cache::new(capacity);
    let quick = quick_cache::sync::Cache::<u64, u64>::new(QUICK_CACHE_CAPACITY);
    // The same entries, each with the instant it expires at, as a cache built on quick_cache
    // must keep them; a hit checks it against the clock.
    let quick_std = quick_cache::sync::Cache::<u64, (u64, Instant)>::new(QUICK_CACHE_CAPACITY);
    let quick_quanta =
        quick_cache::sync::Cache::<u64, (u64, quanta::Instant)>::new(QUICK_CACHE_CAPACITY);
    let cached_store = parking_lot::RwLock::new(
        LruCache::<u64, u64>::builder()
            .max_size(ENTRIES)
            .build()
            .expect("a valid LruCache size"),
    );
    let hour = Duration::from_secs(3600);
    for &key in &inserted {
        ours_quick.insert(key, key);
        ours_moka.insert(key, key);
        hooked_quick.insert(key, key);
        hooked_moka.insert(key, key);
        ours_ttl.insert(key, key);
        moka_sync.insert(key, key);
        poll_once(moka_future.insert(key, key));
        quick.insert(key, key);
        quick_std.insert(key, (key, Instant::now() + hour));
        quick_quanta.insert(key, (key, quanta::Instant::now() + hour));
        cached_store.write().cache_set(key, key);
        poll_once(peers::hit_lru(key));
        poll_once(peers::hit_ttl(key));
        poll_once(peers::hit_lru_moka(key));
        poll_once(peers::hit_cached(key));
    }
    moka_sync.run_pending_tasks();
    poll_once(moka_future.run_pending_tasks());
    let bodies = [
        counter::HIT_LRU,
        counter::HIT_TTL,
        counter::HIT_LRU_MOKA,
        counter::HIT_CACHED,
    ];
    let before = bodies.map(peers::loads);

    let hit_with = |cache: &AsyncCache<u64, u64>, k| {
        poll_until_ready(cache.get_with(k, async { unreachable!("a hit runs no loader") }))
    };
    let peers: Vec<Box<dyn Timed + '_>> = vec![
        peer(QUICK_CACHE, |k| quick.get(&k).unwrap_or(0)),
        peer(QUICK_CACHE_STD_CLOCK, |k| {
            quick_std
                .get(&k)
                .filter(|(_, expires_at)| Instant::now() < *expires_at)
                .map_or(0, |(value, _)| value)
        }),
        peer(QUICK_CACHE_QUANTA, |k| {
            quick_quanta
                .get(&k)
                .filter(|(_, expires_at)| quanta::Instant::now() < *expires_at)
                .map_or(0, |(value, _)| value)
        }),
        peer(MOKA_SYNC, |k| moka_sync.get(&k).unwrap_or(0)),
        peer("moka::future::Cache::get (TinyLFU)", |k| {
            poll_until_ready(moka_future.get(&k)).unwrap_or(0)
        }),
        peer("cached LruCache in a RwLock (#[cached] sync fn)", |k| {
            cached_store.write().cache_get(&k).copied().unwrap_or(0)
        }),
        peer(CACHED_FN, |k| poll_until_ready(peers::hit_cached(k))),
        peer(OURS_GET, |k| ours_quick.get(&k).unwrap_or(0)),
        peer(OURS_GET_TTL, |k| ours_ttl.get(&k).unwrap_or(0)),
        peer(OURS_GET_MOKA, |k| ours_moka.get(&k).unwrap_or(0)),
        peer(OURS_GET_HOOKED, |k| hooked_quick.get(&k).unwrap_or(0)),
        peer(OURS_GET_HOOKED_MOKA, |k| hooked_moka.get(&k).unwrap_or(0)),
        peer("AsyncCache::get_with [quick_cache, default]", |k| {
            hit_with(&ours_quick, k)
        }),
        peer("AsyncCache::get_with [moka]", |k| hit_with(&ours_moka, k)),
        peer(LRU, |k| poll_until_ready(peers::hit_lru(k))),
        peer(TTL, |k| poll_until_ready(peers::hit_ttl(k))),
        peer(LRU_MOKA, |k| poll_until_ready(peers::hit_lru_moka(k))),
    ];
    for peer in &peers {
        peer.check_warm(&lookups);
    }
    // The peers take turns, round by round, so a change in the machine's load falls on all.
    let mut single = vec![Vec::new(); peers.len()];
    for _ in 0..settings.rounds {
        for (peer, samples) in peers.iter().zip(&mut single) {
            samples.push(peer.ns_per_hit(settings.ops, &lookups));
        }
    }
    for (peer, samples) in peers.iter().zip(single) {
        table.push(SINGLE, peer.name(), median(samples), "ns");
    }
    for threads in thread_counts() {
        let mut rates = vec![Vec::new(); peers.len()];
        for _ in 0..settings.rounds {
            for (peer, samples) in peers.iter().zip(&mut rates) {
                samples.push(peer.at_once(settings.ops, &lookups, threads));
            }
        }
        for (peer, samples) in peers.iter().zip(rates) {
            let note = format!("{threads} of {} CPUs", crate::nproc());
            table.push_noted(
                threads_workload(threads),
                peer.name(),
                Some(median(samples)),
                "M/s",
                note,
            );
        }
    }

    assert_eq!(
        before,
        bodies.map(peers::loads),
        "a timed call ran its body: not every call was a hit"
    );
}

/// One peer of the hit workloads: its name and its call (a warm hit on every key), timed in
/// loops generic over the call, so each peer's call is inlined into loops of its own.
trait Timed: Sync {
    fn name(&self) -> &str;
    /// Panics unless every key is a warm hit.
    fn check_warm(&self, keys: &[u64]);
    /// Nanoseconds per call over `ops` calls cycling through `keys`.
    fn ns_per_hit(&self, ops: usize, keys: &[u64]) -> f64;
    /// Millions of calls per second with `threads` threads making `ops` calls each at once,
    /// each over the keys from its own starting point.
    fn at_once(&self, ops: usize, keys: &[u64], threads: usize) -> f64;
}

struct Peer<F> {
    name: &'static str,
    op: F,
}

fn peer<'a, F>(name: &'static str, op: F) -> Box<dyn Timed + 'a>
where
    F: Fn(u64) -> u64 + Sync + 'a,
{
    Box::new(Peer { name, op })
}

impl<F: Fn(u64) -> u64 + Sync> Timed for Peer<F> {
    fn name(&self) -> &str {
        self.name
    }

    fn check_warm(&self, keys: &[u64]) {
        for &key in keys {
            assert_eq!(
                (self.op)(key),
                key,
                "{}: key {key} is not a warm hit",
                self.name
            );
        }
    }

    fn ns_per_hit(&self, ops: usize, keys: &[u64]) -> f64 {
        ns_per_op(1, ops, keys, &self.op)
    }

    fn at_once(&self, ops: usize, keys: &[u64], threads: usize) -> f64 {
        let op = &self.op;
        let start = Instant::now();
        std::thread::scope(|scope| {
            for thread in 0..threads {
                scope.spawn(move || {
                    let offset = thread * keys.len() / threads;
                    let keys = keys[offset..].iter().chain(&keys[..offset]).cycle();
                    for key in keys.take(ops) {
                        std::hint::black_box(op(std::hint::black_box(*key)));
                    }
                });
            }
        });
        (threads * ops) as f64 / start.elapsed().as_secs_f64() / 1e6
    }
}
