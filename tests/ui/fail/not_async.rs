use cache_core::async_lru;

#[async_lru]
fn user(id: u64) -> u64 {
    id
}

fn main() {
    // The item is still emitted as written, so callers keep compiling.
    let _ = user(1);
}
