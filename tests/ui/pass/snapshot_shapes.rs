//! `snapshot = true` on every key shape it can name: one owned argument, a borrowed one, a
//! tuple, none, a method keyed by its receiver, and a `Result` (through an alias too).

use cache_core::{async_lru, async_ttl};

#[async_lru(snapshot = true)]
async fn one(id: u64) -> String {
    format!("user-{id}")
}

#[async_ttl(time_to_live = 60, snapshot = true)]
async fn borrowed(name: &str, limit: usize) -> Vec<String> {
    (0..limit).map(|i| format!("{name}{i}")).collect()
}

#[async_lru(snapshot = true)]
async fn nothing() -> u64 {
    7
}

#[async_lru(snapshot = true)]
async fn fallible(id: u64) -> std::io::Result<u64> {
    Ok(id)
}

#[derive(Clone, Hash, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Repo(u64);

impl Repo {
    #[async_lru(snapshot = true)]
    async fn order(&self, id: u64) -> Result<u64, String> {
        Ok(self.0 + id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(one(1).await, "user-1");
    assert_eq!(borrowed("a", 2).await.len(), 2);
    assert_eq!(nothing().await, 7);
    assert_eq!(fallible(3).await.unwrap(), 3);
    assert_eq!(Repo(1).order(2).await, Ok(3));
    let mut file = Vec::new();
    assert_eq!(one::snapshot(&mut file).unwrap(), 1);
    assert_eq!(borrowed::snapshot(&mut Vec::new()).unwrap(), 1);
    assert_eq!(nothing::snapshot(&mut Vec::new()).unwrap(), 1);
    assert_eq!(fallible::snapshot(&mut Vec::new()).unwrap(), 1);
    assert_eq!(Repo::order_snapshot(&mut Vec::new()).unwrap(), 1);
    one::clear();
    assert_eq!(one::restore(file.as_slice()).unwrap().restored, 1);
    assert_eq!(one::metrics().size, 1);
}
