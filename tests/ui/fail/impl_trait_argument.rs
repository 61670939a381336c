use cache_core::async_lru;

#[async_lru]
async fn render(item: impl std::fmt::Display) -> String {
    item.to_string()
}

fn main() {}
