use cache_core::async_ttl;

#[async_ttl(refresh_after = "10s")]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
