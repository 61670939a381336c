//! Shared helpers for the workspace's acceptance tests (in `tests/tests/`).
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod fleet;
pub mod proxy;
pub mod redis_server;
pub mod worker;

/// Runs one test on every storage engine.
///
/// Write the test as a function that takes the [`Engine`](cache_core::Engine) to build its
/// caches with, and name it in this macro with the test attribute it needs. The macro adds a
/// module of the same name with one test per engine (`name::quick_cache`, `name::moka`), so a
/// failure names the engine it failed on.
///
/// ```
/// use cache_core::{AsyncCache, Engine};
///
/// tests::test_on_every_engine!(#[tokio::test] async fn a_hit_after_a_load);
/// async fn a_hit_after_a_load(engine: Engine) {
///     let cache = AsyncCache::<u64, u64>::builder().engine(engine).build();
///     assert_eq!(cache.get_with(1, async { 10 }).await, 10);
///     assert_eq!(cache.get(&1), Some(10));
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! test_on_every_engine {
    ($(#[$attr:meta])* async fn $name:ident) => {
        mod $name {
            $(#[$attr])*
            async fn quick_cache() {
                super::$name(::cache_core::Engine::QuickCache).await;
            }

            $(#[$attr])*
            async fn moka() {
                super::$name(::cache_core::Engine::Moka).await;
            }
        }
    };
    ($(#[$attr:meta])* fn $name:ident) => {
        mod $name {
            $(#[$attr])*
            fn quick_cache() {
                super::$name(::cache_core::Engine::QuickCache);
            }

            $(#[$attr])*
            fn moka() {
                super::$name(::cache_core::Engine::Moka);
            }
        }
    };
}

/// Holds a loader until `cache` has counted `n` misses (each caller counts its miss before it
/// joins the load), so that every caller surely finds the load in flight however slowly tasks
/// start. Gives up after 10 s; the test's own asserts then fail.
pub async fn until_misses<K, V>(cache: &cache_core::AsyncCache<K, V>, n: u64)
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    use std::time::Duration;
    use tokio::time::{Instant, sleep};

    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.metrics().misses < n && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
}

/// Awaits every task, failing the test if any of them panicked.
pub async fn join_every<T>(tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("a task panicked"))
        .collect()
}
