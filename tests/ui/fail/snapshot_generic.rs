use cache_core::async_lru;

// A generic function's helpers cannot name its cache's types.
#[async_lru(snapshot = true, key = id)]
async fn user<T: std::fmt::Debug>(id: u64, tag: T) -> String {
    format!("user-{id} {tag:?}")
}

fn main() {}
