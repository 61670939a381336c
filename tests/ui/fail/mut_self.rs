use cache_core::async_lru;

struct Repo;

impl Repo {
    #[async_lru]
    async fn order(&mut self, id: u64) -> u64 {
        id
    }
}

fn main() {}
