//! What every section shares: the cached functions under test, the keys, and the timers.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use cache_core::async_lru;
use cached::macros::cached;

/// Warm entries of the hit workloads (as in `cache-core/benches/hit.rs`).
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

/// Runs `future` to completion with one poll, panicking if it is not ready: on a hit every
/// peer completes on its first poll, so this measures the cache, not an executor.
#[inline]
pub fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("expected to complete on the first poll"),
    }
}

/// Runs `future` to completion, polling with a no-op waker and yielding the thread while it
/// is pending: a peer that takes an async lock can wait for it when two threads hit at once.
/// On its first poll (the single-thread hit path) it costs what [`poll_once`] costs.
#[inline]
pub fn poll_until_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// splitmix64: a fixed, dependency-free source of well-spread numbers.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 10,000 keys in insertion order, and the same keys shuffled, in the order they are read
/// (the sequences of `cache-core/benches/hit.rs` and of `bench/python/bench.py`).
pub fn key_sets() -> (Vec<u64>, Vec<u64>) {
    let mut state = 0x5EED;
    let inserted: Vec<u64> = (0..ENTRIES).map(|_| splitmix64(&mut state)).collect();
    let mut lookups = inserted.clone();
    for i in (1..lookups.len()).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        lookups.swap(i, j);
    }
    (inserted, lookups)
}

/// The median of `samples`.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Nanoseconds per call of `op` over `ops` calls cycling through `keys`, the median of
/// `rounds` rounds.
pub fn ns_per_op<R>(rounds: usize, ops: usize, keys: &[u64], mut op: impl FnMut(u64) -> R) -> f64 {
    let samples = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for key in keys.iter().cycle().take(ops) {
                black_box(op(black_box(*key)));
            }
            start.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    median(samples)
}
