use cache_core::{async_lru, async_ttl};

#[async_lru]
async fn count<'a>(text: &'a str, bytes: &'a [u8]) -> usize {
    text.len() + bytes.len()
}

#[async_ttl(time_to_live = 60)]
async fn first_word(text: &str) -> String {
    text.split_whitespace().next().unwrap_or_default().to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let owned = String::from("hello world");
    assert_eq!(count(&owned, b"ab").await, 13);
    assert_eq!(count("hello world", &[97, 98]).await, 13); // the same key, borrowed from elsewhere
    assert_eq!(count::metrics().hits, 1);
    assert_eq!(first_word(&owned).await, "hello");
    count::invalidate(&owned, b"ab");
    first_word::invalidate("hello world");
}
