// Local items that shadow what an expansion might name: it must use absolute paths only.
#![allow(dead_code, non_camel_case_types)]

use cache_core::{async_lru, async_ttl};

mod core {}
mod std {}
mod cache_core_shadow {}
struct Arc;
struct Duration;
struct Option;
struct LazyLock;
struct Box;
fn build() {}
fn key_part() {}
fn invalidate() {}
fn clear() {}
fn metrics() {}
fn refresh() {}
const cache: u8 = 0;
const key: u8 = 0;

#[async_lru]
async fn user(id: u64, name: &str) -> ::std::string::String {
    ::std::format!("{id}-{name}")
}

#[async_ttl(time_to_live = 1.5)]
async fn checked(id: u64) -> ::core::result::Result<u64, ::std::string::String> {
    if id == 0 { ::core::result::Result::Err("zero".into()) } else { ::core::result::Result::Ok(id) }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(user(1, "a").await, "1-a");
    assert!(checked(0).await.is_err());
    user::invalidate(1, "a");
    let _ = user::metrics();
    checked::clear();
}
