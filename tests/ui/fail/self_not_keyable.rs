use cache_core::async_lru;

// Without `skip_args = 1`, `self` is part of the key, so `Repo` must be Clone + Hash + Eq.
struct Repo;

impl Repo {
    #[async_lru]
    async fn order(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
