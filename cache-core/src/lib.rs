//! An in-memory async cache for tokio services: the Rust port of Python's `async-cache`, with
//! the defects of the original fixed.
//!
//! [`AsyncCache`] puts a cache in front of a slow database or API:
//!
//! - **single-flight loading**: any number of concurrent misses on one key run the loader
//!   once ([`AsyncCache::get_with`], [`AsyncCache::try_get_with`]);
//! - **DataLoader batching**: misses within a short window go to the backend in one call
//!   ([`AsyncCache::batch_loader`]);
//! - **warmup** of many keys with bounded concurrency ([`AsyncCache::warmup`]);
//! - **per-entry TTL** ([`AsyncCache::insert_with_ttl`]) and an **LRU size bound**;
//! - **freshness** beyond a fixed TTL: refresh-ahead, stale-on-error, time-to-idle and a TTL
//!   chosen from the value ([Freshness](#freshness)), and loaders that may find nothing
//!   ([`AsyncCache::optionally_get_with`]);
//! - **invalidation that wins**: after [`AsyncCache::invalidate`] or [`AsyncCache::clear`]
//!   returns, no call sees a value whose load began before it;
//! - **metrics** ([`AsyncCache::metrics`]), serializable for export;
//! - **fleet coherence**: the same guarantees across every process of a service, through a
//!   fleet tier such as `cache-redis` ([`fleet`]);
//! - **a byte budget** ([`AsyncCacheBuilder::max_weight`], [`AsyncCacheBuilder::weigher`]),
//!   an **eviction listener** ([`AsyncCacheBuilder::on_evict`]), **predicate invalidation**
//!   and **iteration** ([`AsyncCache::invalidate_if`], [`AsyncCache::iter`]), a **warm
//!   restart** ([`AsyncCache::snapshot`], [`AsyncCacheBuilder::restore`]) and, with the
//!   `prometheus` feature, a **Prometheus collector**: see
//!   [Operating a cache](#operating-a-cache).
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use cache_core::AsyncCache;
//!
//! #[derive(Clone, Debug, PartialEq)]
//! struct User { id: u64, name: String }
//!
//! async fn fetch_user(id: u64) -> Result<User, std::io::Error> {
//!     tokio::time::sleep(Duration::from_millis(20)).await; // SELECT ... WHERE id = $1
//!     Ok(User { id, name: format!("user-{id}") })
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users: AsyncCache<u64, User> = AsyncCache::builder()
//!     .maxsize(10_000)
//!     .default_ttl(Duration::from_secs(300))
//!     .build();
//!
//! // 100 concurrent misses on one key: one call to `fetch_user`.
//! let calls = (0..100).map(|_| users.try_get_with(7, fetch_user(7)));
//! let results = futures_util::future::join_all(calls).await;
//! assert!(results.iter().all(|user| user.as_ref().unwrap().name == "user-7"));
//!
//! let m = users.metrics();
//! assert_eq!((m.loads, m.misses, m.size), (1, 100, 1));
//! # Ok(())
//! # }
//! ```
//!
//! # Caching a function
//!
//! [`async_lru`] and [`async_ttl`] cache an `async fn` through an `AsyncCache` of its own, with
//! the same guarantees, and generate `invalidate`, `clear`, `metrics` and `refresh` helpers:
//!
//! ```
//! use cache_core::async_ttl;
//!
//! #[async_ttl(time_to_live = 60, maxsize = 1024)]
//! async fn search(query: &str, limit: usize) -> Vec<String> {
//!     (0..limit).map(|i| format!("{query} #{i}")).collect() // GET /search?q=...
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(search("rust", 2).await.len(), 2);
//! assert_eq!(search("rust", 2).await.len(), 2); // a hit
//! assert_eq!((search::metrics().hits, search::metrics().loads), (1, 1));
//! search::invalidate("rust", 2);
//! # }
//! ```
//!
//! # Guarantees
//!
//! - **Herd**: N concurrent `get_with`/`try_get_with` misses on one key run one loader. Every
//!   caller counts as a miss (as in the Python original); `loads` counts loader executions.
//! - **Errors** are never cached, and waiters of a failed load get that load's error (one
//!   `Arc`): a failing backend is never hit once per waiter.
//! - **Invalidation wins**: a call that starts after `invalidate(k)` or `clear()` returned never
//!   sees a value whose load began before it, and that load never stores its value. Callers
//!   already waiting on it still get it. `insert` fences in-flight loads of its key the same way.
//! - **Cancellation**: dropping the caller that drives a load never strands the others. With
//!   `get_with` (whose loader may borrow from its caller) a waiter restarts the load with its
//!   own loader; with [`get_with_detached`](AsyncCache::get_with_detached) the load runs in a
//!   task of its own and is not even restarted.
//! - **Panics**: a panicking loader never leaves waiters hanging and never poisons the cache.
//!   The panic resumes in the caller that drove the load and every waiter of that load panics
//!   with its message; the next call loads afresh.
//! - **Batching** ([`BatchLoader`]): duplicate keys in a window are sent once; keys already
//!   cached or already loading are not sent; a key missing from the returned map yields
//!   `Ok(None)` and is not cached; a batch error goes to every key of that batch. No batch
//!   can hang because a runtime shut down: every waiter can send its window.
//! - **TTL** is fixed at insert (not sliding). An entry never expires early, and is never
//!   returned more than one tick (1 ms) after it expired: see [Expiry](#expiry).
//! - **Runtimes**: a cache needs no runtime to be built, so it can be a `static`, and it
//!   serves any number of tokio runtimes in turn or at once.
//!
//! # A cache in a `static`
//!
//! ```
//! use std::sync::LazyLock;
//! use cache_core::AsyncCache;
//!
//! static SQUARES: LazyLock<AsyncCache<u64, u64>> =
//!     LazyLock::new(|| AsyncCache::builder().maxsize(1_000).build());
//!
//! for _ in 0..3 {
//!     // A fresh runtime each time, as `#[tokio::test]` makes: the cache outlives them all.
//!     let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//!     assert_eq!(runtime.block_on(SQUARES.get_with(12, async { 144 })), 144);
//! }
//! assert_eq!(SQUARES.metrics().loads, 1);
//! ```
//!
//! # Expiry
//!
//! An entry's expiry is fixed with the OS clock (`std::time::Instant`) when it is stored. A
//! hit on an entry with a TTL checks it against a coarse clock that is never ahead of the OS
//! clock and at most one tick (1 ms) behind it, so an entry never expires before its TTL and
//! is served at most a tick after it. Entries without a TTL never look at a clock.
//!
//! The coarse clock is a word that a thread of the process (`cache-core clock`) refreshes
//! every tick, so a hit reads it with one load instead of asking the OS (which costs a hit
//! about twice what the hit itself costs; `BENCHMARKS.md` has the rows). That thread runs only
//! while hits on entries with a TTL come hard (a thread making 256 of them within a
//! millisecond starts it, and it parks again once none does); meanwhile hits read the OS clock
//! and expiry is exact. A thread that keeps hitting also refreshes the word itself now and
//! then, so a machine too busy to run the clock's thread on time does not stretch the tick.
//! The thread is spawned on first need, serves every cache and runtime of the process, and
//! needs no runtime itself.
//!
//! ```
//! use std::time::Duration;
//! use cache_core::AsyncCache;
//!
//! let cache: AsyncCache<u64, u64> =
//!     AsyncCache::builder().default_ttl(Duration::from_secs(60)).build();
//! cache.insert(1, 10);
//! cache.insert_with_ttl(2, 20, Some(Duration::from_millis(20)));
//! for _ in 0..10_000 {
//!     assert_eq!(cache.get(&1), Some(10)); // within its TTL: never expired early
//! }
//! std::thread::sleep(Duration::from_millis(200)); // far past key 2's TTL
//! assert_eq!(cache.get(&2), None);
//! ```
//!
//! # Operating a cache
//!
//! Options for a cache in production, each off by default; a cache that uses none of them
//! pays nothing for them on a hit, and one that uses them pays nothing either (a hit reads
//! neither the weigher nor the listener).
//!
//! - **A byte budget**: [`max_weight`](AsyncCacheBuilder::max_weight) with a
//!   [`weigher`](AsyncCacheBuilder::weigher) bounds the total weight of the entries instead
//!   of their number. An entry heavier than the bound allows is returned to its callers but
//!   not stored; a zero-weight entry does not count against it.
//! - **An eviction listener**: [`on_evict`](AsyncCacheBuilder::on_evict) hears every entry
//!   that leaves, with its [`RemovalCause`], after every lock is released; one that panics
//!   poisons nothing.
//! - **Scans**: [`invalidate_if`](AsyncCache::invalidate_if) removes what a predicate selects
//!   and fences the loads of those keys; [`iter`](AsyncCache::iter) copies the live entries.
//! - **A warm restart**: [`snapshot`](AsyncCache::snapshot) writes the live entries with the
//!   time each has left, [`restore`](AsyncCacheBuilder::restore) reads them back less the
//!   time the service was down ([`snapshot`](mod@snapshot) has the format and the checks);
//!   `snapshot = true` gives a cached function `f::snapshot` and `f::restore`.
//! - **Prometheus**: with the `prometheus` feature, `prometheus::CacheCollector` exports any
//!   number of caches into a `prometheus-client` registry, read on scrape.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use cache_core::{AsyncCache, RemovalCause};
//!
//! let evicted = Arc::new(Mutex::new(Vec::new()));
//! let log = Arc::clone(&evicted);
//! let pages: AsyncCache<String, Vec<u8>> = AsyncCache::builder()
//!     .max_weight(10_000) // bytes
//!     .weigher(|url: &String, page: &Vec<u8>| (url.len() + page.len()) as u32)
//!     .on_evict(move |url, _page, cause| log.lock().unwrap().push((url, cause)))
//!     .build();
//! for id in 0..10 {
//!     pages.insert(format!("/page/{id}"), vec![0; 3_000]);
//! }
//! assert!(pages.metrics().weight.unwrap() <= 10_000);
//! assert!(evicted.lock().unwrap().iter().all(|(_, cause)| *cause == RemovalCause::Size));
//!
//! pages.invalidate_if(|url, _| url.ends_with('9'));
//! let mut snapshot = Vec::new(); // a file, at shutdown
//! pages.snapshot(&mut snapshot).unwrap();
//! let restarted: AsyncCache<String, Vec<u8>> =
//!     AsyncCache::builder().max_weight(10_000).restore(snapshot.as_slice()).unwrap();
//! assert_eq!(restarted.iter().count(), pages.iter().count());
//! ```
//!
//! # Freshness
//!
//! Options of the builder (and of the attributes, where noted), each with its example:
//!
//! | option | what a read gets | attribute |
//! |---|---|---|
//! | [`refresh_after(d)`](AsyncCacheBuilder::refresh_after) | an entry older than `d` at once, while one background reload (single flight with any other load of the key; discarded if an invalidation came meanwhile; a failure keeps the old value until its TTL) replaces it | `refresh_after = SECS` (every argument owned) |
//! | [`stale_on_error(max)`](AsyncCacheBuilder::stale_on_error) | when a load fails, the value that expired at most `max` ago instead of the error (never after an invalidation or clear) | `stale_on_error = SECS` (a `Result` fn) |
//! | [`time_to_idle(d)`](AsyncCacheBuilder::time_to_idle) | nothing once `d` passed since the entry's last read; with a TTL, the earlier expiry wins | `time_to_idle = SECS` |
//! | [`expire_after(f)`](AsyncCacheBuilder::expire_after) | entries that live the TTL `f(&key, &value)` chose when they were stored | |
//!
//! A cache that sets none of them pays nothing for them on a hit: its entries carry no
//! freshness state and its reads take the path they took before these options existed.
//! [`refreshes`](CacheMetrics::refreshes), `refresh_errors` and
//! [`stale_served`](CacheMetrics::stale_served) count what they did.
//!
//! ```
//! use std::time::Duration;
//! use cache_core::async_ttl;
//!
//! #[derive(Clone, Debug)]
//! struct Down;
//!
//! // Served for up to 10 minutes past its TTL while the exchange is down; reloaded in the
//! // background once 30 s old, so steady readers never wait for the exchange.
//! #[async_ttl(time_to_live = 60, refresh_after = 30, stale_on_error = 600)]
//! async fn rate(pair: String) -> Result<f64, Down> {
//!     Ok(1.08) // GET /rates/{pair}
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() { assert_eq!(rate("EURUSD".into()).await.unwrap(), 1.08); }
//! ```
//!
//! # Across processes: a fleet
//!
//! A service that runs as several processes can make a cache coherent across all of them:
//! [`AsyncCacheBuilder::fleet`] attaches it to a fleet tier (the `cache-redis` crate, on
//! Redis or Valkey), and `fleet = "name"` does the same for the attributes. `invalidate`,
//! `insert` and `clear` then also reach the cache of that name in every other process, where
//! they fence loads in flight as they do here; while the fleet cannot be heard, entries live
//! at most its staleness bound. The seam is [`fleet`]: cache-core has no Redis dependency,
//! and a cache without a fleet pays nothing for it (a fleet cache's hit is a local hit).
//!
//! # Engine
//!
//! Entries live in one of two storage engines, chosen per cache with
//! [`AsyncCacheBuilder::engine`] (or `engine = "..."` on the attributes); every guarantee above
//! holds on both, and the stress tests run on both.
//!
//! - [`Engine::QuickCache`], the default: one [quick_cache](https://docs.rs/quick_cache) policy
//!   for all entries, so the bound is exact. A hit takes a read lock split in eight (each
//!   thread locks a part of its own, so threads hitting one cache at once write no shared
//!   word) and bumps a reference count; each entry carries its expiry, checked on read.
//!   Eviction is CLOCK-Pro: close to LRU, with a small probation ring that keeps one-off keys
//!   from flushing the working set. A cache of fewer than 34 entries (too small for that ring)
//!   keeps its entries in a table of its own that evicts in strict LRU order, as the Python
//!   original does.
//! - [`Engine::Moka`]: [moka](https://docs.rs/moka) in LRU mode, with recency and the bound
//!   applied at each insert, for a strictly least-recently-used order.
//!
//! The default was chosen by measurement (`BENCHMARKS.md` in the repository): on a hit the
//! quick_cache engine is over ten times faster than the moka engine, it holds an entry in
//! about a third of the memory, and its hit ratio on a skewed trace matches moka's TinyLFU.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod batch;
mod builder;
mod cache;
mod clock;
mod error;
mod evict;
pub mod fleet;
mod flight;
mod freshness;
mod load;
mod macro_support;
mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod refresh;
mod scan;
pub mod snapshot;
mod store;
mod warmup;

#[doc(inline)]
pub use cache_macros::{async_lru, async_ttl};

pub use batch::BatchLoader;
pub use builder::AsyncCacheBuilder;
pub use cache::AsyncCache;
pub use error::SharedError;
pub use evict::RemovalCause;
pub use metrics::CacheMetrics;
pub use scan::Iter;
pub use snapshot::{RestoreReport, SnapshotError};
pub use store::Engine;
pub use warmup::WarmupReport;

/// Not public API: what code generated by this workspace's macros reaches.
#[doc(hidden)]
pub mod __private {
    pub use crate::Engine;
    pub use crate::macro_support::{
        CacheSlot, EvictHooks, FleetKey, FleetKeyPart, FleetValue, Freshness, KeyPart,
        borrowed_key_part, build, build_fleet, build_fleet_shared, fleet_borrowed_key_part,
        fleet_key_part, get_uncounted, get_uncounted_then, hit, key_part, unshare,
        with_fleet_coherence,
    };
    pub use crate::macro_support::{OkType, SnapshotPart, restore, snapshot};
}
