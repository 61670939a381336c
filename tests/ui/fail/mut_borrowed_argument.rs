use cache_core::async_lru;

#[async_lru]
async fn bump(counter: &mut u64) -> u64 {
    *counter += 1;
    *counter
}

fn main() {}
