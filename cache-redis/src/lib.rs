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
//! process, unless the cache is [shared](#shared-l2-one-load-per-key-for-the-fleet).
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
//! | B, p50 / p99 over 10,000 invalidations, two processes | 31.8 µs / 110 µs | `cargo run --release -p bench` (`BENCHMARKS.md`, fleet rows) |
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
//! The link also subscribes to `<namespace>:filled` (a shared cache's values arriving), so
//! Redis lists it as a pub/sub client (`CLIENT LIST` flags `P`; `CLIENT KILL TYPE pubsub`
//! reaches it), under `client-output-buffer-limit pubsub`: a process too slow to read its
//! invalidations is disconnected by Redis, and then flushes and reconnects like any other.
//!
//! Redis keeps no backlog of invalidations: a connection that drops loses those sent
//! meanwhile. Hence the flush on losing the link and again on regaining it, the cap while
//! degraded, and the PING heartbeat (only an unanswered request reveals a half-open link).
//! Outgoing invalidations wait in a bounded queue, in order, and are sent in pipelines; a
//! failed send puts them back in front.
//!
//! # Shared L2: one load per key for the fleet
//!
//! With coherence alone, eight replicas still load a cold key eight times, and a restarted
//! one starts cold. [`FleetCache::shared`] also keeps the values in Redis (`V: Serialize +
//! DeserializeOwned` too), and `shared = true` does the same on `#[async_lru]`,
//! `#[async_ttl]` and `#[agent_cache]`:
//!
//! ```
//! # use std::time::Duration;
//! # use cache_core::AsyncCache;
//! # use cache_redis::Fleet;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let fleet = Fleet::builder("redis://127.0.0.1:1").connect().await?;
//! let users: AsyncCache<u64, String> = AsyncCache::builder()
//!     .default_ttl(Duration::from_secs(300))  // also the values' TTL in Redis
//!     .fleet(
//!         fleet.cache("users").shared()
//!             .version(2)                       // the values' schema version
//!             .lease(Duration::from_secs(5))    // a leader that dies mid-load is replaced after it
//!             .timeout(Duration::from_millis(200)), // the most one Redis request adds to a call
//!     )
//!     .build();
//! // Redis is absent here: the call loads locally, as a cache without a fleet would.
//! assert_eq!(users.get_with(7, async { "Ada".to_owned() }).await, "Ada");
//! # Ok(())
//! # }
//! ```
//!
//! On a local miss (the local single flight has already made one caller per process the
//! leader of the key, so a process sends one request per key, not one per caller):
//!
//! 1. the value is read from Redis, in one round trip of plain reads (`MGET` of the cache's
//!    epoch and the value, `PTTL`): its remaining TTL becomes the local TTL;
//! 2. without one, a Lua script takes the key's fleet-wide lease (`SET NX PX` with a token)
//!    and the key's version; one process in the whole fleet runs the loader;
//! 3. the others wait for its value, woken by a `PUBLISH` when it is stored (not polling),
//!    and read it;
//! 4. the value is stored, with the entry's TTL, by a script that compares the version the
//!    lease was taken at: an invalidation anywhere since (which moved the version and deleted
//!    the value, in one `MULTI` with its marker) makes the store a no-op, so a slow load can
//!    never put back what an invalidation removed;
//! 5. a loader error reaches that process's callers as without a fleet, releases the lease
//!    and wakes the waiters, one of which (not all) takes the lease next; a leader that dies
//!    lets its lease expire, and a waiter loads.
//!
//! Batch loaders read a window's keys in one round trip (`MGET`), send the batch function
//! only the keys Redis lacked, and write those back in one pipeline; `warmup` reports keys
//! already in Redis as skipped. A value that does not decode (its type changed between
//! deploys, or it was stored under another schema `version`) is a miss, counted in
//! `decode_errors`, and overwritten; a value over `max_value_bytes` (default 1 MiB) stays
//! local, counted in `l2_oversize`. Every request has a timeout (200 ms by default): a slow
//! or absent Redis makes the call load locally, counted in `fleet_errors`, and never adds
//! more than that. Requests go through a connection driven by the calling thread's runtime,
//! as a redis-rs user's own would, so they never wait for another thread to be scheduled.
//!
//! For `#[agent_cache(shared = true)]`, a result is keyed by its arguments and the
//! fleet-wide version of its resources, kept in Redis by the resource invalidations (the
//! same hierarchy as in a process: `cart` moves every `cart:...`, `cart:u1` moves `cart`),
//! so a result cached by one process is reused by another only while none of its resources
//! changed anywhere.
//!
//! Every process must use a shared cache's name as shared: a process that invalidates it
//! through a plain [`FleetCache`] tells the others but leaves the value in Redis. (A cached
//! fn with `shared = true` is shared in every process that has it, called or not.)
//!
//! Values are encoded with postcard, chosen by measurement (`BENCHMARKS.md`, the runner's
//! codec rows: a user record of nine fields takes 79 bytes in postcard, 85 in MessagePack,
//! 86 in bitcode and 210 in JSON, and postcard was among the fastest to encode and decode;
//! bincode is unmaintained since 2025-12). Plug in another with
//! [`SharedFleetCache::codec`] and a [`ValueCodec`].
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
//! - A shared key's version lives `version_ttl` (default 1 hour) after its last
//!   invalidation: a load that began before an invalidation and takes longer than that could
//!   store its value. Resource versions never expire (one small key per resource path ever
//!   invalidated).
//! - A name identifies one cache per process: two caches of one name in one process do not
//!   hear each other's invalidations.
//! - `invalidate` with a borrowed form of the key other than the key itself, `str` or `[u8]`
//!   cannot be encoded: it clears the cache across the fleet instead (never stale, counted).
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod fleet;
mod keys;
mod link;
mod outbox;
mod resources;
mod shared;
mod status;
mod tier;
mod waiters;

#[doc(no_inline)]
pub use cache_core::fleet::{Postcard, ValueCodec};
pub use fleet::{Fleet, FleetBuilder, FleetCache, FleetError, SharedFleetCache};
pub use status::{FleetStatus, Link};
