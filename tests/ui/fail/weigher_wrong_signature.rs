use cache_core::{RemovalCause, async_ttl};

// Weighs the key's type, not the value's.
fn by_length(_url: &String, page: &String) -> u32 {
    page.len() as u32
}

fn logged(_url: String, _page: Vec<u8>, _cause: RemovalCause) {}

#[async_ttl(time_to_live = 60, max_weight = 1_000_000, weigher = by_length, on_evict = logged)]
async fn page(url: String) -> Vec<u8> {
    url.into_bytes()
}

// A listener of the wrong arity.
fn two_arguments(_url: String, _page: Vec<u8>) {}

#[async_ttl(time_to_live = 60, on_evict = two_arguments)]
async fn other_page(url: String) -> Vec<u8> {
    url.into_bytes()
}

fn main() {}
