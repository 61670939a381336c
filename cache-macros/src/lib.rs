//! `#[async_lru]` and `#[async_ttl]`: cache an `async fn` through `cache-core`.
//!
//! Use them through `cache-core` (`use cache_core::{async_lru, async_ttl};`); this crate is
//! an implementation detail and its expansions reach the runtime only through
//! `::cache_core::__private`.
//!
//! # How it expands
//!
//! ```text
//! #[async_lru(maxsize = 128)]
//! pub async fn user(id: u64, name: &str) -> User { body }
//! ```
//!
//! becomes the same function, its signature, attributes and docs untouched, with a body that
//! goes through the function's own cache, plus a helper module of the same name:
//!
//! ```text
//! pub async fn user(id: u64, name: &str) -> User {
//!     let cache = user::__CACHE_SLOT.get_or_init(|| build(128, None, None));
//!     let key = (key_part(&id), borrowed_key_part::<str>(name));   // (u64, String)
//!     cache.get_with(key, async move { body }).await
//! }
//! pub mod user {
//!     pub fn invalidate(id: u64, name: &str);   // one call's entry
//!     pub fn clear();                           // every entry
//!     pub fn metrics() -> CacheMetrics;
//!     pub async fn refresh(id: u64, name: &str) -> User;   // reload, bypassing the cache
//! }
//! ```
//!
//! When the key is one argument, the expansion first looks the call up by that argument as
//! it was passed (`if let Some(value) = hit(cache, name) { return value; }`, with `name: &str`
//! against the `String` key), so a hit never builds the owned key: no `to_owned`, no clone,
//! no allocation. A key of several arguments is a tuple of owned parts, which cannot be
//! looked up by borrowed ones, so such a call builds its key before the lookup.
//!
//! A function returning `Result<T, E>` goes through `try_get_with` and caches only `Ok`; a
//! function whose arguments are all owned goes through the detached form, so its load
//! survives the caller that started it. Methods get the helpers as associated functions
//! (`Self::order_invalidate(..)`, `Self::order_clear()`, `Self::order_metrics()`,
//! `self.order_refresh(..)`), since a module cannot sit inside an `impl`.
//!
//! With `fleet = "users"`, the cache is built with the installed fleet's channel
//! (`build_fleet(128, None, None, "users")`), each key part goes through `fleet_key_part`
//! (which also requires serde `Serialize + DeserializeOwned`, reported at the argument), and
//! `invalidate`/`clear` become `invalidate_in_fleet(&key, "users")`/`clear_in_fleet("users")`,
//! which tell the other processes even before this one built its cache.
//!
//! A function with a receiver or a signature that mentions `Self` gets the method form; any
//! other gets the module form, so an associated function that does neither cannot be cached
//! inside an `impl` (move it out, or give it a `Self` in its signature). Cached functions
//! live at module level: the helper module sees the items of the enclosing module, not the
//! items local to a function body.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod attr;
mod expand;
mod validate;

use proc_macro::TokenStream;

use crate::attr::Kind;

