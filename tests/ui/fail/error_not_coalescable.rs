use cache_core::async_lru;

#[derive(Debug)]
struct DbError;

#[async_lru]
async fn user(id: u64) -> Result<u64, DbError> {
    if id == 0 { Err(DbError) } else { Ok(id) }
}

fn main() {}
