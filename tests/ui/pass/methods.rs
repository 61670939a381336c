use std::marker::PhantomData;

use cache_core::{async_lru, async_ttl};

#[derive(Clone, Debug, PartialEq)]
struct DbError;

struct Repo;

impl Repo {
    /// Shared across instances.
    #[async_ttl(time_to_live = 30, skip_args = 1)]
    pub async fn order(&self, id: u64) -> Result<String, DbError> {
        Ok(format!("order-{id}"))
    }

    /// An associated function that mentions `Self`.
    #[async_lru]
    async fn make(id: u64) -> Self {
        let _ = id;
        Self
    }
}

impl Clone for Repo {
    fn clone(&self) -> Self {
        Repo
    }
}

/// Keyed by `self`'s value.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Tenant(u64);

impl Tenant {
    #[async_lru]
    async fn quota(&self) -> u64 {
        self.0 * 10
    }
}

/// A generic impl block.
struct Typed<T>(PhantomData<T>);

impl<T: Send + Sync> Typed<T> {
    #[async_lru(skip_args = 1)]
    async fn size(&self, n: usize) -> usize {
        n * std::mem::size_of::<u64>()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Repo.order(1).await, Ok("order-1".into()));
    Repo::order_invalidate(1);
    assert_eq!(Repo.order_refresh(1).await, Ok("order-1".into()));
    Repo::order_clear();
    let _ = Repo::order_metrics();
    let _ = Repo::make(1).await;
    assert_eq!(Tenant(1).quota().await, 10);
    assert_eq!(Tenant(2).quota().await, 20);
    Tenant(1).quota_invalidate();
    assert_eq!(Typed::<u8>(PhantomData).size(2).await, 16);
}
