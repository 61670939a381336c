//! Helpers of the fleet tests.

use std::time::{Duration, Instant};

use cache_redis::Fleet;

/// The fleet of one simulated process on `url`: namespace `test`, a 500 ms staleness bound
/// (so a heartbeat of 125 ms).
pub async fn connect(url: &str) -> Fleet {
    Fleet::builder(url)
        .namespace("test")
        .max_staleness(Duration::from_millis(500))
        .connect()
        .await
        .expect("a valid URL")
}

/// Polls `done` every 200 µs for up to `limit`; whether it came true.
pub async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
