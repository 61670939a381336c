//! The five real-world agent scenarios of the seed README, as runnable workflows that record
//! what the cache and the loop detector did at each tool call.
//!
//! [`run_with_limits`] runs a scenario in a session with loop-detection limits of the
//! caller's choosing, and [`run_script`] runs a sequence of calls to the same tools typed by
//! a user (the dashboard's agent playground).
//!
//! Each run uses fresh ids (`user-1#3` on the third run), so its narrative is the same every
//! time even though global-scope caches outlive a session, as they do in production.

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agent_cache::{AgentCacheSession, AgentMetrics, OnLoop};
use serde::Serialize;

mod limits;
mod script;
mod timeline;
mod tools;

use timeline::{BACKEND_CALLS, Timeline, fresh};
use tools::{
    add_to_cart, charge_payment, check_stock, checkout, fetch_page, get_cart, get_product,
    get_ticket, search_web, update_stock, update_ticket,
};

pub use limits::{ON_LOOP_NAMES, SessionLimits, parse_on_loop};
pub use script::{
    MAX_SCRIPT_CALLS, ScriptError, TOOLS, ToolCall, ToolSpec, parse_script, run_script,
};

/// Simulated backend latency.
const LATENCY: Duration = Duration::from_millis(15);

/// What happened at one tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Marker {
    /// Served from the cache.
    Hit,
    /// Ran the tool (and cached its value).
    Miss,
    /// A mutation that invalidated cached reads.
    Invalidation,
    /// The call completed a loop and the workflow halted there.
    LoopDetected,
    /// The call completed a loop that was only logged (`OnLoop::Warn`).
    LoopWarned,
    /// The tool returned an error.
    Error,
}

/// One tool call in a scenario's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// The call, as the agent made it.
    pub call: String,
    /// What the cache or the loop detector did.
    pub marker: Marker,
    /// The tool's result, or the loop report.
    pub detail: String,
}

/// A finished scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Its title.
    pub title: &'static str,
    /// Every tool call, in order.
    pub steps: Vec<Step>,
    /// `Ok` with a summary, or the loop that halted it.
    pub outcome: Result<String, String>,
    /// The session's metrics.
    pub metrics: AgentMetrics,
    /// Calls that reached the simulated backends.
    pub backend_calls: u64,
}

/// The scenarios, by name, for menus and the dashboard.
pub const NAMES: [&str; 5] = ["ecommerce", "support", "research", "inventory", "payment"];

/// Runs a scenario by name, with the loop-detection limits it was written for.
pub async fn run(name: &str) -> Option<Report> {
    run_with_limits(name, None).await
}

/// Runs a scenario by name in sessions with `limits` (its own when `None`).
pub async fn run_with_limits(name: &str, limits: Option<SessionLimits>) -> Option<Report> {
    Some(match name {
        "ecommerce" => ecommerce_with(limits).await,
        "support" => support_with(limits).await,
        "research" => research_with(limits).await,
        "inventory" => inventory_with(limits).await,
        "payment" => payment_with(limits).await,
        _ => return None,
    })
}

// 1. E-commerce shopping agent.
/// An agent browses, adds a laptop to the cart and checks out: the cart is read from the
/// cache between mutations and re-fetched after each one, so the total is always right.
pub async fn ecommerce() -> Report {
    ecommerce_with(None).await
}

async fn ecommerce_with(limits: Option<SessionLimits>) -> Report {
    let backend_before = BACKEND_CALLS.load(Ordering::SeqCst);
    let timeline = Timeline::new(
        SessionLimits::apply(limits, AgentCacheSession::builder().loop_detection(false)).build(),
    );
    let (user, laptop) = (fresh("user_1"), fresh("laptop"));
    let t = &timeline;
    let workflow = async {
        t.call(format!("get_cart({user})"), get_cart(&user)).await;
        t.call(format!("get_product({laptop})"), get_product(&laptop))
            .await;
        t.call(format!("get_cart({user})"), get_cart(&user)).await;
        t.call(
            format!("add_to_cart({user}, {laptop})"),
            add_to_cart(&user, &laptop),
        )
        .await
        .ok();
        let cart = t.call(format!("get_cart({user})"), get_cart(&user)).await;
        t.call(format!("checkout({user})"), checkout(&user))
            .await
            .ok();
        cart
    };
    timeline
        .finish(
            "E-commerce shopping agent",
            backend_before,
            workflow,
            |cart| {
                format!(
                    "checked out {} item(s), total ${:.2} (re-fetched after add_to_cart)",
                    cart.items.len(),
                    cart.total_cents as f64 / 100.0
                )
            },
        )
        .await
}

// 2. Customer-support sessions A and B.
/// Agent A reads, updates and re-reads a ticket in its session; agent B then reads the same
/// ticket in a session of its own and never sees A's cached copy.
pub async fn support() -> Report {
    support_with(None).await
}

