//! Caching for AI agent tools: cached reads tagged by resource, invalidation when a mutating
//! tool runs, caches scoped per agent session, and detection of runaway tool loops.
//!
//! LLM agents call tools. Read tools hit the same databases and APIs again and again,
//! mutating tools make those reads stale, and confused agents loop. This crate handles all
//! three with two attributes and a session:
//!
//! ```
//! use agent_cache::{AgentCacheSession, OnLoop, agent_cache, agent_invalidator};
//!
//! #[derive(Clone, Debug, PartialEq)]
//! struct Cart { items: Vec<String> }
//! #[derive(Clone, Debug)]
//! struct ShopError;
//!
//! #[agent_cache(resource = "cart:{user_id}", ttl = 120)]
//! async fn get_cart(user_id: &str) -> Cart {
//!     Cart { items: vec![] } // SELECT ... FROM carts WHERE user_id = $1
//! }
//!
//! #[agent_invalidator(resource = "cart:{user_id}")]
//! async fn add_to_cart(user_id: &str, item: &str) -> Result<(), ShopError> {
//!     Ok(()) // INSERT INTO cart_items ...
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let session = AgentCacheSession::builder().on_loop(OnLoop::Raise).build();
//! session
//!     .run(async {
//!         get_cart("u1").await;                    // fetched
//!         get_cart("u1").await;                    // a hit
//!         add_to_cart("u1", "laptop").await.unwrap(); // invalidates u1's cart only
//!         get_cart("u1").await;                    // fetched again: never stale
//!     })
//!     .await
//!     .unwrap();
//! let m = session.metrics();
//! assert_eq!((m.hits, m.misses, m.invalidations), (1, 2, 1));
//! # }
//! ```
//!
//! # Reads: `#[agent_cache]`
//!
//! `#[agent_cache(resource = ..., scope = "global" | "session", ttl = SECS)]` caches a read
//! tool like `#[async_lru]` (one load per arguments for any number of concurrent callers,
//! only `Ok` cached for a `Result`), keyed by the tool and its arguments and tagged with its
//! resources. Options: `resource` (required: a string or an array of strings), `scope`
//! (default `"global"`), `ttl` (seconds, integer or float; default: never expire),
//! `maxsize` (default 1024), `skip_args`, `key`, `result`, and `shared = true` (with an
//! installed fleet: results live in its shared tier too, reused by every process while none
//! of their resources changed; see [Across processes](#across-processes)).
//!
//! # Writes: `#[agent_invalidator]`
//!
//! `#[agent_invalidator(resource = ..., scope = ...)]` invalidates every entry tagged with
//! any of its resources, in its scope, immediately before the mutation runs and again after
//! it returns, so no read that overlapped the mutation stays cached. The mutation's result
//! or error is returned unchanged. Invalidation costs O(1) in the number of cached entries:
//! each resource has a generation that is part of every dependent entry's key.
//!
//! Reads and writes alike return `Send` futures (given `Send` arguments and output), so tools
//! can be awaited in spawned tasks and web handlers:
//!
//! ```
//! # use agent_cache::{agent_cache, agent_invalidator};
//! #[agent_cache(resource = "stock")]
//! async fn check_stock(sku: &str) -> u64 { 7 }
//! #[agent_invalidator(resource = "stock")]
//! async fn charge(order: &str, amount: f64) -> Result<(), String> { Ok(()) }
//!
//! fn assert_send<T: Send>(_: T) {}
//! assert_send(check_stock("SKU-1"));
//! assert_send(charge("order-1", 99.99));
//! ```
//!
//! # Resources
//!
//! A resource may name parameters in braces (`"cart:{user_id}"`), so that a write reaches
//! only that instance; a placeholder that names no parameter is a compile error. Resources
//! are hierarchical on `:`: invalidating `cart` reaches `cart:u1` and every other
//! `cart:...` entry; invalidating `cart:u1` reaches `cart:u1` and `cart:u1:...`, not
//! `cart:u2`. It also reaches reads tagged with an ancestor, such as `cart`: such a read
//! covers every cart, `u1`'s included, so keeping it would serve stale data.
//!
//! # Scopes
//!
//! - `scope = "global"` (default): one cache for the process. A global invalidation, inside
//!   or outside a session, also reaches the session-scoped entries of that resource in
//!   every live session.
//! - `scope = "session"`: entries live in the running [`AgentCacheSession`] and are gone when
//!   its [`run`](AgentCacheSession::run) returns; two sessions never see each other's
//!   entries. Outside any session, a session-scoped tool runs uncached. A session
//!   invalidation reaches only the current session's entries.
//!
//! The session is visible to everything awaited inside `run`; work spawned onto other tasks
//! joins it through [`spawn`].
//!
//! # Loop detection
//!
//! Inside a session (with `loop_detection(true)`, the default), every call of an
//! `#[agent_cache]` or `#[agent_invalidator]` tool is recorded before it runs, cache hits
//! included, by a [`LoopDetector`]:
//!
//! - **repeat**: the same tool with the same arguments more than `max_tool_repeats` times.
//!   Repeats are progress-aware: a read repeated after its resources were invalidated (the
//!   agent reads its cart again after adding to it) is progress and does not count; with
//!   nothing changed it does;
//! - **depth**: more than `max_execution_depth` calls;
//! - **cycle**: the last calls repeat a cycle of two or more distinct calls twice (A, B, A,
//!   B; A, B, C, A, B, C), up to `max_cycle_len` calls long (default 10), reported as
//!   `Cycle detected: check_stock -> update_stock`;
//! - **retry storm**: a call that failed (returned `Err`) `max_retries` times in a row
//!   (default 3) is called again.
//!
//! On detection, [`OnLoop::Raise`] halts the workflow (the tool does not run, nothing after
//! it runs, `run` returns `Err(AgentLoopDetected)`), [`OnLoop::Warn`] logs a `tracing`
//! warning and continues, and [`OnLoop::ShortCircuit`] returns the cached value without
//! running the tool (and halts when there is none). Every detection counts in
//! `loop_detections`.
//!
//! # Across processes
//!
//! With a fleet installed (`cache_redis::Fleet::install`, before the first tool call), every
//! global-scope invalidation also reaches every other process of the service: their global
//! entries of the resource and the session-scoped entries of their live sessions, as locally
//! (`cart` reaches `cart:u1`). An invalidator then returns once Redis acknowledged the
//! invalidation, or queued it when Redis cannot be reached. Session-scope invalidations stay
//! in their process. A process that loses the fleet drops every tool result it cached, in
//! O(1), and keeps new ones at most the fleet's staleness bound until it hears it again.
//!
//! # MCP servers
//!
//! With the `rmcp` feature, the same attributes stack above rmcp's `#[tool]` in a
//! `#[tool_router]` impl, and `agent_cache::rmcp::guard` gives each MCP client its own
//! session: see the `agent_cache::rmcp` module. Without the feature nothing of rmcp is
//! compiled.
//!
//! # Observability
//!
//! [`AgentCacheSession::metrics`] and [`metrics()`] (the process-wide aggregate) return
//! [`AgentMetrics`]: hits, misses, invalidations, loop detections, hit rate, tool calls,
//! detections by kind, invalidations by resource and remote invalidations (from the fleet).
//! `tracing` events (target `agent_cache`) mark hits, misses, invalidations and detections.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod detector;
mod fleet;
mod metrics;
mod resource;
#[cfg(feature = "rmcp")]
pub mod rmcp;
mod session;
mod spin;
mod tool;

