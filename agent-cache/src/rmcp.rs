//! MCP servers on [rmcp](https://docs.rs/rmcp): cached, invalidated and loop-guarded tools,
//! with one line per tool (feature `rmcp`).
//!
//! Stack `#[agent_cache]` or `#[agent_invalidator]` above rmcp's `#[tool]` in a
//! `#[tool_router]` impl, and serve the server through [`guard`]:
//!
//! ```
//! use agent_cache::{AgentCacheSession, agent_cache, agent_invalidator};
//! use rmcp::handler::server::wrapper::Parameters;
//! use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
//! use rmcp::{ErrorData, ServiceExt, schemars, tool, tool_handler, tool_router};
//! use serde::{Deserialize, Serialize};
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! #[derive(Deserialize, Serialize, schemars::JsonSchema)]
//! #[schemars(crate = "rmcp::schemars")]
//! struct CartArgs {
//!     user_id: String,
//! }
//!
//! #[derive(Deserialize, Serialize, schemars::JsonSchema)]
//! #[schemars(crate = "rmcp::schemars")]
//! struct AddArgs {
//!     user_id: String,
//!     item: String,
//! }
//!
//! #[derive(Clone, Default)]
//! struct Shop {
//!     cart_reads: Arc<AtomicUsize>,
//! }
//!
//! #[tool_router(server_handler)]
//! impl Shop {
//!     #[agent_cache(resource = "cart:{user_id}", ttl = 120)] // {user_id}: a field of CartArgs
//!     #[tool(description = "The user's cart")]
//!     async fn get_cart(
//!         &self,
//!         Parameters(args): Parameters<CartArgs>,
//!     ) -> Result<CallToolResult, ErrorData> {
//!         self.cart_reads.fetch_add(1, Ordering::SeqCst); // SELECT ... WHERE user_id = $1
//!         Ok(CallToolResult::success(vec![ContentBlock::text(format!("{}: []", args.user_id))]))
//!     }
//!
//!     #[agent_invalidator(resource = "cart:{user_id}")]
//!     #[tool(description = "Add an item to the cart")]
//!     async fn add_to_cart(
//!         &self,
//!         Parameters(args): Parameters<AddArgs>,
//!     ) -> Result<CallToolResult, ErrorData> {
//!         Ok(CallToolResult::success(vec![ContentBlock::text(format!("added {}", args.item))]))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let shop = Shop::default();
//! let server = agent_cache::rmcp::guard(shop.clone(), AgentCacheSession::builder().max_tool_repeats(5));
//!
//! // Any MCP client; here an rmcp client in the same process.
//! let (server_io, client_io) = tokio::io::duplex(64 * 1024);
//! tokio::spawn(async move {
//!     let running = server.serve(server_io).await.expect("the server starts");
//!     running.waiting().await
//! });
//! let client = ().serve(client_io).await?;
//!
//! let cart = |user: &str| {
//!     let args = serde_json::json!({ "user_id": user }).as_object().cloned().unwrap();
//!     CallToolRequestParams::new("get_cart").with_arguments(args)
//! };
//! client.call_tool(cart("u1")).await?; // runs the tool
//! client.call_tool(cart("u1")).await?; // a hit
//! assert_eq!(shop.cart_reads.load(Ordering::SeqCst), 1);
//! let add = serde_json::json!({ "user_id": "u1", "item": "laptop" });
//! client
//!     .call_tool(CallToolRequestParams::new("add_to_cart").with_arguments(add.as_object().cloned().unwrap()))
//!     .await?; // invalidates u1's cart
//! client.call_tool(cart("u1")).await?; // runs again: never stale
//! assert_eq!(shop.cart_reads.load(Ordering::SeqCst), 2);
//! client.cancel().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Tools
//!
//! - **Keys.** A call is keyed by its tool and the canonical JSON of its `Parameters<T>`
//!   (object keys sorted; `T` must be `Serialize`). Request extractors (`RequestContext`,
//!   `Peer`, `Extension<_>`, `Meta`, ...) are not part of the key: a tool whose result
//!   depends on who calls needs `scope = "session"` or a partitioned guard
//!   ([`Guard::partition_by`]). A tool without parameters has one entry.
//! - **Resources.** A placeholder names a field of the parameters struct
//!   (`"cart:{user_id}"`, formatted with `Display`), whatever pattern the parameter is bound
//!   with (`Parameters(args)`, `params`, `Parameters(CartArgs { user_id, .. })`).
//! - **What is cached.** Only complete results that are not errors: a tool error
//!   (`isError: true`, or the `Err` branch of a `Result` rmcp turns into one), a protocol
//!   error (`Err(ErrorData)`), an input-required result and a task handle are returned and
//!   never cached. A later round of a multi-round-trip call (one that carries input
//!   responses or request state) runs uncached: its result depends on the client's answers.
//!   The result type must be `Clone` (each hit is a clone).
//! - **Annotations.** `#[agent_cache]` marks the tool `read_only_hint = true` and
//!   `#[agent_invalidator]` marks it `read_only_hint = false` in its `#[tool]` annotations;
//!   a contradicting hint (`read_only_hint = false` or `destructive_hint = true` on a cached
//!   read, `read_only_hint = true` on an invalidator) is a compile error at the hint.
//! - **Names.** Loop reports name a tool by its MCP name (`#[tool(name = "...")]`, else the
//!   method's name), the one the model calls.
//! - Write `#[agent_cache]` above `#[tool]`: `#[tool]` turns the `async fn` into one that
//!   returns a boxed future, which the agent attributes do not take.
//!
//! # Sessions: one per client
//!
//! The [`Guard`] runs every tool call in its client's
//! [`AgentCacheSession`](crate::AgentCacheSession), built from the template given to
//! [`guard`]. Session-scoped entries and loop detection never cross clients:
//!
//! | transport | a client is |
//! |---|---|
//! | stdio, in-process duplex, any other connection | the connection (one guard instance) |
//! | streamable HTTP, legacy sessions | the `Mcp-Session-Id` session (the service factory makes one guard clone per session) |
//! | streamable HTTP, 2026-07-28 (sessionless) | the run id in the call's `_meta` under [`RUN_ID_META_KEY`] |
//!
//! A run id takes precedence over the connection, so a client may also run several agents
//! over one connection. Run-id sessions are kept per partition, at most
//! [`max_runs`](Guard::max_runs), and dropped after [an idle
//! timeout](Guard::run_idle_timeout); use unguessable run ids (a UUID). A sessionless call
//! without a run id is a session of its own: it is cached in global scope, and loop
//! detection sees that one call only.
//!
//! # Loops
//!
//! A detected loop reaches the model as a tool error result that names the loop and says
//! what to do instead, with the details under [`LOOP_META_KEY`] in its `_meta`; the server
//! goes on serving that client and every other. With [`OnLoop::Raise`](crate::OnLoop::Raise)
//! (the default) the looping call does not run; with [`OnLoop::Warn`](crate::OnLoop::Warn)
//! it runs and its result gets a note; with [`OnLoop::ShortCircuit`](crate::OnLoop::ShortCircuit)
//! the cached result is returned, with the note, or the tool error when nothing is cached.
//! Each later call that continues the loop is stopped again; a call that breaks it runs.
//!
//! # Faults
//!
//! - A tool called outside a guard (the bare server served, or called directly) runs
//!   uncached with no loop detection, and a warning says so once.
//! - Parameters that cannot be serialized to JSON (a map with non-string keys) run uncached.
//! - A panicking tool never poisons the cache; other callers of the same load get the
//!   panic's error as for any agent tool.
//!
//! # Partitions
//!
//! A global cache shared by every client is right for data that does not depend on who asks.
//! For data that does, partition the guard by an identity: `guard(..).partition_by(..)` with
//! a function of the request context, or [`by_header`] for a header an auth gateway sets.

pub(crate) mod arguments;
pub(crate) mod call;
#[allow(deprecated)]
mod delegate;
mod guard;
mod report;

pub use guard::{Guard, RUN_ID_META_KEY, by_header, guard};
pub use report::{LOOP_META_KEY, loop_report};
