use cache_core::async_lru;

#[derive(Clone, Hash, PartialEq, Eq)]
struct Region(u8);

#[async_lru(fleet = "users", key = Region(region))]
async fn user(region: u8) -> u8 {
    region
}

fn main() {}