#[doc(inline)]
pub use agent_cache_macros::{agent_cache, agent_invalidator};

pub use detector::{Detection, LoopDetector, LoopKind, LoopLimits, signature};
pub use metrics::{AgentMetrics, LoopDetectionsByKind};
pub use session::{
    AgentCacheSession, AgentCacheSessionBuilder, AgentLoopDetected, OnLoop, metrics, spawn,
};

/// Not public API: what code generated by this crate's attributes reaches.
#[doc(hidden)]
pub mod __private {
    pub use crate::tool::{Read, Scope, Tool, ToolSpec};
    pub use cache_core::__private::{
        borrowed_key_part, fleet_borrowed_key_part, fleet_key_part, key_part, unshare,
    };
    pub use cache_core::Engine;

    /// What the expansions of rmcp tools reach.
    #[cfg(feature = "rmcp")]
    pub mod rmcp {
        pub use crate::rmcp::arguments::{Arguments, ToolParameters, arguments};
        pub use crate::rmcp::call::{
            Failed, ToolOutput, ViaConversion, ViaNothing, ViaResult, mutate, output, read,
            read_json, read_json_result,
        };
    }

    /// A resource path formatted from a call's arguments (`cart:{user_id}`), as `format!`
    /// would, but with room for a usual path up front: `format!` reserves twice the literal
    /// text, so writing the arguments grows (reallocates) the string on nearly every call.
    #[inline]
    pub fn path(arguments: std::fmt::Arguments<'_>) -> std::borrow::Cow<'static, str> {
        let mut path = String::with_capacity(64);
        std::fmt::write(&mut path, arguments)
            .expect("a resource argument's Display implementation returned an error");
        std::borrow::Cow::Owned(path)
    }

    /// An invalidator argument, as it joins the call's loop signature.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` must implement `Debug` to be part of an invalidator's loop signature",
        label = "this argument tells one invalidator call from another",
        note = "derive `Debug` for it, or leave it out with `skip_args = N`"
    )]
    pub trait SignaturePart: std::fmt::Debug {}

    impl<T: std::fmt::Debug + ?Sized> SignaturePart for T {}

    /// The argument as a `&dyn Debug`, spanned at it by the expansion.
    pub fn signature_part<T: SignaturePart>(argument: &T) -> &dyn std::fmt::Debug {
        argument
    }
}
