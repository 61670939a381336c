use cache_core::async_lru;

#[async_lru]
async fn render<T: std::fmt::Display + Clone + std::hash::Hash + Eq + Send + Sync + 'static>(
    item: T,
) -> String {
    item.to_string()
}

fn main() {}
