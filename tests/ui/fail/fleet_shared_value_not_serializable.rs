use cache_core::async_lru;

#[derive(Clone)]
struct Connection;

// A shared cache's values live in Redis: `Connection` cannot be serialized.
#[async_lru(fleet = "connections", shared = true)]
async fn connection(id: u64) -> Connection {
    let _ = id;
    Connection
}

fn main() {}