/// Caches an `async fn` in an LRU cache of at most `maxsize` entries (default 128) whose
/// entries never expire.
///
/// # Options
///
/// | option | default | meaning |
/// |---|---|---|
/// | `maxsize = N` | 128 | at most N entries; the least recently used goes first; 0 caches nothing |
/// | `skip_args = N` | 0 | leave the first N parameters (a receiver counts) out of the key |
/// | `key = <expr>` | the arguments | key each call by this expression instead |
/// | `result = <bool>` | `true` for a return type ending in `Result` | cache only `Ok` values |
/// | `detached = <bool>` | `true` when every argument is owned | load in a task of its own; a fn that calls itself needs `detached = false` (a compile error says so) |
/// | `engine = "<name>"` | `"quick_cache"` | the storage engine: `"quick_cache"` or `"moka"` (strict LRU), see `cache_core::Engine` |
/// | `fleet = "<name>"` | none: process-local | coherent across every process of the installed fleet, as the cache `<name>` (`cache_redis::Fleet::install`); each key part must also be serde `Serialize + DeserializeOwned` |
/// | `shared = <bool>` | `false` | with `fleet`: the values live in the fleet's shared tier (Redis) too, so a key is loaded once for the whole fleet; the value type must be serde `Serialize + DeserializeOwned` |
/// | `version = N` | 0 | with `shared = true`: the values' schema version; a value stored by a process of another version is a miss (bump it when the value type changes) |
/// | `snapshot = <bool>` | `false` | generate `f::snapshot(writer)` and `f::restore(reader)`, a warm restart (`cache_core::snapshot`); the key and value types must be serde `Serialize + DeserializeOwned` and nameable from the signature (no generics, `key = ...` or `impl Trait` return) |
/// | `max_weight = N` | none | with `weigher`: the bound is the entries' total weight, in the weigher's units, instead of their number (`cache_core::AsyncCacheBuilder::max_weight`); replaces `maxsize` |
/// | `weigher = <fn>` | none | with `max_weight`: a `fn(&K, &V) -> u32` (a path, or a closure that captures nothing) giving each entry's weight (`cache_core::AsyncCacheBuilder::weigher`); `V` is the `Ok` type of a `Result` fn |
/// | `on_evict = <fn>` | none | a `fn(K, V, cache_core::RemovalCause)` called outside every lock with each entry that leaves (`cache_core::AsyncCacheBuilder::on_evict`) |
/// | `refresh_after = SECS` | none | a hit on an entry older than this returns at once and reloads it in the background (`cache_core::AsyncCacheBuilder::refresh_after`); every argument must be owned |
/// | `stale_on_error = SECS` | none | a failed load (an `Err`) gets the value that expired at most this long ago (`cache_core::AsyncCacheBuilder::stale_on_error`); a `Result` fn whose entries expire |
/// | `time_to_idle = SECS` | none | an entry unread this long expires; with a TTL the earlier wins (`cache_core::AsyncCacheBuilder::time_to_idle`) |
///
/// The key is the owned non-skipped arguments: `u64` as itself, `&str` as `String`, `&T` as
/// `T::Owned`; each must be `Clone + Hash + Eq + Send + Sync + 'static`.
///
/// ```
/// use cache_core::async_lru;
/// # #[derive(Clone, Debug, PartialEq)] struct User { id: u64 }
///
/// #[async_lru(maxsize = 1000)]
/// async fn user(id: u64) -> User {
///     User { id } // SELECT ... WHERE id = $1
/// }
///
/// // The same without the macro:
/// static USERS: std::sync::LazyLock<cache_core::AsyncCache<u64, User>> =
///     std::sync::LazyLock::new(|| cache_core::AsyncCache::builder().maxsize(1000).build());
/// async fn user_by_hand(id: u64) -> User {
///     USERS.get_with_detached(id, async move { User { id } }).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(user(7).await, user_by_hand(7).await);
/// assert_eq!(user(7).await, User { id: 7 }); // a hit
/// assert_eq!(user::metrics().hits, 1);
/// user::invalidate(7);
/// assert_eq!(user::metrics().size, 0);
/// # }
/// ```
///
/// `skip_args` leaves arguments out of the key, here a database handle:
///
/// ```
/// # use cache_core::async_lru;
/// # #[derive(Clone)] struct Db;
/// #[async_lru(skip_args = 1)]
/// async fn name(db: &Db, id: u64) -> String {
///     format!("user-{id}")
/// }
///
/// // The same without the macro: the key is `id` alone.
/// static NAMES: std::sync::LazyLock<cache_core::AsyncCache<u64, String>> =
///     std::sync::LazyLock::new(cache_core::AsyncCache::new);
/// async fn name_by_hand(db: &Db, id: u64) -> String {
///     NAMES.get_with(id, async move { format!("user-{id}") }).await
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(name(&Db, 1).await, name_by_hand(&Db, 1).await);
/// name::invalidate(1); // skipped parameters are not part of `invalidate`
/// # }
/// ```
///
/// `snapshot = true` adds a warm restart: `snapshot` writes the live entries with the time each
/// has left, `restore` reads them back in the next process (less the time between):
///
/// ```
/// # use cache_core::async_lru;
/// #[async_lru(maxsize = 1000, snapshot = true)]
/// async fn user(id: u64) -> String {
///     format!("user-{id}") // SELECT ... WHERE id = $1
/// }
///
/// // The same without the macro:
/// static USERS: std::sync::LazyLock<cache_core::AsyncCache<u64, String>> =
///     std::sync::LazyLock::new(|| cache_core::AsyncCache::builder().maxsize(1000).build());
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// user(1).await;
/// USERS.get_with(1, async { format!("user-1") }).await;
/// let (mut file, mut by_hand) = (Vec::new(), Vec::new()); // files, at shutdown
/// assert_eq!(user::snapshot(&mut file).unwrap(), 1);
/// assert_eq!(USERS.snapshot(&mut by_hand).unwrap(), 1);
/// // The next process, at start:
/// user::clear();
/// assert_eq!(user::restore(file.as_slice()).unwrap().restored, 1);
/// assert_eq!(USERS.restore_from(by_hand.as_slice()).unwrap().skipped, 1); // live: kept
/// assert_eq!(user::metrics().size, 1);
/// # }
/// ```
///
/// `key = <expr>` keys each call by an expression of the arguments (it must not move them):
///
/// ```
/// # use cache_core::async_lru;
/// #[async_lru(key = query.trim().to_lowercase())]
/// async fn search(query: &str) -> Vec<String> {
///     vec![format!("results for {query}")]
/// }
///
/// // The same without the macro:
/// static SEARCHES: std::sync::LazyLock<cache_core::AsyncCache<String, Vec<String>>> =
///     std::sync::LazyLock::new(cache_core::AsyncCache::new);
/// async fn search_by_hand(query: &str) -> Vec<String> {
///     let key = query.trim().to_lowercase();
///     SEARCHES.get_with(key, async move { vec![format!("results for {query}")] }).await
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(search("Rust").await, search("  rust ").await); // one entry
/// assert_eq!(search::metrics().loads, 1);
/// # assert_eq!(search_by_hand("Rust").await.len(), 1);
/// # }
/// ```
///
/// `Result` returns cache only `Ok`. The error reaches the caller and every caller coalesced
/// with it (one load, so a failing backend is not hit once per waiter), so it must be
/// `Clone`; a caller that was alone gets the error itself, uncloned. With `result = false`
/// the whole `Result`, errors included, is cached like any value.
///
/// ```
/// # use cache_core::async_lru;
/// #[derive(Clone, Debug, PartialEq)]
/// struct NotFound;
///
/// #[async_lru]
/// async fn price(sku: u64) -> Result<u64, NotFound> {
///     if sku == 0 { Err(NotFound) } else { Ok(sku * 100) }
/// }
///
/// // The same without the macro:
/// static PRICES: std::sync::LazyLock<cache_core::AsyncCache<u64, u64>> =
///     std::sync::LazyLock::new(cache_core::AsyncCache::new);
/// async fn price_by_hand(sku: u64) -> Result<u64, NotFound> {
///     PRICES
///         .try_get_with_detached(sku, async move { if sku == 0 { Err(NotFound) } else { Ok(sku * 100) } })
///         .await
///         .map_err(|shared| (*shared).clone())
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(price(0).await, Err(NotFound));
/// assert_eq!(price(0).await, price_by_hand(0).await);
/// assert_eq!(price::metrics().size, 0); // errors are not cached
/// # }
/// ```
///
/// `detached = false` keeps the load in the calling task even when every argument is owned,
/// for a body that is not `Send`:
///
/// ```
/// # use cache_core::async_lru;
/// #[async_lru(detached = false)]
/// async fn local(n: u64) -> u64 {
///     let not_send = std::rc::Rc::new(n);
///     tokio::task::yield_now().await;
///     *not_send * 2
/// }
///
/// // The same without the macro: `get_with`, not `get_with_detached`.
/// static LOCAL: std::sync::LazyLock<cache_core::AsyncCache<u64, u64>> =
///     std::sync::LazyLock::new(cache_core::AsyncCache::new);
/// async fn local_by_hand(n: u64) -> u64 {
///     LOCAL.get_with(n, async move { n * 2 }).await
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(local(2).await, local_by_hand(2).await);
/// # }
/// ```
///
/// `engine = "moka"` stores the entries in moka, whose eviction order is strictly
/// least-recently-used; the default `"quick_cache"` reads faster and uses less memory:
///
/// ```
/// # use cache_core::async_lru;
/// #[async_lru(maxsize = 2, engine = "moka")]
/// async fn strict(n: u64) -> u64 {
///     n * 2
/// }
///
/// // The same without the macro:
/// static STRICT: std::sync::LazyLock<cache_core::AsyncCache<u64, u64>> =
///     std::sync::LazyLock::new(|| {
///         cache_core::AsyncCache::builder()
///             .maxsize(2)
///             .engine(cache_core::Engine::Moka)
///             .build()
///     });
/// async fn strict_by_hand(n: u64) -> u64 {
///     STRICT.get_with_detached(n, async move { n * 2 }).await
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(strict(1).await, strict_by_hand(1).await);
/// # }
/// ```
///
/// `fleet = "users"` makes the cache coherent across every process of the fleet installed
/// with `cache_redis::Fleet::install` (see the `cache-redis` crate): a call of `invalidate`
/// or `clear` in one process reaches the cache `users` in all of them, fencing their loads
/// in flight, and theirs reach it. Without an installed fleet (as here) it stays
/// process-local, says so once in a `tracing` warning, and reports it in `metrics().fleet`.
///
/// ```
/// # use cache_core::async_lru;
/// # use cache_core::fleet::FleetLink;
/// #[async_lru(maxsize = 1000, fleet = "users")]
/// async fn user(id: u64) -> String {
///     format!("user-{id}")
/// }
///
/// // The same without the macro: built on first use, from the fleet installed by then.
/// static USERS: std::sync::LazyLock<cache_core::AsyncCache<u64, String>> =
///     std::sync::LazyLock::new(|| {
///         let builder = cache_core::AsyncCache::builder().maxsize(1000);
///         match cache_core::fleet::installed() {
///             Some(fleet) => builder.fleet(fleet.channel("users")).build(),
///             None => builder.build(),
///         }
///     });
/// async fn user_by_hand(id: u64) -> String {
///     USERS.get_with_detached(id, async move { format!("user-{id}") }).await
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(user(1).await, user_by_hand(1).await);
/// user::invalidate(1); // every process, with a fleet installed
/// assert_eq!(user::metrics().fleet.map(|f| f.link), Some(FleetLink::NotInstalled));
/// # }
/// ```
#[proc_macro_attribute]
pub fn async_lru(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(Kind::Lru, args.into(), item.into()).into()
}

