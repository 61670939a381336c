use cache_core::async_lru;

#[cfg(any())]
#[async_lru]
async fn gone(id: u64) -> u64 {
    id
}

#[async_lru]
#[cfg(all())]
async fn kept(id: u64) -> u64 {
    id
}

#[async_lru]
#[cfg(any())]
async fn also_gone(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(kept(1).await, 1);
    kept::clear();
}
