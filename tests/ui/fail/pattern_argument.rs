use cache_core::async_lru;

#[async_lru]
async fn sum((a, b): (u64, u64)) -> u64 {
    a + b
}

fn main() {}
