//! An MCP server exposing the tools of the five seed scenarios, cached, invalidated and
//! loop-guarded by agent-cache: `cargo run -p examples --example mcp_server` (stdio) or
//! `... -- --http` (streamable HTTP on 127.0.0.1). Point any MCP client at it.
//!
//! Every tool's answer says which backend request served it (`backend request #7`): a hit
//! repeats the number of the request it was cached from, so a person (or a test) can tell a
//! hit from a miss. The backends are simulated, in memory, with a little latency.
//!
//! | tool | scenario | cache |
//! |---|---|---|
//! | `get_cart {user_id}` | e-commerce | read `cart:{user_id}`, 120 s |
//! | `get_product {product_id}` | e-commerce | read `product`, 300 s |
//! | `add_to_cart {user_id, product_id}` | e-commerce | invalidates `cart:{user_id}` |
//! | `checkout {user_id}` | e-commerce | invalidates `cart:{user_id}`, `orders` |
//! | `get_ticket {ticket_id}` | support | read `ticket:{ticket_id}`, per session |
//! | `update_ticket {ticket_id, status}` | support | invalidates it in the session |
//! | `search_web {query}` | research | read `search`, 600 s |
//! | `fetch_page {url}` | research | read `page`, 600 s |
//! | `check_stock {item_id}` | inventory | read `stock:{item_id}` |
//! | `update_stock {item_id, delta}` | inventory | invalidates `stock:{item_id}` |
//! | `charge_payment {order_id, amount}` | payment | invalidates `payment`; always fails |
//! | `cache_stats` | | not cached: the process's agent metrics |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agent_cache::rmcp::Guard;
use agent_cache::{AgentCacheSession, OnLoop, agent_cache, agent_invalidator};
use parking_lot::Mutex;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// The simulated latency of every backend request.
const LATENCY: Duration = Duration::from_millis(20);

/// The loop-detection settings of the server's sessions (one per client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// At most this many identical calls with nothing they read changed. Default 3.
    pub max_tool_repeats: u32,
    /// At most this many tool calls per session. Default 50.
    pub max_execution_depth: u64,
    /// What a loop does. Default [`OnLoop::Raise`]: the call is stopped with a tool error.
    pub on_loop: OnLoop,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tool_repeats: 3,
            max_execution_depth: 50,
            on_loop: OnLoop::Raise,
        }
    }
}

/// The in-memory backends of the five scenarios, with a count of every request.
#[derive(Default)]
struct Backend {
    requests: AtomicU64,
    carts: Mutex<HashMap<String, Vec<String>>>,
    orders: Mutex<Vec<String>>,
    tickets: Mutex<HashMap<String, String>>,
    stock: Mutex<HashMap<String, i64>>,
}

impl Backend {
    /// One request: waits the latency and returns its number.
    async fn request(&self) -> u64 {
        tokio::time::sleep(LATENCY).await;
        self.requests.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// The scenario tools, as an rmcp server. Serve it through [`guard`].
#[derive(Clone, Default)]
pub struct ScenarioTools {
    backend: Arc<Backend>,
}

/// A user.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct UserArgs {
    /// The user's id, such as `u1`.
    pub user_id: String,
}

/// A product.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProductArgs {
    /// The product's id, such as `laptop`.
    pub product_id: String,
}

/// A product for a user's cart.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct AddToCartArgs {
    /// The user's id.
    pub user_id: String,
    /// The product's id.
    pub product_id: String,
}

/// A support ticket.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct TicketArgs {
    /// The ticket's id, such as `T-100`.
    pub ticket_id: String,
}

/// A ticket's new status.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct UpdateTicketArgs {
    /// The ticket's id.
    pub ticket_id: String,
    /// Its new status, such as `in_progress`.
    pub status: String,
}

/// A web search.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchArgs {
    /// What to search for.
    pub query: String,
}

/// A web page.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct PageArgs {
    /// Its URL.
    pub url: String,
}

/// An inventory item.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ItemArgs {
    /// The item's id, such as `SKU-42`.
    pub item_id: String,
}

/// A stock adjustment.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct StockArgs {
    /// The item's id.
    pub item_id: String,
    /// Units to add (negative to remove).
    pub delta: i64,
}

/// A payment.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct PaymentArgs {
    /// The order's id, such as `ORD-1`.
    pub order_id: String,
    /// The amount, in dollars.
    pub amount: f64,
}

