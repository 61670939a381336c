use cache_core::async_ttl;

#[async_ttl(time_to_live = 0)]
async fn user(id: u64) -> u64 {
    id
}

#[async_ttl(time_to_live = 0.0000000001)]
async fn tiny(id: u64) -> u64 {
    id
}

fn main() {}
