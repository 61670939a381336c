use cache_core::async_lru;

#[async_lru(refresh_after = 10, detached = false)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
