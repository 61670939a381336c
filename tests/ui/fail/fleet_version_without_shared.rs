use cache_core::async_lru;

#[async_lru(fleet = "users", version = 2)]
async fn user(id: u64) -> String {
    format!("user-{id}")
}

fn main() {}
