use cache_core::async_lru;

// A type error in the body points at the body, not at the expansion.
#[async_lru]
async fn user(id: u64) -> u64 {
    if id == 0 {
        return "zero";
    }
    id
}

fn main() {}
