//! agent-cache on an rmcp server, driven by rmcp's own client over an in-process tokio duplex
//! transport: hits, invalidation on write, what is never cached, the isolation of clients'
//! sessions and partitions, each loop kind as the tool error the client sees, and the
//! annotations in `tools/list`.
//!
//! Every tool has one process-wide cache and tests run in parallel in this binary, so each
//! test uses arguments (user ids, skus, queries) of its own; each test's server counts the
//! calls that reach its handlers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_cache::rmcp::{LOOP_META_KEY, guard, loop_report};
use agent_cache::{AgentCacheSession, OnLoop, agent_cache, agent_invalidator};
use rmcp::handler::server::tool::RequestState;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InputRequiredResult,
    ProtocolVersion, RequestMetaObject,
};
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService, Service};
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ErrorData, ServiceExt, schemars, tool, tool_router,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

/// What the shop's handlers count and keep.
#[derive(Default)]
struct Backend {
    calls: Mutex<HashMap<&'static str, usize>>,
    carts: Mutex<HashMap<String, Vec<String>>>,
    stock: Mutex<HashMap<String, i64>>,
}

impl Backend {
    fn called(&self, tool: &'static str) -> usize {
        let mut calls = self.calls.lock().unwrap();
        let count = calls.entry(tool).or_default();
        *count += 1;
        *count
    }

    fn calls(&self, tool: &str) -> usize {
        self.calls.lock().unwrap().get(tool).copied().unwrap_or(0)
    }
}

