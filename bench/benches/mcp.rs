//! The MCP layer's cost on a hit, each row against its reference in one run, all over an
//! in-process duplex transport with rmcp's own client:
//!
//! - `mcp_call/bare server, no caching layer`: `tools/call` of a tool that does no work, on
//!   the server without agent-cache (the reference: JSON-RPC, transport and dispatch);
//! - `mcp_call/guarded server, cached tool, a hit`: the same call of the same tool, cached
//!   with `#[agent_cache]`, through `agent_cache::rmcp::guard`: the guard's overhead on a hit
//!   is the difference;
//! - `mcp_hit/...`: the cache's own hit cost inside a served call: one `tools/call` whose tool
//!   makes 0 or 1,000 calls of a cached tool (each a hit in the caller's session), so the
//!   difference over 1,000 is one hit, canonical JSON key and result clone included.
//!
//! `cargo bench -p bench --bench mcp -- --noplot`
//!
//! Timings move with the machine's load; instruction counts do not. With
//! `MCP_CALLGRIND=<row>:<calls>` (row `bare`, `guarded`, `bare_hits0`, `bare_hits1000`,
//! `hits0` or `hits1000`) the binary makes that many calls of one row and exits, for
//! `valgrind --tool=callgrind`: the difference between two call counts, divided by the
//! difference of calls, is one call's instructions, free of the setup.

use std::hint::black_box;
use std::time::{Duration, Instant};

use agent_cache::{AgentCacheSession, OnLoop, agent_cache};
use criterion::{Criterion, criterion_group};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::{RoleClient, RoleServer, RunningService, Service};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct CartArgs {
    user_id: String,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct HitsArgs {
    user_id: String,
    hits: u32,
}

fn cart(user_id: &str) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(format!(
        "{user_id}: [laptop, mouse]"
    ))]))
}

// Both servers keep their router in a field (built once, as a server that cares about speed
// does: `#[tool_router(server_handler)]` builds it again for every call), and have the same
// two tools, so that the guard and the attribute are the only difference.

/// The reference: the same tools, no agent-cache.
#[derive(Clone)]
struct Bare {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Bare {
    #[tool(description = "The user's cart")]
    async fn get_cart(
        &self,
        Parameters(args): Parameters<CartArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        cart(&args.user_id)
    }

    /// Reads the cart `hits` times.
    #[tool(description = "Read the cart many times")]
    async fn read_cart(
        &self,
        Parameters(args): Parameters<HitsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        for _ in 0..args.hits {
            let params = CartArgs {
                user_id: args.user_id.clone(),
            };
            black_box(self.get_cart(Parameters(params)).await?);
        }
        Ok(CallToolResult::success(vec![]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bare {}

#[derive(Clone)]
struct Cached {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Cached {
    #[agent_cache(resource = "cart:{user_id}", ttl = 3600)]
    #[tool(description = "The user's cart")]
    async fn get_cart(
        &self,
        Parameters(args): Parameters<CartArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        cart(&args.user_id)
    }

    /// Reads the cart `hits` times in the caller's session: each read is a hit.
    #[tool(description = "Read the cart many times")]
    async fn read_cart(
        &self,
        Parameters(args): Parameters<HitsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        for _ in 0..args.hits {
            let params = CartArgs {
                user_id: args.user_id.clone(),
            };
            black_box(self.get_cart(Parameters(params)).await?);
        }
        Ok(CallToolResult::success(vec![]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Cached {}

fn bare() -> Bare {
    Bare {
        tool_router: Bare::tool_router(),
    }
}

fn cached() -> agent_cache::rmcp::Guard<Cached> {
    let server = Cached {
        tool_router: Cached::tool_router(),
    };
    agent_cache::rmcp::guard(server, sessions())
}

type Client = RunningService<RoleClient, ()>;

async fn connect<S: Service<RoleServer>>(server: S) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let running = server.serve(server_io).await.expect("the server starts");
        let _ = running.waiting().await;
    });
    ().serve(client_io).await.expect("the client connects")
}

fn params(tool: &'static str, arguments: serde_json::Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool).with_arguments(arguments.as_object().cloned().unwrap())
}

/// Sessions that never stop the benchmark: its calls are repeats by design.
fn sessions() -> agent_cache::AgentCacheSessionBuilder {
    AgentCacheSession::builder()
        .max_tool_repeats(u32::MAX)
        .max_execution_depth(u64::MAX)
        .on_loop(OnLoop::Warn)
}

fn time_calls(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    params: &CallToolRequestParams,
    iters: u64,
) -> Duration {
    runtime.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            black_box(client.call_tool(params.clone()).await.unwrap());
        }
        started.elapsed()
    })
}

fn mcp(c: &mut Criterion) {
    // One thread: client, transport and server take turns on it, as the other agent
    // benchmarks' calls do, and the load of other processes weighs less on each row.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (bare, guarded) = runtime.block_on(async {
        let bare = connect(bare()).await;
        let guarded = connect(cached()).await;
        (bare, guarded)
    });
    let cart = params("get_cart", serde_json::json!({ "user_id": "u1" }));
    runtime.block_on(async { guarded.call_tool(cart.clone()).await.unwrap() });

    let mut group = c.benchmark_group("mcp_call");
    // The rows take turns, so that a change in the machine's load falls on both.
    for round in 1..=2 {
        group.bench_function(
            format!("bare server, no caching layer (round {round})"),
            |b| {
                b.iter_custom(|iters| time_calls(&runtime, &bare, &cart, iters));
            },
        );
        group.bench_function(
            format!("guarded server, cached tool, a hit (round {round})"),
            |b| {
                b.iter_custom(|iters| time_calls(&runtime, &guarded, &cart, iters));
            },
        );
    }
    group.finish();

    let none = params(
        "read_cart",
        serde_json::json!({ "user_id": "u1", "hits": 0 }),
    );
    let thousand = params(
        "read_cart",
        serde_json::json!({ "user_id": "u1", "hits": 1000 }),
    );
    let mut group = c.benchmark_group("mcp_hit");
    group.bench_function("a served call making no hits", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &guarded, &none, iters));
    });
    group.bench_function("a served call making 1,000 hits", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &guarded, &thousand, iters));
    });
    group.finish();
}

/// Makes `calls` calls of one row, untimed, for callgrind.
fn callgrind(row: &str, calls: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, params) = runtime.block_on(async {
        let cart = params("get_cart", serde_json::json!({ "user_id": "u1" }));
        let hits = |n: u32| {
            params(
                "read_cart",
                serde_json::json!({ "user_id": "u1", "hits": n }),
            )
        };
        match row {
            "bare" => (connect(bare()).await, cart),
            "guarded" => (connect(cached()).await, cart),
            "bare_hits0" => (connect(bare()).await, hits(0)),
            "bare_hits1000" => (connect(bare()).await, hits(1000)),
            "hits0" => (connect(cached()).await, hits(0)),
            "hits1000" => (connect(cached()).await, hits(1000)),
            other => panic!("unknown row {other:?}"),
        }
    });
    // One call first: the cached rows' entry is then in the cache.
    time_calls(&runtime, &client, &params, calls + 1);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = mcp
}

fn main() {
    if let Ok(spec) = std::env::var("MCP_CALLGRIND") {
        let (row, calls) = spec.split_once(':').expect("MCP_CALLGRIND=<row>:<calls>");
        callgrind(row, calls.parse().expect("a number of calls"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