/// A user's cart, as structured output.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Cart {
    /// Whose cart.
    pub user_id: String,
    /// The products in it.
    pub items: Vec<String>,
    /// Their total, in cents.
    pub total_cents: u64,
    /// The backend request that read it (a hit repeats it).
    pub backend_request: u64,
}

fn text(text: String) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

#[tool_handler(
    name = "agent-cache-scenarios",
    instructions = "The tools of agent-cache's five seed scenarios (e-commerce, support, research, \
                    inventory, payment) over simulated backends, cached, invalidated and \
                    loop-guarded by agent-cache. Each answer names the backend request that \
                    served it: a cached answer repeats the number it was cached from."
)]
impl rmcp::ServerHandler for ScenarioTools {}

#[tool_router]
impl ScenarioTools {
    #[agent_cache(resource = "cart:{user_id}", ttl = 120)]
    #[tool(
        description = "E-commerce: the user's cart (cached; invalidated by add_to_cart and checkout)"
    )]
    async fn get_cart(&self, Parameters(args): Parameters<UserArgs>) -> Json<Cart> {
        let request = self.backend.request().await;
        let items = self
            .backend
            .carts
            .lock()
            .get(&args.user_id)
            .cloned()
            .unwrap_or_default();
        Json(Cart {
            total_cents: 99_900 * items.len() as u64,
            user_id: args.user_id,
            items,
            backend_request: request,
        })
    }

    #[agent_cache(resource = "product", ttl = 300)]
    #[tool(description = "E-commerce: a product's price (cached)")]
    async fn get_product(
        &self,
        Parameters(args): Parameters<ProductArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        text(format!(
            "{}: $999.00 (backend request #{request})",
            args.product_id
        ))
    }

    #[agent_invalidator(resource = "cart:{user_id}")]
    #[tool(description = "E-commerce: add a product to the user's cart")]
    async fn add_to_cart(
        &self,
        Parameters(args): Parameters<AddToCartArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        self.backend
            .carts
            .lock()
            .entry(args.user_id.clone())
            .or_default()
            .push(args.product_id.clone());
        text(format!(
            "added {} to {}'s cart (backend request #{request})",
            args.product_id, args.user_id
        ))
    }

    #[agent_invalidator(resource = ["cart:{user_id}", "orders"])]
    #[tool(description = "E-commerce: place an order for the user's cart")]
    async fn checkout(
        &self,
        Parameters(args): Parameters<UserArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        let Some(items) = self.backend.carts.lock().remove(&args.user_id) else {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{}'s cart is empty: add a product first",
                args.user_id
            ))]));
        };
        let order = format!("order of {} item(s) for {}", items.len(), args.user_id);
        self.backend.orders.lock().push(order.clone());
        text(format!("placed the {order} (backend request #{request})"))
    }

    #[agent_cache(resource = "ticket:{ticket_id}", scope = "session")]
    #[tool(description = "Support: a ticket's status (cached per client session)")]
    async fn get_ticket(
        &self,
        Parameters(args): Parameters<TicketArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        let status = self.backend.tickets.lock().get(&args.ticket_id).cloned();
        let status = status.unwrap_or_else(|| "open".to_owned());
        text(format!(
            "{}: {status} (backend request #{request})",
            args.ticket_id
        ))
    }

    #[agent_invalidator(resource = "ticket:{ticket_id}", scope = "session")]
    #[tool(description = "Support: change a ticket's status")]
    async fn update_ticket(
        &self,
        Parameters(args): Parameters<UpdateTicketArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        self.backend
            .tickets
            .lock()
            .insert(args.ticket_id.clone(), args.status.clone());
        text(format!(
            "{} is now {} (backend request #{request})",
            args.ticket_id, args.status
        ))
    }

    #[agent_cache(resource = "search", ttl = 600)]
    #[tool(description = "Research: search the web (cached)")]
    async fn search_web(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        let slug = args.query.replace(' ', "-");
        text(format!(
            "results for {:?}: https://example.org/{slug}, https://docs.rs/moka (backend request #{request})",
            args.query
        ))
    }

    #[agent_cache(resource = "page", ttl = 600)]
    #[tool(description = "Research: fetch a web page (cached)")]
    async fn fetch_page(
        &self,
        Parameters(args): Parameters<PageArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        text(format!(
            "<html>{} ({} bytes)</html> (backend request #{request})",
            args.url,
            args.url.len() * 100
        ))
    }

    #[agent_cache(resource = "stock:{item_id}")]
    #[tool(description = "Inventory: units in stock (cached; invalidated by update_stock)")]
    async fn check_stock(
        &self,
        Parameters(args): Parameters<ItemArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        let units = *self
            .backend
            .stock
            .lock()
            .entry(args.item_id.clone())
            .or_insert(100);
        text(format!(
            "{}: {units} in stock (backend request #{request})",
            args.item_id
        ))
    }

    #[agent_invalidator(resource = "stock:{item_id}")]
    #[tool(description = "Inventory: add or remove units")]
    async fn update_stock(
        &self,
        Parameters(args): Parameters<StockArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        let mut stock = self.backend.stock.lock();
        let units = stock.entry(args.item_id.clone()).or_insert(100);
        *units += args.delta;
        text(format!(
            "{}: {} in stock (backend request #{request})",
            args.item_id, *units
        ))
    }

    #[agent_invalidator(resource = "payment")]
    #[tool(description = "Payment: charge an order (the gateway is down: it always fails)")]
    async fn charge_payment(
        &self,
        Parameters(args): Parameters<PaymentArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = self.backend.request().await;
        Ok(CallToolResult::error(vec![ContentBlock::text(format!(
            "payment gateway timeout charging {} ${:.2} (backend request #{request})",
            args.order_id, args.amount
        ))]))
    }

    #[tool(description = "The server's agent-cache metrics over every client (not cached)")]
    async fn cache_stats(&self) -> Result<CallToolResult, ErrorData> {
        let metrics = serde_json::to_value(agent_cache::metrics())
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        Ok(CallToolResult::structured(metrics))
    }
}

