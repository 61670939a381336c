//! The example MCP server as a person runs it (`cargo run -p examples --example mcp_server`),
//! driven by rmcp's own clients: as a child process over stdio, and as a process serving
//! streamable HTTP on a free loopback port, with legacy `Mcp-Session-Id` sessions and with
//! 2026-07-28 sessionless calls that keep a session by a run id in `_meta`. One more test
//! serves it in-process over HTTP, partitioned by a header.
//!
//! Every answer names the backend request that served it, so a hit is an answer that repeats
//! the request number of an earlier one.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use agent_cache::rmcp::{RUN_ID_META_KEY, by_header, loop_report};
use axum::http::{HeaderName, HeaderValue};
use examples::mcp::{self, Limits};
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion, RequestMetaObject};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

type Client = RunningService<RoleClient, ()>;

/// `cargo run` of the example, with `args`, from the workspace.
fn example(args: &[&str]) -> Command {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Command::new(env!("CARGO")).configure(|command| {
        command
            .args([
                "run",
                "--quiet",
                "--package",
                "examples",
                "--example",
                "mcp_server",
                "--",
            ])
            .args(args)
            .current_dir(&workspace);
    })
}

/// The example served over stdio to rmcp's child-process client.
async fn stdio_client() -> Client {
    let transport = TokioChildProcess::new(example(&[])).expect("cargo runs");
    within(().serve(transport))
        .await
        .expect("the client connects")
}

/// The example serving HTTP on a port the system picks, and its endpoint.
struct HttpServer {
    endpoint: String,
    _process: Child,
}

async fn http_server() -> HttpServer {
    let mut process = example(&["--http", "--port", "0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cargo runs");
    let stdout = process.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = within(lines.next_line())
        .await
        .expect("the server prints its address")
        .expect("a line");
    let endpoint = line
        .rsplit(' ')
        .next()
        .filter(|endpoint| endpoint.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("not an address: {line:?}"))
        .to_owned();
    HttpServer {
        endpoint,
        _process: process,
    }
}

/// A legacy client (initialize, then an `Mcp-Session-Id` session).
async fn legacy_client(endpoint: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(endpoint.to_owned());
    within(().serve(transport))
        .await
        .expect("the client connects")
}

/// A 2026-07-28 client: no initialize, no session, per-request metadata.
async fn sessionless_client(endpoint: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(endpoint.to_owned());
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    within(().serve_with_lifecycle(transport, lifecycle))
        .await
        .expect("the client connects")
}

async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .expect("answered within 120 s (the first run may build the example)")
}

fn params(tool: &'static str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool).with_arguments(arguments.as_object().cloned().expect("object"))
}

fn in_run(mut params: CallToolRequestParams, run: &str) -> CallToolRequestParams {
    let mut meta = RequestMetaObject::new();
    meta.insert(RUN_ID_META_KEY.to_owned(), json!(run));
    params.meta = Some(meta);
    params
}

