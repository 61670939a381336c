use cache_core::async_ttl;

#[async_ttl(time_to_live = -5)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
