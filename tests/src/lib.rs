//! Shared helpers for the workspace's acceptance tests (in `tests/tests/`).
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

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
