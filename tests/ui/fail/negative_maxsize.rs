use cache_core::async_lru;

#[async_lru(maxsize = -1)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