/// Caches an `async fn` for `time_to_live` seconds (default 60; an integer or a float) in a
/// cache of at most `maxsize` entries (default 1024).
///
/// Takes every option of [`async_lru`](macro@async_lru) plus `time_to_live`. An entry expires
/// `time_to_live` after it was stored; reads do not extend it.
///
/// ```
/// use cache_core::async_ttl;
///
/// #[async_ttl(time_to_live = 0.5, maxsize = 100)]
/// async fn rate(pair: &str) -> f64 {
///     1.08 // GET /rates/{pair}
/// }
///
/// // The same without the macro:
/// static RATES: std::sync::LazyLock<cache_core::AsyncCache<String, f64>> =
///     std::sync::LazyLock::new(|| {
///         cache_core::AsyncCache::builder()
///             .maxsize(100)
///             .default_ttl(std::time::Duration::from_millis(500))
///             .build()
///     });
/// async fn rate_by_hand(pair: &str) -> f64 {
///     RATES.get_with(pair.to_owned(), async move { 1.08 }).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(rate("EURUSD").await, rate_by_hand("EURUSD").await);
/// assert_eq!(rate::metrics().size, 1);
/// tokio::time::sleep(std::time::Duration::from_millis(700)).await;
/// assert_eq!(rate("EURUSD").await, 1.08); // expired: loaded again
/// assert_eq!(rate::metrics().loads, 2);
/// # }
/// ```
///
/// On a method, `skip_args = 1` leaves `self` out of the key, so every instance shares one
/// cache (as in the Python original). Without it, `self` is keyed by value, which needs
/// `Self: Clone + Hash + Eq`; otherwise the error says so. The helpers are associated
/// functions named after the method:
///
/// ```
/// # use cache_core::async_ttl;
/// #[derive(Clone, Debug, PartialEq)]
/// struct DbError;
/// struct Repo;
///
/// impl Repo {
///     #[async_ttl(time_to_live = 30, skip_args = 1)]
///     async fn order(&self, id: u64) -> Result<String, DbError> {
///         Ok(format!("order-{id}"))
///     }
/// }
///
/// // The same without the macro:
/// static ORDERS: std::sync::LazyLock<cache_core::AsyncCache<u64, String>> =
///     std::sync::LazyLock::new(|| {
///         cache_core::AsyncCache::builder()
///             .maxsize(1024)
///             .default_ttl(std::time::Duration::from_secs(30))
///             .build()
///     });
/// impl Repo {
///     async fn order_by_hand(&self, id: u64) -> Result<String, DbError> {
///         ORDERS
///             .try_get_with(id, async move { Ok(format!("order-{id}")) })
///             .await
///             .map_err(|shared: std::sync::Arc<DbError>| (*shared).clone())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (a, b) = (Repo, Repo);
/// assert_eq!(a.order(1).await, b.order_by_hand(1).await);
/// assert_eq!(b.order(1).await, Ok("order-1".to_string())); // shared across instances
/// assert_eq!(Repo::order_metrics().hits, 1);
/// Repo::order_invalidate(1);
/// assert_eq!(a.order_refresh(1).await, Ok("order-1".to_string()));
/// Repo::order_clear();
/// # }
/// ```
#[proc_macro_attribute]
pub fn async_ttl(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(Kind::Ttl, args.into(), item.into()).into()
}
