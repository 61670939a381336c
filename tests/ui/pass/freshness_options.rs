//! The freshness options on both attributes, and a recursive fn that loads in the calling task.

use cache_core::{async_lru, async_ttl};

#[derive(Clone, Debug)]
struct Down;

#[async_ttl(time_to_live = 60, refresh_after = 30, stale_on_error = 600, time_to_idle = 0.5)]
async fn rate(pair: String) -> Result<f64, Down> {
    if pair.is_empty() { Err(Down) } else { Ok(1.5) }
}

#[async_lru(maxsize = 16, refresh_after = 1)]
async fn config(name: u64) -> u64 {
    name * 2
}

#[async_lru(maxsize = 16, time_to_idle = 2, stale_on_error = 5)]
async fn session(id: u64) -> Result<u64, Down> {
    Ok(id)
}

#[async_lru(maxsize = 64, detached = false)]
async fn fib(n: u64) -> u64 {
    if n < 2 { n } else { Box::pin(fib(n - 1)).await + Box::pin(fib(n - 2)).await }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(rate("EURUSD".into()).await.unwrap(), 1.5);
    assert_eq!(config(2).await, 4);
    assert_eq!(session(3).await.unwrap(), 3);
    assert_eq!(fib(40).await, 102_334_155);
    assert_eq!(fib::metrics().loads, 41);
}
