use cache_core::async_ttl;

#[async_ttl(time_to_live = 60, stale_on_error = 300)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
