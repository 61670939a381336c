use std::fmt::Debug;

use cache_core::async_lru;

#[async_lru]
async fn opaque(n: u64) -> impl Debug + Clone + Send + Sync + 'static {
    vec![n; 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(format!("{:?}", opaque(3).await), "[3, 3]");
    assert_eq!(format!("{:?}", opaque(3).await), "[3, 3]");
    assert_eq!(opaque::metrics().hits, 1);
}