#[derive(Clone, Default)]
struct Shop {
    backend: Arc<Backend>,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct User {
    user_id: String,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Item {
    user_id: String,
    item: String,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Sku {
    sku: String,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct StockChange {
    sku: String,
    delta: i64,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Query {
    query: String,
    #[serde(default = "ten")]
    limit: u32,
}

fn ten() -> u32 {
    10
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Charge {
    order_id: String,
    amount: f64,
}

#[derive(Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Hits {
    query: String,
    hits: Vec<String>,
    fetched: usize,
}

fn text(text: impl Into<String>) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

/// The identity a call carries in its `_meta` (the tests' stand-in for an auth subject).
fn caller(context: &RequestContext<RoleServer>) -> Option<String> {
    context.meta.get("user")?.as_str().map(str::to_owned)
}

#[tool_router(server_handler)]
impl Shop {
    #[agent_cache(resource = "cart:{user_id}", ttl = 120)]
    #[tool(description = "The user's cart")]
    async fn get_cart(
        &self,
        Parameters(args): Parameters<User>,
    ) -> Result<CallToolResult, ErrorData> {
        let fetch = self.backend.called("get_cart");
        let items = self
            .backend
            .carts
            .lock()
            .unwrap()
            .get(&args.user_id)
            .cloned();
        let items = items.unwrap_or_default();
        text(format!(
            "{}: [{}] (fetch {fetch})",
            args.user_id,
            items.join(", ")
        ))
    }

    #[agent_invalidator(resource = "cart:{user_id}")]
    #[tool(
        description = "Add an item to the cart",
        annotations(title = "Add to cart")
    )]
    async fn add_to_cart(
        &self,
        Parameters(Item { user_id, item }): Parameters<Item>,
    ) -> Result<CallToolResult, ErrorData> {
        self.backend.called("add_to_cart");
        let mut carts = self.backend.carts.lock().unwrap();
        carts.entry(user_id.clone()).or_default().push(item);
        text(format!("added to {user_id}'s cart"))
    }

    /// Session-scoped: each client has its own entries.
    #[agent_cache(resource = "notes:{user_id}", scope = "session")]
    #[tool(name = "get-notes", description = "This session's notes")]
    async fn get_notes(&self, params: Parameters<User>) -> String {
        let fetch = self.backend.called("get_notes");
        format!("notes of {} (fetch {fetch})", params.0.user_id)
    }

    #[agent_cache(resource = "search", ttl = 600)]
    #[tool(description = "Search the catalogue")]
    async fn search(&self, Parameters(query): Parameters<Query>) -> Json<Hits> {
        let fetched = self.backend.called("search");
        let hits = (0..query.limit.min(3))
            .map(|i| format!("{}-{i}", query.query))
            .collect();
        Json(Hits {
            query: query.query,
            hits,
            fetched,
        })
    }

    #[agent_cache(resource = "stock:{sku}")]
    #[tool(description = "Units in stock")]
    async fn check_stock(&self, Parameters(args): Parameters<Sku>) -> Result<String, String> {
        self.backend.called("check_stock");
        let stock = self.backend.stock.lock().unwrap();
        Ok(format!(
            "{}: {}",
            args.sku,
            stock.get(&args.sku).copied().unwrap_or(100)
        ))
    }

    #[agent_invalidator(resource = "stock:{sku}")]
    #[tool(description = "Adjust the stock")]
    async fn update_stock(
        &self,
        Parameters(args): Parameters<StockChange>,
    ) -> Result<String, String> {
        self.backend.called("update_stock");
        let mut stock = self.backend.stock.lock().unwrap();
        let level = stock.entry(args.sku.clone()).or_insert(100);
        *level += args.delta;
        Ok(format!("{}: {level}", args.sku))
    }

    /// Always fails, as a tool error.
    #[agent_invalidator(resource = "payments")]
    #[tool(description = "Charge an order")]
    async fn charge(
        &self,
        Parameters(args): Parameters<Charge>,
    ) -> Result<CallToolResult, ErrorData> {
        self.backend.called("charge");
        Ok(CallToolResult::error(vec![ContentBlock::text(format!(
            "gateway timeout charging {} {:.2}",
            args.order_id, args.amount
        ))]))
    }

    /// A read that fails as a tool error.
    #[agent_cache(resource = "flaky")]
    #[tool(description = "Look something up in a flaky service")]
    async fn flaky(&self, Parameters(args): Parameters<User>) -> Result<CallToolResult, ErrorData> {
        self.backend.called("flaky");
        Ok(CallToolResult::error(vec![ContentBlock::text(format!(
            "service unavailable for {}",
            args.user_id
        ))]))
    }

    /// A read that fails as a protocol error.
    #[agent_cache(resource = "broken")]
    #[tool(description = "Look something up in a broken service")]
    async fn broken(
        &self,
        Parameters(args): Parameters<User>,
    ) -> Result<CallToolResult, ErrorData> {
        self.backend.called("broken");
        Err(ErrorData::internal_error(
            format!("database down for {}", args.user_id),
            None,
        ))
    }

    /// Depends on who calls, through an extractor the key leaves out.
    #[agent_cache(resource = "profile")]
    #[tool(description = "The caller's profile")]
    async fn get_profile(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.backend.called("get_profile");
        text(format!(
            "profile of {}",
            caller(&context).unwrap_or_default()
        ))
    }

    /// Asks the client for input first (a multi-round-trip call).
    #[agent_cache(resource = "confirmations")]
    #[tool(description = "Confirm an order, with the user's say-so")]
    async fn confirm(
        &self,
        Parameters(args): Parameters<User>,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        self.backend.called("confirm");
        Ok(match state {
            None => {
                InputRequiredResult::from_request_state(format!("confirm:{}", args.user_id)).into()
            }
            Some(state) => {
                CallToolResult::success(vec![ContentBlock::text(format!("confirmed {state}"))])
                    .into()
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------------------------

type Client = RunningService<RoleClient, ()>;

/// Serves `server` on one end of an in-process duplex and connects rmcp's client to the other.
async fn connect<S: Service<RoleServer>>(server: S) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let running = server.serve(server_io).await.expect("the server starts");
        let _ = running.waiting().await;
    });
    ().serve(client_io).await.expect("the client connects")
}

/// The server guarded with these session settings.
fn guarded(
    shop: &Shop,
    sessions: agent_cache::AgentCacheSessionBuilder,
) -> agent_cache::rmcp::Guard<Shop> {
    guard(shop.clone(), sessions)
}

fn params(tool: &'static str, arguments: Value) -> CallToolRequestParams {
    let arguments = arguments.as_object().cloned().expect("an object");
    CallToolRequestParams::new(tool).with_arguments(arguments)
}

/// A call with a timeout, so that a call the server never answers fails the test.
async fn call(client: &Client, tool: &'static str, arguments: Value) -> CallToolResult {
    call_with(client, params(tool, arguments)).await
}

async fn call_with(client: &Client, params: CallToolRequestParams) -> CallToolResult {
    within(client.call_tool(params))
        .await
        .expect("the server answers with a result")
}

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("answered within 20 s")
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

// ---------------------------------------------------------------------------------------------
// Hits and invalidation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_call_is_a_hit_and_a_write_invalidates_only_its_users_cart() {
    let shop = Shop::default();
    let client = connect(guarded(&shop, AgentCacheSession::builder())).await;
    let cart = |user: &str| json!({ "user_id": user });

    let first = call(&client, "get_cart", cart("hits-u1")).await;
    let again = call(&client, "get_cart", cart("hits-u1")).await;
    assert_eq!(text_of(&first), "hits-u1: [] (fetch 1)");
    assert_eq!(again, first, "the hit is the cached result, unchanged");
    assert_eq!(
        shop.backend.calls("get_cart"),
        1,
        "the hit did not reach the handler"
    );

    call(&client, "get_cart", cart("hits-u2")).await;
    assert_eq!(
        shop.backend.calls("get_cart"),
        2,
        "another user is another entry"
    );

    let added = call(
        &client,
        "add_to_cart",
        json!({ "user_id": "hits-u1", "item": "laptop" }),
    )
    .await;
    assert!(!is_error(&added), "{added:?}");
    let after = call(&client, "get_cart", cart("hits-u1")).await;
    assert_eq!(
        text_of(&after),
        "hits-u1: [laptop] (fetch 3)",
        "never stale after a write"
    );
    call(&client, "get_cart", cart("hits-u2")).await;
    assert_eq!(
        shop.backend.calls("get_cart"),
        3,
        "u2's cart was not invalidated"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn parameters_are_keyed_by_their_canonical_json_and_not_by_the_raw_request() {
    let shop = Shop::default();
    let client = connect(guarded(&shop, AgentCacheSession::builder())).await;

    let first = call(
        &client,
        "search",
        json!({ "query": "canonical", "limit": 2 }),
    )
    .await;
    // The same parameters: keys in another order, a default spelled out, a field the tool
    // does not know.
    call(
        &client,
        "search",
        json!({ "limit": 2, "query": "canonical" }),
    )
    .await;
    call(
        &client,
        "search",
        json!({ "query": "canonical", "limit": 2, "verbose": true }),
    )
    .await;
    call(&client, "search", json!({ "query": "canonical-default" })).await;
    call(
        &client,
        "search",
        json!({ "query": "canonical-default", "limit": 10 }),
    )
    .await;
    assert_eq!(shop.backend.calls("search"), 2);
    // A structured result (`Json<T>`) comes back as it was.
    assert_eq!(
        first.structured_content,
        Some(json!({ "query": "canonical", "hits": ["canonical-0", "canonical-1"], "fetched": 1 }))
    );
    let hit = call(
        &client,
        "search",
        json!({ "query": "canonical", "limit": 2 }),
    )
    .await;
    assert_eq!(hit.structured_content, first.structured_content);

    call(
        &client,
        "search",
        json!({ "query": "canonical", "limit": 3 }),
    )
    .await;
    assert_eq!(
        shop.backend.calls("search"),
        3,
        "a different limit is a different call"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_thousand_concurrent_identical_calls_run_the_handler_once() {
    let shop = Shop::default();
    let client = Arc::new(
        connect(guarded(
            &shop,
            AgentCacheSession::builder().loop_detection(false),
        ))
        .await,
    );
    let calls = (0..1000).map(|_| {
        let client = Arc::clone(&client);
        tokio::spawn(async move { call(&client, "search", json!({ "query": "herd" })).await })
    });
    let results = tests::join_every(calls).await;
    assert!(
        results
            .iter()
            .all(|result| result.structured_content == results[0].structured_content)
    );
    assert_eq!(
        shop.backend.calls("search"),
        1,
        "one load for the whole herd"
    );
}

// ---------------------------------------------------------------------------------------------
// What is never cached
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tool_errors_and_protocol_errors_are_returned_and_never_cached() {
    let shop = Shop::default();
    let client = connect(guarded(
        &shop,
        AgentCacheSession::builder().loop_detection(false),
    ))
    .await;

    for attempt in 1..=3 {
        let result = call(&client, "flaky", json!({ "user_id": "errors-u1" })).await;
        assert!(is_error(&result));
        assert_eq!(text_of(&result), "service unavailable for errors-u1");
        assert_eq!(
            shop.backend.calls("flaky"),
            attempt,
            "each call ran the tool"
        );
    }
    for attempt in 1..=3 {
        let error = within(client.call_tool(params("broken", json!({ "user_id": "errors-u1" }))))
            .await
            .expect_err("a protocol error");
        assert!(
            error.to_string().contains("database down for errors-u1"),
            "{error}"
        );
        assert_eq!(shop.backend.calls("broken"), attempt);
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_input_required_round_and_the_rounds_after_it_are_never_cached() {
    let shop = Shop::default();
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let server = guarded(&shop, AgentCacheSession::builder().loop_detection(false));
    tokio::spawn(async move {
        let running = server.serve(server_io).await.expect("the server starts");
        let _ = running.waiting().await;
    });
    // Input-required results need the 2026-07-28 protocol.
    let client = ()
        .serve_with_lifecycle(
            client_io,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("the client connects");
    let confirm = || params("confirm", json!({ "user_id": "mrtr-u1" }));

    for round in 1..=2 {
        let response = within(client.call_tool_once(confirm())).await.unwrap();
        let CallToolResponse::InputRequired(input) = response else {
            panic!("round {round}: expected input required, got {response:?}");
        };
        assert_eq!(input.request_state.as_deref(), Some("confirm:mrtr-u1"));
        assert_eq!(
            shop.backend.calls("confirm"),
            round,
            "an input-required result is not cached"
        );
    }
    for round in 1..=2 {
        let answer = confirm().with_request_state("confirm:mrtr-u1");
        let response = within(client.call_tool_once(answer)).await.unwrap();
        let CallToolResponse::Complete(result) = response else {
            panic!("expected the completed call, got {response:?}");
        };
        assert_eq!(text_of(&result), "confirmed confirm:mrtr-u1");
        assert_eq!(
            shop.backend.calls("confirm"),
            2 + round,
            "a continuation round runs uncached"
        );
    }
    // Nor did a continuation's result become the answer to a fresh call.
    let response = within(client.call_tool_once(confirm())).await.unwrap();
    assert!(
        matches!(response, CallToolResponse::InputRequired(_)),
        "{response:?}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_bare_server_without_the_guard_runs_every_call_uncached() {
    let shop = Shop::default();
    let client = connect(shop.clone()).await;
    for fetch in 1..=3 {
        let result = call(&client, "get_cart", json!({ "user_id": "bare-u1" })).await;
        assert_eq!(text_of(&result), format!("bare-u1: [] (fetch {fetch})"));
    }
    client.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Sessions and partitions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_clients_never_share_session_entries_or_loop_counts() {
    let shop = Shop::default();
    let server = guarded(
        &shop,
        AgentCacheSession::builder()
            .session_id("shop")
            .max_tool_repeats(3),
    );
    // One guard, two connections: each clone is a client of its own.
    let a = connect(server.clone()).await;
    let b = connect(server.clone()).await;
    let notes = json!({ "user_id": "sessions-u1" });

    let a1 = call(&a, "get-notes", notes.clone()).await;
    let a2 = call(&a, "get-notes", notes.clone()).await;
    let b1 = call(&b, "get-notes", notes.clone()).await;
    assert_eq!(a1, a2, "a hit in A's session");
    assert_eq!(text_of(&a1), "notes of sessions-u1 (fetch 1)");
    assert_eq!(
        text_of(&b1),
        "notes of sessions-u1 (fetch 2)",
        "B does not see A's entry"
    );

    // A loops on the same call; B's identical calls are counted in B's session only.
    call(&a, "get-notes", notes.clone()).await;
    let looped = call(&a, "get-notes", notes.clone()).await;
    assert!(is_error(&looped), "A's fourth identical call: {looped:?}");
    for _ in 0..2 {
        let result = call(&b, "get-notes", notes.clone()).await;
        assert!(!is_error(&result), "B made three calls only: {result:?}");
    }

    let sessions = server.sessions();
    let ids: Vec<&str> = sessions.iter().map(AgentCacheSession::id).collect();
    assert_eq!(ids, ["shop/connection-1", "shop/connection-2"]);
    let (ma, mb) = (sessions[0].metrics(), sessions[1].metrics());
    assert_eq!((ma.hits, ma.misses, ma.loop_detections), (2, 1, 1));
    assert_eq!((mb.hits, mb.misses, mb.loop_detections), (2, 1, 0));
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn calls_with_one_run_id_share_a_session_across_connections() {
    let shop = Shop::default();
    let server = guarded(&shop, AgentCacheSession::builder().max_tool_repeats(2));
    let (a, b) = (connect(server.clone()).await, connect(server.clone()).await);
    let in_run = |run: &str| {
        let mut params = params("get-notes", json!({ "user_id": "runs-u1" }));
        let mut meta = RequestMetaObject::new();
        meta.insert(agent_cache::rmcp::RUN_ID_META_KEY.to_owned(), json!(run));
        params.meta = Some(meta);
        params
    };

    let first = call_with(&a, in_run("run-7")).await;
    let second = call_with(&b, in_run("run-7")).await;
    assert_eq!(second, first, "one session: B's call is a hit on A's entry");
    let looped = call_with(&a, in_run("run-7")).await;
    assert!(
        is_error(&looped),
        "the third identical call of the run: {looped:?}"
    );
    let other_run = call_with(&b, in_run("run-8")).await;
    assert!(!is_error(&other_run));
    assert_eq!(
        text_of(&other_run),
        "notes of runs-u1 (fetch 2)",
        "another run, another session"
    );
    assert!(
        server
            .sessions()
            .iter()
            .any(|session| session.id() == "run:run-7")
    );
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn extractors_are_not_part_of_the_key_and_a_partition_keeps_users_apart() {
    let as_user = |user: &str| {
        let mut params = CallToolRequestParams::new("get_profile");
        let mut meta = RequestMetaObject::new();
        meta.insert("user".to_owned(), json!(user));
        params.meta = Some(meta);
        params
    };

    // Unpartitioned, a global read whose result depends on an extractor serves the first
    // caller's result to the next: what the partition is for.
    let shop = Shop::default();
    let client = connect(guarded(&shop, AgentCacheSession::builder())).await;
    let alice = call_with(&client, as_user("alice")).await;
    let bob = call_with(&client, as_user("bob")).await;
    assert_eq!(text_of(&alice), "profile of alice");
    assert_eq!(
        text_of(&bob),
        "profile of alice",
        "the key left the caller out"
    );
    client.cancel().await.unwrap();

    let shop = Shop::default();
    let server = guarded(&shop, AgentCacheSession::builder()).partition_by(caller);
    let (a, b) = (connect(server.clone()).await, connect(server.clone()).await);
    let carol = call_with(&a, as_user("carol")).await;
    let dave = call_with(&b, as_user("dave")).await;
    let carol_again = call_with(&b, as_user("carol")).await;
    assert_eq!(text_of(&carol), "profile of carol");
    assert_eq!(
        text_of(&dave),
        "profile of dave",
        "never another user's result"
    );
    assert_eq!(
        carol_again, carol,
        "carol's entry serves carol, on any connection"
    );
    assert_eq!(shop.backend.calls("get_profile"), 2);
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Loops, as the client sees them
// ---------------------------------------------------------------------------------------------

/// The loop report of a halted call: its kind, and that the text says what to do.
fn assert_halted(result: &CallToolResult, kind: &str, tool: &str) {
    assert!(is_error(result), "a tool error: {result:?}");
    let text = text_of(result);
    assert!(
        text.starts_with(&format!("Loop detected ({kind})")),
        "{text}"
    );
    assert!(text.contains(tool), "{text}");
    assert!(text.contains("the tool did not run"), "{text}");
    let report = loop_report(result).expect("a loop report in _meta");
    assert_eq!(report["kind"], json!(kind.replace(' ', "_")));
    assert_eq!(report["tool"], json!(tool));
    assert_eq!(report["action"], json!("halted"));
    assert!(result.meta.as_ref().unwrap().contains_key(LOOP_META_KEY));
}

#[tokio::test]
async fn a_repeat_is_a_tool_error_that_says_to_use_the_result_already_given() {
    let shop = Shop::default();
    let client = connect(guarded(
        &shop,
        AgentCacheSession::builder().max_tool_repeats(3),
    ))
    .await;
    let search = json!({ "query": "loop-repeat" });
    for _ in 0..3 {
        assert!(!is_error(&call(&client, "search", search.clone()).await));
    }
    let looped = call(&client, "search", search.clone()).await;
    assert_halted(&looped, "repeat", "search");
    assert!(
        text_of(&looped).contains("use the result you already have"),
        "{looped:?}"
    );
    assert_eq!(shop.backend.calls("search"), 1);
    // The next identical call continues the loop; a different one runs.
    assert!(is_error(&call(&client, "search", search).await));
    let other = call(&client, "search", json!({ "query": "loop-repeat-2" })).await;
    assert!(!is_error(&other));
    assert_eq!(shop.backend.calls("search"), 2);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_cycle_is_a_tool_error_naming_the_cycle_by_its_tools() {
    let shop = Shop::default();
    let client = connect(guarded(
        &shop,
        AgentCacheSession::builder().max_tool_repeats(100),
    ))
    .await;
    let (check, update) = (
        json!({ "sku": "loop-cycle" }),
        json!({ "sku": "loop-cycle", "delta": -1 }),
    );
    call(&client, "check_stock", check.clone()).await;
    call(&client, "update_stock", update.clone()).await;
    let checked = call(&client, "check_stock", check.clone()).await;
    assert_eq!(
        text_of(&checked),
        "loop-cycle: 99",
        "re-read after the update"
    );
    let looped = call(&client, "update_stock", update.clone()).await;
    assert_halted(&looped, "cycle", "update_stock");
    assert!(
        text_of(&looped).contains("Cycle detected: check_stock -> update_stock"),
        "{looped:?}"
    );
    assert_eq!(
        loop_report(&looped).unwrap()["cycle"],
        json!(["check_stock", "update_stock"])
    );
    assert_eq!(
        shop.backend.calls("update_stock"),
        1,
        "the looping update did not run"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_execution_depth_is_a_tool_error_that_says_to_stop_calling_tools() {
    let shop = Shop::default();
    let client = connect(guarded(
        &shop,
        AgentCacheSession::builder().max_execution_depth(5),
    ))
    .await;
    for n in 0..5 {
        let result = call(
            &client,
            "get_cart",
            json!({ "user_id": format!("loop-depth-{n}") }),
        )
        .await;
        assert!(!is_error(&result));
    }
    let looped = call(&client, "get_cart", json!({ "user_id": "loop-depth-5" })).await;
    assert_halted(&looped, "depth", "get_cart");
    assert!(
        text_of(&looped).contains("answer with what you have"),
        "{looped:?}"
    );
    assert_eq!(shop.backend.calls("get_cart"), 5);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_retry_storm_is_a_tool_error_and_the_failing_call_stops_reaching_the_backend() {
    let shop = Shop::default();
    let client = connect(guarded(
        &shop,
        AgentCacheSession::builder().max_tool_repeats(10),
    ))
    .await;
    let charge = json!({ "order_id": "loop-storm", "amount": 99.99 });
    for attempt in 1..=3 {
        let result = call(&client, "charge", charge.clone()).await;
        assert!(is_error(&result));
        assert!(
            text_of(&result).starts_with("gateway timeout"),
            "attempt {attempt}: {result:?}"
        );
    }
    let looped = call(&client, "charge", charge).await;
    assert_halted(&looped, "retry storm", "charge");
    assert!(
        text_of(&looped).contains("do not retry it unchanged"),
        "{looped:?}"
    );
    assert_eq!(
        shop.backend.calls("charge"),
        3,
        "the fourth charge never reached the gateway"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_loop_in_one_client_leaves_the_server_serving_the_others() {
    let shop = Shop::default();
    let server = guarded(&shop, AgentCacheSession::builder().max_tool_repeats(1));
    let (looping, other) = (connect(server.clone()).await, connect(server.clone()).await);
    let cart = json!({ "user_id": "loop-others" });
    call(&looping, "get_cart", cart.clone()).await;
    assert!(is_error(&call(&looping, "get_cart", cart.clone()).await));
    let served = call(&other, "get_cart", cart.clone()).await;
    assert_eq!(
        text_of(&served),
        "loop-others: [] (fetch 1)",
        "a hit, served to the other client"
    );
    looping.cancel().await.unwrap();
    other.cancel().await.unwrap();
}

#[tokio::test]
async fn warn_serves_the_call_with_a_note_about_the_loop() {
    let shop = Shop::default();
    let sessions = AgentCacheSession::builder()
        .max_tool_repeats(1)
        .on_loop(OnLoop::Warn);
    let client = connect(guarded(&shop, sessions)).await;
    let cart = json!({ "user_id": "loop-warn" });
    let first = call(&client, "get_cart", cart.clone()).await;
    let warned = call(&client, "get_cart", cart).await;
    assert!(!is_error(&warned));
    assert_eq!(
        warned.content[0], first.content[0],
        "the result itself, unchanged"
    );
    let note = text_of(&warned);
    assert!(
        note.contains("Note from agent-cache: loop detected (repeat)"),
        "{note}"
    );
    assert!(note.contains("the call ran"), "{note}");
    assert_eq!(loop_report(&warned).unwrap()["action"], json!("warned"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn short_circuit_returns_the_cached_result_with_a_note_or_a_tool_error_without_one() {
    let shop = Shop::default();
    let sessions = AgentCacheSession::builder()
        .max_tool_repeats(1)
        .on_loop(OnLoop::ShortCircuit);
    let client = connect(guarded(&shop, sessions)).await;
    let cart = json!({ "user_id": "loop-short" });
    let first = call(&client, "get_cart", cart.clone()).await;
    let short = call(&client, "get_cart", cart).await;
    assert!(!is_error(&short));
    assert_eq!(short.content[0], first.content[0]);
    assert!(
        text_of(&short).contains("this is its cached result"),
        "{short:?}"
    );
    assert_eq!(
        loop_report(&short).unwrap()["action"],
        json!("short_circuited")
    );

    // A failing call has nothing cached to return.
    let flaky = json!({ "user_id": "loop-short" });
    assert!(is_error(&call(&client, "flaky", flaky.clone()).await));
    let halted = call(&client, "flaky", flaky).await;
    assert_halted(&halted, "repeat", "flaky");
    assert_eq!(shop.backend.calls("flaky"), 1);
    client.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// What clients are told about the tools
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cached_tools_are_listed_read_only_and_invalidators_not_read_only() {
    let shop = Shop::default();
    let client = connect(guarded(&shop, AgentCacheSession::builder())).await;
    let tools = within(client.list_all_tools()).await.unwrap();
    let hint = |name: &str| {
        let tool = tools
            .iter()
            .find(|tool| tool.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        tool.annotations.as_ref().and_then(|a| a.read_only_hint)
    };
    for read in [
        "get_cart",
        "get-notes",
        "search",
        "check_stock",
        "flaky",
        "get_profile",
    ] {
        assert_eq!(hint(read), Some(true), "{read}");
    }
    for write in ["add_to_cart", "update_stock", "charge"] {
        assert_eq!(hint(write), Some(false), "{write}");
    }
    let add = tools
        .iter()
        .find(|tool| tool.name == "add_to_cart")
        .unwrap();
    assert_eq!(
        add.annotations.as_ref().and_then(|a| a.title.as_deref()),
        Some("Add to cart"),
        "the annotations written are kept"
    );
    client.cancel().await.unwrap();
}
