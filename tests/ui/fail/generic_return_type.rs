use cache_core::async_lru;

#[async_lru(key = ())]
async fn make<T: Default + Clone + Send + Sync + 'static>() -> T {
    T::default()
}

fn main() {}
