use cache_core::async_lru;

#[async_lru(snapshot = "yes")]
async fn user(id: u64) -> String {
    format!("user-{id}")
}

fn main() {}
