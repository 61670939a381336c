use cache_core::async_ttl;

#[async_ttl(time_to_live = 60, shared = true)]
async fn user(id: u64) -> String {
    format!("user-{id}")
}

fn main() {}
