use cache_core::async_ttl;

#[derive(Clone)]
struct User {
    name: String,
}

// A snapshot writes the values: `User` has no serde impls.
#[async_ttl(time_to_live = 60, snapshot = true)]
async fn user(id: u64) -> User {
    User { name: format!("user-{id}") }
}

fn main() {}
