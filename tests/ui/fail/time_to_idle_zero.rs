use cache_core::async_lru;

#[async_lru(time_to_idle = 0)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
