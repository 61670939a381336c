use std::fmt::Display;

use cache_core::async_lru;

#[async_lru(key = item.to_string())]
async fn render<T>(item: T) -> String
where
    T: Display + Send,
{
    format!("<{item}>")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(render(1).await, "<1>");
    assert_eq!(render("1").await, "<1>"); // same key, another instantiation
    assert_eq!(render::metrics().loads, 1);
    render::invalidate(1);
}
