use cache_core::async_lru;

#[async_lru(detached = true)]
async fn user(name: &str) -> String {
    name.to_uppercase()
}

fn main() {}
