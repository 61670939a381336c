use cache_core::async_lru;

#[async_lru(max_bytes = 1_000_000)]
async fn page(url: String) -> Vec<u8> {
    url.into_bytes()
}

#[async_lru(eviction_listener = drop)]
async fn other(url: String) -> Vec<u8> {
    url.into_bytes()
}

fn main() {}
