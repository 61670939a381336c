use cache_core::async_lru;

#[async_lru(stale_on_error = 300)]
async fn user(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
