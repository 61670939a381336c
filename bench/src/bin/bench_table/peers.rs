//! What every section shares: the cached functions under test, the keys, and the timers.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use bench::{CpuTimer, median, poll_once, poll_until_ready, splitmix64};
use cache_core::{async_lru, async_ttl};
use cached::macros::cached;

/// Warm entries of the hit workloads (as in `benches/hit.rs`).
pub const ENTRIES: usize = 10_000;

/// Times each loader body ran, by peer.
pub static LOADS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Indexes into [`LOADS`].
pub mod counter {
    pub const HIT_LRU: usize = 0;
    pub const HIT_LRU_MOKA: usize = 1;
    pub const HIT_CACHED: usize = 2;
    pub const MISS: usize = 3;
    pub const HERD: usize = 4;
    pub const STORM: usize = 5;
    pub const HIT_TTL: usize = 6;
}

pub fn loads(counter: usize) -> u64 {
    LOADS[counter].load(Ordering::Relaxed)
}

fn count(counter: usize) {
    LOADS[counter].fetch_add(1, Ordering::Relaxed);
}

// The hit path through each macro: an `async fn(u64) -> u64` caching the identity.

#[async_lru(maxsize = 20_000)]
pub async fn hit_lru(k: u64) -> u64 {
    count(counter::HIT_LRU);
    k
}

#[async_ttl(time_to_live = 3600, maxsize = 20_000)]
pub async fn hit_ttl(k: u64) -> u64 {
    count(counter::HIT_TTL);
    k
}

#[async_lru(maxsize = 20_000, engine = "moka")]
pub async fn hit_lru_moka(k: u64) -> u64 {
    count(counter::HIT_LRU_MOKA);
    k
}

#[cached(max_size = 20_000)]
pub async fn hit_cached(k: u64) -> u64 {
    count(counter::HIT_CACHED);
    k
}

// Misses at capacity: every call a new key, each cache bounded at 10,000.

#[async_lru(maxsize = 10_000)]
pub async fn miss_lru(k: u64) -> u64 {
    count(counter::MISS);
    k
}

#[async_lru(maxsize = 10_000, engine = "moka")]
pub async fn miss_lru_moka(k: u64) -> u64 {
    count(counter::MISS);
    k
}

#[cached(max_size = 10_000)]
pub async fn miss_cached(k: u64) -> u64 {
    count(counter::MISS);
    k
}

// Herds and error storms: the loader takes 1 ms; each herd or storm uses a fresh key.

pub const LOAD_TIME: Duration = Duration::from_millis(1);

#[async_lru(maxsize = 1_000)]
pub async fn herd_lru(k: u64) -> u64 {
    count(counter::HERD);
    tokio::time::sleep(LOAD_TIME).await;
    k
}

#[async_lru(maxsize = 1_000, engine = "moka")]
pub async fn herd_lru_moka(k: u64) -> u64 {
    count(counter::HERD);
    tokio::time::sleep(LOAD_TIME).await;
    k
}

#[cached(max_size = 1_000)]
pub async fn herd_cached(k: u64) -> u64 {
    count(counter::HERD);
    tokio::time::sleep(LOAD_TIME).await;
    k
}

#[async_lru(maxsize = 1_000)]
pub async fn storm_lru(k: u64) -> Result<u64, String> {
    count(counter::STORM);
    tokio::time::sleep(LOAD_TIME).await;
    Err(format!("backend down for {k}"))
}

#[cached(max_size = 1_000)]
pub async fn storm_cached(k: u64) -> Result<u64, String> {
    count(counter::STORM);
    tokio::time::sleep(LOAD_TIME).await;
    Err(format!("backend down for {k}"))
}

/// The 10,000 keys of the hit workloads in insertion order, and the same keys shuffled, in
/// the order they are read (the sequences of the criterion benches and of `python/bench.py`).
pub fn key_sets() -> (Vec<u64>, Vec<u64>) {
    bench::key_sets(ENTRIES)
}

/// Nanoseconds (of this thread's CPU time) per call of `op` over `ops` calls cycling through
/// `keys`, the median of `rounds` rounds.
pub fn ns_per_op<R>(rounds: usize, ops: usize, keys: &[u64], mut op: impl FnMut(u64) -> R) -> f64 {
    let samples = (0..rounds)
        .map(|_| {
            let timer = CpuTimer::start();
            for key in keys.iter().cycle().take(ops) {
                black_box(op(black_box(*key)));
            }
            timer.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    median(samples)
}
