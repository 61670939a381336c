use cache_core::async_lru;

#[async_lru(max_size = 10)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
