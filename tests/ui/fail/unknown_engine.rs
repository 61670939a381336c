use cache_core::{async_lru, async_ttl};

#[async_lru(maxsize = 10, engine = "lru")]
async fn user(id: u64) -> u64 {
    id
}

#[async_ttl(time_to_live = 5, engine = moka)]
async fn order(id: u64) -> u64 {
    id
}

fn main() {}
