//! What the benchmarks of the workspace share: the keys they read, one poll with no runtime,
//! medians, and a global allocator that counts live bytes.
//!
//! The benchmarks themselves are the `bench_table` runner (`src/bin/bench_table/`, every
//! workload against its peers in one run: `cargo run --release -p bench`), the criterion
//! suites (`benches/`: `cargo bench -p bench -- --noplot`) and the Python original's workloads
//! (`python/`, which the runner calls). See the workspace's `BENCHMARKS.md`.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod alloc;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs `future` to completion with one poll and no runtime, panicking if it is not ready: a
/// hit (and a load that never waits) completes on its first poll, so a benchmark that polls
/// this way measures the cache, not an executor.
#[inline]
pub fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the call must complete on its first poll"),
    }
}

/// Runs `future` to completion, polling with a no-op waker and yielding the thread while it
/// is pending: a peer that takes an async lock can wait for it when threads hit at once. On
/// its first poll (the single-thread hit path) it costs what [`poll_once`] costs.
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

/// `entries` pseudo-random keys in insertion order, and the same keys in the (shuffled) order
/// they are read in: the same sequences in every benchmark (and in `python/bench.py`), so that
/// no peer is timed on one hot key.
pub fn key_sets(entries: usize) -> (Vec<u64>, Vec<u64>) {
    let mut state = 0x5EED;
    let inserted: Vec<u64> = (0..entries).map(|_| splitmix64(&mut state)).collect();
    let mut lookups = inserted.clone();
    for i in (1..lookups.len()).rev() {
        #[allow(clippy::cast_possible_truncation)] // `i` < `entries`
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        lookups.swap(i, j);
    }
    (inserted, lookups)
}

/// A stopwatch of the calling thread's CPU time, for the single-thread timings: the machine a
/// benchmark runs on is often shared, and time the OS gives other processes while this thread
/// waits for a CPU says nothing about the code timed. (Where threads run at once, and where a
/// workload sleeps, the rows are timed by the wall clock instead.)
pub struct CpuTimer(std::time::Duration);

impl CpuTimer {
    /// Starts timing.
    pub fn start() -> Self {
        CpuTimer(thread_cpu_time())
    }

    /// CPU time this thread spent since [`start`](Self::start).
    pub fn elapsed(&self) -> std::time::Duration {
        thread_cpu_time().saturating_sub(self.0)
    }
}

#[cfg(unix)]
fn thread_cpu_time() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the thread's CPU-time clock is unavailable");
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    std::time::Duration::new(secs, nanos)
}

/// Without a thread CPU-time clock: the wall clock since the first call.
#[cfg(not(unix))]
fn thread_cpu_time() -> std::time::Duration {
    static ORIGIN: std::sync::LazyLock<std::time::Instant> =
        std::sync::LazyLock::new(std::time::Instant::now);
    ORIGIN.elapsed()
}

/// The median of `samples` (the upper one of an even count).
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
