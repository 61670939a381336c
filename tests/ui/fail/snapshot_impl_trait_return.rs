use cache_core::async_lru;

#[async_lru(snapshot = true)]
async fn names(id: u64) -> impl Clone + Send + Sync + 'static {
    vec![format!("user-{id}")]
}

fn main() {}