/// The scenario tools behind agent-cache's guard, with these limits for every client's
/// session.
pub fn guard(limits: Limits) -> Guard<ScenarioTools> {
    let sessions = AgentCacheSession::builder()
        .max_tool_repeats(limits.max_tool_repeats)
        .max_execution_depth(limits.max_execution_depth)
        .on_loop(limits.on_loop);
    agent_cache::rmcp::guard(ScenarioTools::default(), sessions)
}

/// Serves `server` to the client on stdin and stdout until it disconnects.
pub async fn serve_stdio(server: Guard<ScenarioTools>) -> std::io::Result<()> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// Serves `server` over streamable HTTP at `/mcp` on `listener`: legacy clients get a
/// session each (`Mcp-Session-Id`), 2026-07-28 clients are served statelessly (and keep a
/// session across calls by a run id in `_meta`).
pub async fn serve_http(
    listener: TcpListener,
    server: Guard<ScenarioTools>,
) -> std::io::Result<()> {
    let service = StreamableHttpService::new(
        // One guard clone per legacy session (or per stateless request): each is a client.
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    axum::serve(listener, router).await
}

/// The server's command line: `[--http] [--port N] [--max-tool-repeats N]
/// [--max-execution-depth N] [--on-loop raise|warn|short_circuit]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Streamable HTTP instead of stdio.
    pub http: bool,
    /// The HTTP port on 127.0.0.1 (0: one the system picks, printed on start). Default 8000.
    pub port: u16,
    /// The sessions' limits.
    pub limits: Limits,
}

impl Options {
    /// Parses the arguments after the program's name; `Err` is the usage, naming the mistake.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            http: false,
            port: 8000,
            limits: Limits::default(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| usage(&format!("{name} needs a value")))
            };
            match arg.as_str() {
                "--http" => options.http = true,
                "--port" => options.port = number(&value("--port")?, "--port")?,
                "--max-tool-repeats" => {
                    options.limits.max_tool_repeats =
                        number(&value("--max-tool-repeats")?, "--max-tool-repeats")?;
                }
                "--max-execution-depth" => {
                    options.limits.max_execution_depth =
                        number(&value("--max-execution-depth")?, "--max-execution-depth")?;
                }
                "--on-loop" => {
                    let name = value("--on-loop")?;
                    options.limits.on_loop = crate::scenarios::parse_on_loop(&name)
                        .ok_or_else(|| usage(&format!("unknown --on-loop {name:?}")))?;
                }
                other => return Err(usage(&format!("unknown argument {other:?}"))),
            }
        }
        Ok(options)
    }
}

fn number<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| usage(&format!("{name} takes a whole number, not {text:?}")))
}

fn usage(problem: &str) -> String {
    format!(
        "{problem}\nusage: mcp_server [--http] [--port N] [--max-tool-repeats N] \
         [--max-execution-depth N] [--on-loop raise|warn|short_circuit]"
    )
}

/// Where an HTTP server listens, for the message printed on start.
pub fn endpoint(address: SocketAddr) -> String {
    format!("http://{address}/mcp")
}