async fn call(client: &Client, params: CallToolRequestParams) -> CallToolResult {
    within(client.call_tool(params))
        .await
        .expect("a tool result")
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The backend request an answer names (`backend request #7`, or a cart's field).
fn request_of(result: &CallToolResult) -> u64 {
    if let Some(cart) = &result.structured_content {
        return cart["backend_request"].as_u64().expect("a cart");
    }
    let text = text_of(result);
    let number = text
        .rsplit("backend request #")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').parse().ok());
    number.unwrap_or_else(|| panic!("no backend request in {text:?}"))
}

fn is_loop(result: &CallToolResult, kind: &str) -> bool {
    result.is_error == Some(true)
        && text_of(result).starts_with(&format!("Loop detected ({kind})"))
        && loop_report(result).is_some()
}

#[tokio::test]
async fn over_stdio_the_scenarios_are_cached_invalidated_and_their_loops_stopped() {
    let client = stdio_client().await;

    let tools = within(client.list_all_tools()).await.unwrap();
    assert_eq!(
        tools.len(),
        12,
        "{:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let read_only = |name: &str| {
        let tool = tools.iter().find(|tool| tool.name == name).unwrap();
        tool.annotations.as_ref().and_then(|a| a.read_only_hint)
    };
    assert_eq!(read_only("get_cart"), Some(true));
    assert_eq!(read_only("add_to_cart"), Some(false));

    // 1. E-commerce: the cart is a hit until a write, then fetched again.
    let cart = || params("get_cart", json!({ "user_id": "u1" }));
    let first = call(&client, cart()).await;
    let hit = call(&client, cart()).await;
    assert_eq!(request_of(&hit), request_of(&first), "a hit");
    call(
        &client,
        params(
            "add_to_cart",
            json!({ "user_id": "u1", "product_id": "laptop" }),
        ),
    )
    .await;
    let after = call(&client, cart()).await;
    assert!(
        request_of(&after) > request_of(&first),
        "fetched after the write"
    );
    assert_eq!(
        after.structured_content.as_ref().unwrap()["items"],
        json!(["laptop"])
    );
    let order = call(&client, params("checkout", json!({ "user_id": "u1" }))).await;
    assert!(
        text_of(&order).contains("placed the order of 1 item(s)"),
        "{order:?}"
    );
    let emptied = call(&client, cart()).await;
    assert_eq!(
        emptied.structured_content.as_ref().unwrap()["items"],
        json!([])
    );

    // 2. Support: a session-scoped read, invalidated in the session.
    let ticket = || params("get_ticket", json!({ "ticket_id": "T-100" }));
    let open = call(&client, ticket()).await;
    assert_eq!(
        request_of(&call(&client, ticket()).await),
        request_of(&open)
    );
    call(
        &client,
        params(
            "update_ticket",
            json!({ "ticket_id": "T-100", "status": "in_progress" }),
        ),
    )
    .await;
    assert!(text_of(&call(&client, ticket()).await).starts_with("T-100: in_progress"));

    // 3. Research: the fourth identical search is stopped (max_tool_repeats = 3).
    let search = || params("search_web", json!({ "query": "async rust caching" }));
    for _ in 0..3 {
        assert_eq!(call(&client, search()).await.is_error, Some(false));
    }
    let looped = call(&client, search()).await;
    assert!(is_loop(&looped, "repeat"), "{looped:?}");

    // 4. Inventory: check, update, check, update is a cycle; the second update is stopped.
    let check = || params("check_stock", json!({ "item_id": "SKU-42" }));
    let update = || params("update_stock", json!({ "item_id": "SKU-42", "delta": -1 }));
    call(&client, check()).await;
    call(&client, update()).await;
    assert!(text_of(&call(&client, check()).await).starts_with("SKU-42: 99 in stock"));
    let cycle = call(&client, update()).await;
    assert!(is_loop(&cycle, "cycle"), "{cycle:?}");
    assert!(text_of(&cycle).contains("Cycle detected: check_stock -> update_stock"));
    // Checking again would continue the cycle: it is stopped too.
    assert!(is_loop(&call(&client, check()).await, "cycle"));

    // 5. Payment: three failures, then the retry storm is stopped before a fourth charge.
    let charge = || {
        params(
            "charge_payment",
            json!({ "order_id": "ORD-1", "amount": 99.99 }),
        )
    };
    for _ in 0..3 {
        let failed = call(&client, charge()).await;
        assert!(
            text_of(&failed).starts_with("payment gateway timeout"),
            "{failed:?}"
        );
    }
    let storm = call(&client, charge()).await;
    assert!(is_loop(&storm, "retry storm"), "{storm:?}");

    let stats = call(&client, CallToolRequestParams::new("cache_stats")).await;
    let stats = stats.structured_content.expect("metrics");
    assert_eq!(stats["loop_detections"], json!(4), "{stats}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn over_http_each_legacy_session_is_a_client_of_its_own() {
    let server = http_server().await;
    let (a, b) = (
        legacy_client(&server.endpoint).await,
        legacy_client(&server.endpoint).await,
    );

    // Session-scoped entries: B never gets A's.
    let ticket = || params("get_ticket", json!({ "ticket_id": "T-7" }));
    let a1 = call(&a, ticket()).await;
    assert_eq!(
        request_of(&call(&a, ticket()).await),
        request_of(&a1),
        "a hit in A's session"
    );
    let b1 = call(&b, ticket()).await;
    assert_ne!(request_of(&b1), request_of(&a1), "B fetched its own");

    // Loop detection: A's fourth identical search is stopped, B's third is not.
    let search = || params("search_web", json!({ "query": "legacy sessions" }));
    for _ in 0..3 {
        call(&a, search()).await;
    }
    assert!(is_loop(&call(&a, search()).await, "repeat"));
    for _ in 0..3 {
        let result = call(&b, search()).await;
        assert_eq!(result.is_error, Some(false), "B's own count: {result:?}");
    }
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn over_sessionless_http_a_run_id_in_meta_keeps_one_session_across_calls() {
    let server = http_server().await;
    let client = sessionless_client(&server.endpoint).await;
    let search = || params("search_web", json!({ "query": "sessionless" }));

    // Each call without a run id is a session of its own: cached globally, but no call
    // sees another, so repeats are not counted.
    let first = call(&client, search()).await;
    for _ in 0..4 {
        let result = call(&client, search()).await;
        assert_eq!(result.is_error, Some(false), "{result:?}");
        assert_eq!(request_of(&result), request_of(&first), "a hit");
    }

    // With a run id, the calls of the run are one session.
    for _ in 0..3 {
        assert_eq!(
            call(&client, in_run(search(), "run-1")).await.is_error,
            Some(false)
        );
    }
    let looped = call(&client, in_run(search(), "run-1")).await;
    assert!(is_loop(&looped, "repeat"), "{looped:?}");
    assert_eq!(loop_report(&looped).unwrap()["session"], json!("run:run-1"));
    let other_run = call(&client, in_run(search(), "run-2")).await;
    assert_eq!(
        other_run.is_error,
        Some(false),
        "another run: {other_run:?}"
    );

    // A run's session-scoped entries span its calls, and no other run sees them.
    let ticket = || params("get_ticket", json!({ "ticket_id": "T-9" }));
    let cached = call(&client, in_run(ticket(), "run-3")).await;
    assert_eq!(
        request_of(&call(&client, in_run(ticket(), "run-3")).await),
        request_of(&cached)
    );
    assert_ne!(
        request_of(&call(&client, in_run(ticket(), "run-4")).await),
        request_of(&cached)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn over_http_a_guard_partitioned_by_a_header_never_serves_one_user_anothers_entry() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = mcp::endpoint(listener.local_addr().unwrap());
    let server = mcp::guard(Limits::default()).partition_by(by_header("x-user"));
    tokio::spawn(mcp::serve_http(listener, server));

    let as_user = |user: &'static str| {
        let headers = HashMap::from([(
            HeaderName::from_static("x-user"),
            HeaderValue::from_static(user),
        )]);
        let config =
            StreamableHttpClientTransportConfig::with_uri(endpoint.clone()).custom_headers(headers);
        ().serve(StreamableHttpClientTransport::from_config(config))
    };
    let alice = within(as_user("alice")).await.unwrap();
    let bob = within(as_user("bob")).await.unwrap();
    let cart = || params("get_cart", json!({ "user_id": "shared-id" }));

    let alices = call(&alice, cart()).await;
    let bobs = call(&bob, cart()).await;
    assert_ne!(
        request_of(&bobs),
        request_of(&alices),
        "bob is not served alice's entry"
    );
    assert_eq!(
        request_of(&call(&alice, cart()).await),
        request_of(&alices),
        "alice's own hit"
    );
    assert_eq!(
        request_of(&call(&bob, cart()).await),
        request_of(&bobs),
        "bob's own hit"
    );
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}
