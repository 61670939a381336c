use cache_core::async_ttl;

#[async_ttl(time_to_live = 60, refresh_after = 10)]
async fn user(name: &str) -> String {
    name.to_uppercase()
}

fn main() {}
