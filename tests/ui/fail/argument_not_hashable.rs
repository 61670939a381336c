use cache_core::async_lru;

#[derive(Clone)]
struct Connection;

#[async_lru]
async fn user(conn: Connection, id: u64) -> u64 {
    let _ = conn;
    id
}

fn main() {}
