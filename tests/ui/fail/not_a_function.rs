use cache_core::async_lru;

#[async_lru]
struct User;

fn main() {}
