use cache_core::async_lru;

#[async_lru(maxsize = 64)]
async fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        Box::pin(fib(n - 1)).await + Box::pin(fib(n - 2)).await
    }
}

fn main() {}
