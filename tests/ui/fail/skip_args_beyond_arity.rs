use cache_core::async_lru;

#[async_lru(skip_args = 3)]
async fn user(db: &str, id: u64) -> u64 {
    let _ = db;
    id
}

fn main() {}
