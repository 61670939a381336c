use cache_core::async_lru;

fn page_bytes(_url: &String, page: &Vec<u8>) -> u32 {
    page.len() as u32
}

// A bound in weight without a weigher.
#[async_lru(max_weight = 1_000_000)]
async fn without_weigher(url: String) -> Vec<u8> {
    url.into_bytes()
}

// A weigher without the bound it weighs against.
#[async_lru(weigher = page_bytes)]
async fn without_bound(url: String) -> Vec<u8> {
    url.into_bytes()
}

// Both bounds.
#[async_lru(maxsize = 100, max_weight = 1_000_000, weigher = page_bytes)]
async fn both_bounds(url: String) -> Vec<u8> {
    url.into_bytes()
}

fn main() {}
