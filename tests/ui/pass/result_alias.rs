use cache_core::{async_lru, async_ttl};

#[derive(Clone, Debug)]
struct AppError;

type Fallible<T> = Result<T, AppError>;

#[async_lru(result = true)]
async fn fallible(n: u64) -> Fallible<u64> {
    if n == 0 { Err(AppError) } else { Ok(n) }
}

#[async_ttl(time_to_live = 5)]
async fn read_len(path: String) -> std::io::Result<usize> {
    Ok(path.len())
}

#[async_lru]
async fn boxed(n: u64) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    if n == 0 { Err("zero".into()) } else { Ok(n) }
}

#[async_lru(result = false)]
async fn whole(n: u64) -> Result<u64, String> {
    if n == 0 { Err("zero".into()) } else { Ok(n) }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert!(fallible(0).await.is_err());
    assert_eq!(fallible::metrics().size, 0);
    assert_eq!(read_len("abc".into()).await.unwrap(), 3);
    assert!(boxed(0).await.is_err());
    assert!(whole(0).await.is_err());
    assert_eq!(whole::metrics().size, 1); // the error itself is cached
}
