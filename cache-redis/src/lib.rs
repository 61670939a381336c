//! The fleet tier: caches that stay coherent across every process of a service, on Redis or
//! Valkey.
//!
//! A service running as several processes (replicas, a pool of agent workers) gives each its
//! own in-memory caches. Without a fleet, an invalidation in one process leaves the others
//! serving the old value. With one, every [`AsyncCache`](cache_core::AsyncCache) attached to
//! it, every `#[async_lru]` / `#[async_ttl]` fn that names it, and every global-scope
//! `#[agent_invalidator]` reaches every process, with the guarantee the caches already give
//! in one process: **invalidation wins**.
//!
//! ```
//! use std::time::Duration;
//! use cache_core::AsyncCache;
//! use cache_redis::Fleet;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One per process. No Redis listens on this port: the fleet starts anyway, degraded,
//! // and keeps reconnecting; reads never see a Redis error.
//! let fleet = Fleet::builder("redis://127.0.0.1:1")
//!     .namespace("shop")                        // prefix of every Redis key it uses
//!     .max_staleness(Duration::from_secs(1))    // the bound while coherence is lost
//!     .connect()
//!     .await?;
//! fleet.install(); // for the attributes and agent-cache
//!
//! let users: AsyncCache<u64, String> = AsyncCache::builder()
//!     .maxsize(10_000)
//!     .fleet(fleet.cache("users")) // the name is the cache's identity across processes
//!     .build();
//! let name = users.get_with(7, async { "Ada".to_owned() }).await;
//! assert_eq!(name, "Ada");
//! users.invalidate(&7); // here at once; in every other process within the propagation delay
//! assert!(!fleet.status().is_connected());
//! # Ok(())
//! # }
//! ```
//!
//! Keys cross processes through serde (`K: Serialize + DeserializeOwned` on the fleet path
//! only; see [`cache_core::fleet`] for the encoding, postcard). Values never leave the
//! process.
//!
//! # The promise
//!
//! With **B** the propagation delay while connected: once Redis acknowledged an invalidation,
//! no process serves a value whose load began before it for longer than B. While a process
//! cannot hear the fleet (its connection lost, or PINGs unanswered), it flushes its fleet
//! caches and caps every entry it stores at `max_staleness`; on reconnecting it flushes again.
//! So under any fault, no process serves a value older than the detection time +
//! `max_staleness` past an acknowledged invalidation.
//!
//! Measured on loopback (2 vCPUs; `BENCHMARKS.md` and the tests named below print them):
//!
//! | figure | measured | where |
//! |---|---|---|
//! | B, p50 / p99 over 10,000 invalidations | see `BENCHMARKS.md` (fleet rows) | `cargo run --release -p bench` |
//! | detection of a half-open link, heartbeat 125 ms | 127 ms | `fleet_faults::a_half_open_link_is_found_by_unanswered_pings` |
//! | worst staleness of a process whose link went silent, 3 processes under load | 280 ms | `fleet_processes::under_a_half_open_link_...` |
//! | detection of a killed server or connection | 1.3 to 1.6 ms | `fleet_faults::kill_9_...`, `..._killed_connection_...` |
//!
//! # What happens under each fault
//!
//! | fault | what this process does | what the user gets |
//! |---|---|---|
//! | Redis down at start | `connect` returns after one attempt; degraded, reconnecting | a working local cache; entries live at most `max_staleness`; invalidations queued |
//! | Redis killed, connection killed (`CLIENT KILL`), Redis restarted | the connection's end is seen at once; degraded: flush, cap, queue | the same; on reconnect: flush, then the queue is sent |
//! | half-open link (a peer or router vanished, no FIN) | found by an unanswered PING within two heartbeats | the same, after the detection time |
//! | Redis flushed (`FLUSHALL`), a NULL invalidation | every fleet cache is flushed | a cold cache, never a stale one |
//! | outage longer than the queue (`max_queued`) | the cache with the most queued messages becomes one clear | every other process clears that cache once the link is back |
//! | a key that does not decode (another deploy's key type) | ignored, counted in `fleet_errors` | nothing stale: no entry of this cache can have that key |
//!
//! Reads never fail because of Redis, and nothing waits on it: `get`, `get_with`,
//! `invalidate`, `insert` and `clear` are what they are without a fleet, plus a message
//! queued for the link task. [`Fleet::flush`] and an `#[agent_invalidator]` wait for Redis's
//! acknowledgement, and the invalidator stops waiting as soon as the fleet is degraded (its
//! invalidation is then queued).
//!
//! # How it works
//!
//! Redis's own server-assisted client-side caching carries the invalidations; there is no
//! protocol of ours. Each process holds one RESP3 connection with `CLIENT TRACKING ON BCAST
//! PREFIX <namespace>:i: NOLOOP`, on a thread of its own (so the fleet outlives any runtime
//! the caches are used from). An invalidation is a write under that prefix; Redis pushes the
//! written key's name to every other tracking connection, and the receiving process fences
//! the in-flight loads of the key and removes it, exactly as a local `invalidate` does. The
//! process applies its own invalidation locally first, since its own write's notification
//! arrives after the write's reply (NOLOOP does not even send it).
//!
//! Each marker key names its writer and is set and deleted in one `MULTI`, for two reasons
//! found by testing: in BCAST mode Redis remembers only the last writer of a key per event
//! loop cycle, so two processes invalidating one shared key in the same cycle would hide the
//! first writer's invalidation from the second; and a marker left behind would take memory
//! and, on expiring, send a spurious invalidation.
//!
//! Redis keeps no backlog of invalidations: a connection that drops loses those sent
//! meanwhile. Hence the flush on losing the link and again on regaining it, the cap while
//! degraded, and the PING heartbeat (only an unanswered request reveals a half-open link).
//! Outgoing invalidations wait in a bounded queue, in order, and are sent in pipelines; a
//! failed send puts them back in front.
//!
//! # With the attributes
//!
//! ```
//! use cache_core::{async_lru, async_ttl};
//!
//! #[async_ttl(time_to_live = 60, fleet = "users")]
//! async fn user(id: u64) -> String {
//!     format!("user-{id}") // SELECT ...
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! user(7).await;
//! user::invalidate(7); // reaches the cache "users" in every process
//! # }
//! ```
//!
//! expands as without `fleet`, except that the cache is built with
//! `.fleet(<installed fleet>.cache("users"))` on first use, each key part must also be
//! serde-serializable (a compile error at the argument otherwise), and `f::invalidate` and
//! `f::clear` tell the other processes even in a process that never called `f`. A fn first
//! called before any fleet is installed stays process-local; it says so once in a `tracing`
//! warning and in `f::metrics().fleet`.
//!
//! # With agent-cache
//!
//! After [`Fleet::install`], every global-scope resource invalidation (an
//! `#[agent_invalidator]`, in or outside a session) is published on the channel
//! `agent-cache:resources` and reaches every process: their global entries of that resource
//! and the session-scoped entries of every live session there, hierarchically as locally
//! (`cart` reaches `cart:u1`). Session-scope invalidations stay in their process, as sessions
//! do. An invalidator returns once Redis acknowledged its invalidation, or queued it when
//! Redis cannot be reached. Install the fleet before the first tool call.
//!
//! # Observing it
//!
//! [`Fleet::status`] tells whether the link is up, since when and why not, and counts what
//! was issued, acknowledged, queued, received, flushed and overflowed. Each fleet cache's
//! [`CacheMetrics`](cache_core::CacheMetrics) has `fleet` (its name and link),
//! `remote_invalidations`, `fleet_flushes` and `fleet_errors`; agent-cache's metrics have
//! `remote_invalidations`. A `tracing` event (target `cache_redis`) marks each change of
//! the link's state: `info` when connected, `warn` with the reason when degraded.
//!
//! # Limits
//!
//! - One Redis or Valkey primary (the tracking connection and the writes go to it). Redis
//!   Cluster is not supported.
//! - A name identifies one cache per process: two caches of one name in one process do not
//!   hear each other's invalidations.
//! - `invalidate` with a borrowed form of the key other than the key itself, `str` or `[u8]`
//!   cannot be encoded: it clears the cache across the fleet instead (never stale, counted).
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod fleet;
mod keys;
mod link;
mod outbox;
mod shared;
mod status;
mod tier;

pub use fleet::{Fleet, FleetBuilder, FleetCache, FleetError, SharedFleetCache};
pub use status::{FleetStatus, Link};