async fn support_with(limits: Option<SessionLimits>) -> Report {
    let backend_before = BACKEND_CALLS.load(Ordering::SeqCst);
    let ticket = fresh("T-100");
    let a = Timeline::new(
        SessionLimits::apply(limits, AgentCacheSession::builder().session_id("agent-A")).build(),
    );
    let t = &a;
    let workflow = async {
        t.call(format!("[A] get_ticket({ticket})"), get_ticket(&ticket))
            .await;
        t.call(format!("[A] get_ticket({ticket})"), get_ticket(&ticket))
            .await;
        t.call(
            format!("[A] update_ticket({ticket}, in_progress)"),
            update_ticket(&ticket, "in_progress"),
        )
        .await
        .ok();
        t.call(format!("[A] get_ticket({ticket})"), get_ticket(&ticket))
            .await
    };
    let mut report = a
        .finish(
            "Customer support, sessions A and B",
            backend_before,
            workflow,
            |t| t,
        )
        .await;
    let b = Timeline::new(
        SessionLimits::apply(limits, AgentCacheSession::builder().session_id("agent-B")).build(),
    );
    let t = &b;
    let workflow = async {
        t.call(format!("[B] get_ticket({ticket})"), get_ticket(&ticket))
            .await
    };
    let b = b.finish("", backend_before, workflow, |t| t).await;
    report.steps.extend(b.steps);
    report.backend_calls = b.backend_calls;
    report.outcome = Ok(format!(
        "agent A saw its own update; agent B fetched fresh ({} hit in A, {} in B)",
        report.metrics.hits, b.metrics.hits
    ));
    report
}

// 3. Research agent with a search loop.
/// A confused research agent searches the same query again and again: the repeats are cache
/// hits, and the fourth identical call is stopped (`max_tool_repeats = 3`).
pub async fn research() -> Report {
    research_with(None).await
}

async fn research_with(limits: Option<SessionLimits>) -> Report {
    let backend_before = BACKEND_CALLS.load(Ordering::SeqCst);
    let session = SessionLimits::apply(
        limits,
        AgentCacheSession::builder()
            .max_tool_repeats(3)
            .max_execution_depth(20)
            .on_loop(OnLoop::Raise),
    )
    .build();
    let timeline = Timeline::new(session);
    let query = fresh("async rust caching");
    let t = &timeline;
    let workflow = async {
        t.call(format!("search_web({query})"), search_web(&query))
            .await;
        t.call(
            "fetch_page(https://docs.rs/moka)".into(),
            fetch_page("https://docs.rs/moka"),
        )
        .await;
        for _ in 0..5 {
            t.call(format!("search_web({query})"), search_web(&query))
                .await;
        }
    };
    timeline
        .finish(
            "Research agent: a search loop",
            backend_before,
            workflow,
            |()| "finished".into(),
        )
        .await
}

// 4. Inventory oscillation.
/// A buggy planner oscillates between checking and updating stock; the cycle is caught on
/// its second turn, before the second update runs.
pub async fn inventory() -> Report {
    inventory_with(None).await
}

async fn inventory_with(limits: Option<SessionLimits>) -> Report {
    let backend_before = BACKEND_CALLS.load(Ordering::SeqCst);
    let session = SessionLimits::apply(
        limits,
        AgentCacheSession::builder()
            .max_tool_repeats(100)
            .on_loop(OnLoop::Raise),
    )
    .build();
    let timeline = Timeline::new(session);
    let sku = fresh("SKU-42");
    let t = &timeline;
    let workflow = async {
        for _ in 0..10 {
            t.call(format!("check_stock({sku})"), check_stock(&sku))
                .await;
            t.call(format!("update_stock({sku}, -1)"), update_stock(&sku, -1))
                .await
                .ok();
        }
    };
    timeline
        .finish(
            "Inventory agent: oscillation",
            backend_before,
            workflow,
            |()| "finished".into(),
        )
        .await
}

// 5. Payment retry storm.
/// An orchestrator retries a failing payment in a loop; the retry storm is stopped after the
/// third failure, before a fourth charge reaches the gateway.
pub async fn payment() -> Report {
    payment_with(None).await
}

async fn payment_with(limits: Option<SessionLimits>) -> Report {
    let backend_before = BACKEND_CALLS.load(Ordering::SeqCst);
    let session = SessionLimits::apply(
        limits,
        AgentCacheSession::builder()
            .max_tool_repeats(3)
            .on_loop(OnLoop::Raise),
    )
    .build();
    let timeline = Timeline::new(session);
    let order = fresh("ORD-1");
    let t = &timeline;
    let workflow = async {
        for _attempt in 0..10 {
            let charged = t
                .call(
                    format!("charge_payment({order}, 99.99)"),
                    charge_payment(&order, 99.99),
                )
                .await;
            if charged.is_ok() {
                break;
            }
        }
    };
    timeline
        .finish(
            "Multi-API orchestrator: a retry storm",
            backend_before,
            workflow,
            |()| "finished".into(),
        )
        .await
}
