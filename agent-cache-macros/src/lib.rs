//! `#[agent_cache]` and `#[agent_invalidator]`: cache agent read tools by resource and
//! invalidate them when a mutating tool runs.
//!
//! Use them through `agent-cache` (`use agent_cache::{agent_cache, agent_invalidator};`),
//! whose crate docs are the guide. Expansions reach the runtime only through
//! `::agent_cache::__private`, and parse and key their arguments exactly as `#[async_lru]`
//! does (the shared `cache-attr` crate).
//!
//! # How it expands
//!
//! ```text
//! #[agent_cache(resource = "cart:{user_id}", ttl = 60)]
//! async fn get_cart(user_id: &str) -> Cart { body }
//! ```
//!
//! keeps the function's signature, attributes and docs, and gives it this body:
//!
//! ```text
//! static TOOL: Tool = Tool::new(ToolSpec { name: "get_cart", scope: Global,
//!     resources: &["cart:{user_id}"], ttl_nanos: Some(60_000_000_000), .. });
//! let resources = [path(format_args!("cart:{}", user_id))];  // Cow::Owned
//! let key = borrowed_key_part::<str>(user_id);                  // String
//! match TOOL.read(key, &resources, move || async move { body }) { // body built on a miss only
//!     Read::Done(value) => value,                                  // a hit
//!     Read::Waiting(wait) => wait.await,
//! }
//! ```
//!
//! An invalidator's body becomes `let signature = TOOL.signature_of(&[signature parts]);
//! TOOL.mutate(signature, &resources, failed, async move { body }).await`, which records the
//! call for loop detection, invalidates, runs the body, and invalidates again. The signature
//! is taken in a statement of its own so that no `&dyn Debug` is held across the `.await`:
//! every tool's future is `Send`.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod attr;
mod expand;
mod mcp;
mod validate;

use proc_macro::TokenStream;

use crate::attr::Kind;

/// Caches a read tool by its arguments, tagged with the resources it reads.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `resource = "..."` or `[...]` | required | what the tool reads; `{param}` names a parameter |
/// | `scope = "global"` or `"session"` | `"global"` | one cache for the process, or one per session run |
/// | `ttl = SECS` | never expire | an integer or a float |
/// | `maxsize = N` | 1024 | entries at most (per session for session scope) |
/// | `skip_args = N` | 0 | leave the first N parameters out of the key and the loop signature |
/// | `key = <expr>` | the arguments | key each call by this expression instead |
/// | `result = <bool>` | by return type | cache only `Ok` |
/// | `engine = "quick_cache"` or `"moka"` | `"quick_cache"` | the storage engine of its caches (see `cache_core::Engine`) |
///
/// ```
/// use agent_cache::agent_cache;
///
/// #[agent_cache(resource = "product", ttl = 300)]
/// async fn get_product(product_id: &str) -> String {
///     format!("product {product_id}")
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(get_product("laptop").await, "product laptop");
/// assert_eq!(get_product("laptop").await, "product laptop"); // a hit
/// assert_eq!(agent_cache::metrics().hits, 1);
/// # }
/// ```
#[proc_macro_attribute]
pub fn agent_cache(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::tool(Kind::Read, args.into(), item.into()).into()
}

/// Invalidates the reads of its resources when a mutating tool runs: immediately before the
/// mutation and again after it returns, so no read that overlapped it stays cached. The
/// mutation's output, error included, is returned unchanged.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `resource = "..."` or `[...]` | required | what the tool changes; `{param}` names a parameter |
/// | `scope = "global"` or `"session"` | `"global"` | every cache, or the current session's |
/// | `skip_args = N` | 0 | leave the first N parameters out of the loop signature |
/// | `result = <bool>` | by return type | an `Err` counts as a failure for retry storms |
///
/// Its arguments join the loop signature through their `Debug` form, so an `f64` amount
/// tells calls apart as well as an id.
///
/// ```
/// use agent_cache::{agent_cache, agent_invalidator};
///
/// #[agent_cache(resource = "stock:{sku}")]
/// async fn check_stock(sku: &str) -> u32 { 7 }
///
/// #[agent_invalidator(resource = ["stock:{sku}", "orders"])]
/// async fn sell(sku: &str, price: f64) -> Result<(), String> { Ok(()) }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// check_stock("SKU-1").await;
/// sell("SKU-1", 9.99).await.unwrap();
/// check_stock("SKU-1").await; // loaded again
/// assert_eq!(agent_cache::metrics().misses, 2);
/// # }
/// ```
#[proc_macro_attribute]
pub fn agent_invalidator(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::tool(Kind::Invalidator, args.into(), item.into()).into()
}
