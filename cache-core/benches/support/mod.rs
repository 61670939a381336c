//! What the criterion benches share: one poll with no runtime, and the keys they read.
// Each bench uses the part of this module it needs.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs `future` to completion with one poll and no runtime, panicking if it is not ready: a
/// hit (and a load that never waits) completes on its first poll, so a bench that polls this
/// way measures the cache, not an executor.
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

/// splitmix64: a fixed, dependency-free source of well-spread keys.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `entries` pseudo-random keys in insertion order, and the same keys in the (shuffled) order
/// they are read in: the same sequences in every bench, so that no peer is timed on one hot key.
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
