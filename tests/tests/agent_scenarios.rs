//! The five real-world scenarios of the seed README ("Agent Cache" part), in Rust: an
//! e-commerce agent, customer support sessions, a research agent that loops on one search, an
//! inventory agent that oscillates, and a payment retry storm.
//!
//! Each scenario has its own tools and its own simulated backend, which counts every call it
//! receives, so that each test asserts what reached the backend, the session's metrics and the
//! outcome. Every `#[agent_cache]` function has one process-wide cache and tests run in parallel
//! in this binary, so no two tests share a tool or a global resource name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use agent_cache::{AgentCacheSession, LoopKind, OnLoop, agent_cache, agent_invalidator};

fn calls(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------------------
// 1. E-commerce shopping agent
// ---------------------------------------------------------------------------------------------

mod shop {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    pub(super) struct Cart {
        pub(super) items: Vec<String>,
        pub(super) total_cents: u64,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub(super) struct Product {
        pub(super) id: String,
        pub(super) price_cents: u64,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub(super) struct Receipt {
        pub(super) total_cents: u64,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub(super) enum ShopError {
        EmptyCart,
    }

    /// The shop's API: carts by user, a price list, and a count of every call.
    #[derive(Default)]
    pub(super) struct ShopApi {
        carts: Mutex<HashMap<String, Vec<String>>>,
        pub(super) get_cart: AtomicUsize,
        pub(super) get_product: AtomicUsize,
        pub(super) add_to_cart: AtomicUsize,
        pub(super) checkout: AtomicUsize,
    }

    pub(super) static API: LazyLock<ShopApi> = LazyLock::new(ShopApi::default);

    fn price(product_id: &str) -> u64 {
        match product_id {
            "laptop" => 129_999,
            "mouse" => 2_499,
            _ => 100,
        }
    }

    #[agent_cache(resource = "cart", scope = "global", ttl = 120)]
    pub(super) async fn get_cart(user_id: &str) -> Cart {
        API.get_cart.fetch_add(1, Ordering::SeqCst);
        let items = API
            .carts
            .lock()
            .unwrap()
            .get(user_id)
            .cloned()
            .unwrap_or_default();
        let total_cents = items.iter().map(|item| price(item)).sum();
        Cart { items, total_cents }
    }

    #[agent_cache(resource = "product", scope = "global", ttl = 300)]
    pub(super) async fn get_product(product_id: &str) -> Product {
        API.get_product.fetch_add(1, Ordering::SeqCst);
        Product {
            id: product_id.to_owned(),
            price_cents: price(product_id),
        }
    }

    #[agent_invalidator(resource = "cart", scope = "global")]
    pub(super) async fn add_to_cart(user_id: &str, product_id: &str) -> Result<(), ShopError> {
        API.add_to_cart.fetch_add(1, Ordering::SeqCst);
        API.carts
            .lock()
            .unwrap()
            .entry(user_id.to_owned())
            .or_default()
            .push(product_id.to_owned());
        Ok(())
    }

    #[agent_invalidator(resource = "cart", scope = "global")]
    pub(super) async fn checkout(user_id: &str) -> Result<Receipt, ShopError> {
        API.checkout.fetch_add(1, Ordering::SeqCst);
        let items = API
            .carts
            .lock()
            .unwrap()
            .remove(user_id)
            .ok_or(ShopError::EmptyCart)?;
        Ok(Receipt {
            total_cents: items.iter().map(|item| price(item)).sum(),
        })
    }
}

#[tokio::test]
async fn ecommerce_agent_caches_reads_and_never_serves_a_stale_cart_after_add_or_checkout() {
    use shop::*;

    let session = AgentCacheSession::builder().loop_detection(false).build();
    let (before_add, product, after_add, receipt, after_checkout) = session
        .run(async {
            let empty = get_cart("user_1").await; // fetched
            let again = get_cart("user_1").await; // a hit: no redundant fetch
            assert_eq!(empty, again);
            assert_eq!(
                calls(&API.get_cart),
                1,
                "the second read was served from cache"
            );

            let product = get_product("laptop").await; // fetched
            add_to_cart("user_1", "laptop").await.unwrap(); // invalidates the cart
            let after_add = get_cart("user_1").await; // re-fetched, correct total
            let receipt = checkout("user_1").await.unwrap(); // invalidates the cart
            let after_checkout = get_cart("user_1").await; // re-fetched: empty again
            (empty, product, after_add, receipt, after_checkout)
        })
        .await
        .expect("loop detection is off");

    assert_eq!(before_add.items, Vec::<String>::new());
    assert_eq!(product.id, "laptop");
    assert_eq!(after_add.items, ["laptop"]);
    assert_eq!(
        after_add.total_cents, product.price_cents,
        "the cart read after add_to_cart has the correct total"
    );
    assert_eq!(receipt.total_cents, product.price_cents);
    assert_eq!(
        after_checkout,
        Cart {
            items: vec![],
            total_cents: 0
        },
        "the cart read after checkout is not the stale one"
    );

    // The backend: three cart fetches (initial, after add, after checkout), one product fetch.
    assert_eq!(calls(&API.get_cart), 3);
    assert_eq!(calls(&API.get_product), 1);
    assert_eq!(calls(&API.add_to_cart), 1);
    assert_eq!(calls(&API.checkout), 1);

    let m = session.metrics();
    assert_eq!((m.hits, m.misses), (1, 4));
    assert_eq!(m.invalidations, 2);
    assert_eq!(m.loop_detections, 0);
    assert_eq!(m.tool_calls, 7);
    assert!((m.hit_rate - 0.2).abs() < 1e-9, "hit_rate {}", m.hit_rate);
    assert_eq!(m.invalidations_by_resource.get("cart"), Some(&2));
}

// ---------------------------------------------------------------------------------------------
// 2. Customer support agents, session-scoped
// ---------------------------------------------------------------------------------------------

/// A support desk's ticket API, with a count of every call.
#[derive(Default)]
struct SupportApi {
    status: Mutex<HashMap<String, String>>,
    get_ticket: AtomicUsize,
    update_ticket: AtomicUsize,
}

impl SupportApi {
    fn get(&self, ticket_id: &str) -> String {
        self.get_ticket.fetch_add(1, Ordering::SeqCst);
        let status = self.status.lock().unwrap();
        let status = status.get(ticket_id).map_or("open", String::as_str);
        format!("{ticket_id}: {status}")
    }

    fn update(&self, ticket_id: &str, status: &str) {
        self.update_ticket.fetch_add(1, Ordering::SeqCst);
        self.status
            .lock()
            .unwrap()
            .insert(ticket_id.to_owned(), status.to_owned());
    }
}

mod support {
    use super::*;

    pub(super) static API: LazyLock<SupportApi> = LazyLock::new(SupportApi::default);

    #[agent_cache(resource = "ticket", scope = "session")]
    pub(super) async fn get_ticket(ticket_id: &str) -> String {
        API.get(ticket_id)
    }

    #[agent_invalidator(resource = "ticket", scope = "session")]
    pub(super) async fn update_ticket(ticket_id: &str, status: &str) -> Result<(), String> {
        API.update(ticket_id, status);
        Ok(())
    }
}

#[tokio::test]
async fn support_agents_a_and_b_keep_separate_session_caches() {
    use support::*;

    let agent_a = AgentCacheSession::builder().session_id("agent-A").build();
    let tickets_a = agent_a
        .run(async {
            let first = get_ticket("T-100").await; // fetched, cached in A's session
            let hit = get_ticket("T-100").await; // a hit in A's session
            update_ticket("T-100", "in_progress").await.unwrap(); // invalidates A's cache
            let after_update = get_ticket("T-100").await; // re-fetched
            (first, hit, after_update)
        })
        .await
        .unwrap();
    assert_eq!(tickets_a.0, "T-100: open");
    assert_eq!(tickets_a.1, "T-100: open");
    assert_eq!(
        tickets_a.2, "T-100: in_progress",
        "A never reads its own stale ticket"
    );
    assert_eq!(calls(&API.get_ticket), 2);
    assert_eq!(calls(&API.update_ticket), 1);
    let a = agent_a.metrics();
    assert_eq!((a.hits, a.misses, a.invalidations), (1, 2, 1));
    assert_eq!(a.loop_detections, 0);

    let agent_b = AgentCacheSession::builder().session_id("agent-B").build();
    let ticket_b = agent_b
        .run(async { get_ticket("T-100").await })
        .await
        .unwrap();
    assert_eq!(
        ticket_b, "T-100: in_progress",
        "B sees no stale data from A"
    );
    assert_eq!(calls(&API.get_ticket), 3, "B fetched fresh");
    let b = agent_b.metrics();
    assert_eq!((b.hits, b.misses, b.invalidations), (0, 1, 0));
    // A's metrics did not move with B's work.
    assert_eq!(agent_a.metrics(), a);
}

mod support_concurrent {
    use super::*;

    pub(super) static API: LazyLock<SupportApi> = LazyLock::new(SupportApi::default);

    #[agent_cache(resource = "ticket", scope = "session")]
    pub(super) async fn get_ticket(ticket_id: &str) -> String {
        API.get(ticket_id)
    }

    #[agent_invalidator(resource = "ticket", scope = "session")]
    pub(super) async fn update_ticket(ticket_id: &str, status: &str) -> Result<(), String> {
        API.update(ticket_id, status);
        Ok(())
    }
}

#[tokio::test]
async fn support_agent_b_never_sees_entries_agent_a_holds_while_both_sessions_are_live() {
    use support_concurrent::*;
    use tokio::sync::Barrier;

    // Both sessions run at once, interleaved on this task, their steps ordered by a barrier.
    let barrier = Barrier::new(2);
    let agent_a = AgentCacheSession::builder().session_id("agent-A").build();
    let agent_b = AgentCacheSession::builder().session_id("agent-B").build();

    let run_a = agent_a.run(async {
        let first = get_ticket("T-200").await;
        update_ticket("T-200", "in_progress").await.unwrap();
        let second = get_ticket("T-200").await;
        barrier.wait().await; // A's entry is cached and A's session is live
        barrier.wait().await; // B has read
        (first, second)
    });
    let run_b = agent_b.run(async {
        barrier.wait().await;
        let ticket = get_ticket("T-200").await;
        let again = get_ticket("T-200").await;
        barrier.wait().await;
        (ticket, again)
    });
    let (a, b) = tokio::join!(run_a, run_b);
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(a, ("T-200: open".into(), "T-200: in_progress".into()));
    assert_eq!(
        b,
        ("T-200: in_progress".into(), "T-200: in_progress".into())
    );
    // A fetched twice; B fetched once for itself although A held a cached entry.
    assert_eq!(calls(&API.get_ticket), 3);
    let (ma, mb) = (agent_a.metrics(), agent_b.metrics());
    assert_eq!((ma.hits, ma.misses, ma.invalidations), (0, 2, 1));
    assert_eq!((mb.hits, mb.misses, mb.invalidations), (1, 1, 0));
}

// ---------------------------------------------------------------------------------------------
// 3. Research agent: preventing search loops
// ---------------------------------------------------------------------------------------------

/// A search engine and a web server that count their requests.
#[derive(Default)]
struct ResearchApi {
    search: AtomicUsize,
    fetch_page: AtomicUsize,
}

mod research {
    use super::*;

    pub(super) static API: LazyLock<ResearchApi> = LazyLock::new(ResearchApi::default);

    #[agent_cache(resource = "search", scope = "global", ttl = 600)]
    pub(super) async fn search_web(query: &str) -> Vec<String> {
        API.search.fetch_add(1, Ordering::SeqCst);
        vec![
            format!("https://example.org/{}", query.replace(' ', "-")),
            "https://example.org/tokio".to_owned(),
        ]
    }

    #[agent_cache(resource = "page", scope = "global", ttl = 600)]
    pub(super) async fn fetch_page(url: &str) -> String {
        API.fetch_page.fetch_add(1, Ordering::SeqCst);
        format!("<html>{url}</html>")
    }
}

#[tokio::test]
async fn research_agent_repeating_one_search_is_halted_on_the_fourth_call_with_one_backend_search()
{
    use research::*;

    let session = AgentCacheSession::builder()
        .session_id("researcher")
        .max_tool_repeats(3)
        .max_execution_depth(20)
        .on_loop(OnLoop::Raise)
        .build();
    let looped = AtomicUsize::new(0);
    let after_loop = AtomicBool::new(false);
    let outcome = session
        .run(async {
            let results = search_web("async python caching").await; // fetched
            let again = search_web("async python caching").await; // a hit
            assert_eq!(results, again);
            let page = fetch_page(&results[0]).await;
            assert!(page.contains("async-python-caching"));
            // The confused agent searches the same thing again and again.
            loop {
                search_web("async python caching").await;
                looped.fetch_add(1, Ordering::SeqCst);
                if looped.load(Ordering::SeqCst) == 10 {
                    break;
                }
            }
            after_loop.store(true, Ordering::SeqCst);
        })
        .await;

    let error = outcome.expect_err("the fourth identical search halts the workflow");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(error.tool(), "search_web");
    assert_eq!(error.session_id(), "researcher");
    assert!(error.message().contains("search_web"), "{error}");
    assert_eq!(
        looped.load(Ordering::SeqCst),
        1,
        "the third search returned, the fourth did not"
    );
    assert!(
        !after_loop.load(Ordering::SeqCst),
        "nothing after the loop ran"
    );
    assert_eq!(
        calls(&API.search),
        1,
        "one real search; the rest were hits or halted"
    );
    assert_eq!(calls(&API.fetch_page), 1);

    let m = session.metrics();
    assert_eq!((m.hits, m.misses), (2, 2));
    assert_eq!(
        m.tool_calls, 5,
        "the halted call was asked for, so it counts"
    );
    assert_eq!(m.loop_detections, 1);
    assert_eq!(m.loop_detections_by_kind.repeat, 1);
}

mod research_depth {
    use super::*;

    pub(super) static API: LazyLock<ResearchApi> = LazyLock::new(ResearchApi::default);

    #[agent_cache(resource = "search_depth", scope = "global", ttl = 600)]
    pub(super) async fn search_web(query: String) -> Vec<String> {
        API.search.fetch_add(1, Ordering::SeqCst);
        vec![format!("https://example.org/{query}")]
    }
}

#[tokio::test]
async fn research_agent_wandering_through_new_searches_is_halted_past_the_execution_depth() {
    use research_depth::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(3)
        .max_execution_depth(20)
        .on_loop(OnLoop::Raise)
        .build();
    let completed = AtomicUsize::new(0);
    let error = session
        .run(async {
            for refinement in 0..100 {
                search_web(format!("async caching, refinement {refinement}")).await;
                completed.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .expect_err("the 21st call exceeds max_execution_depth = 20");
    assert_eq!(error.kind(), LoopKind::Depth);
    assert_eq!(error.tool(), "search_web");
    assert_eq!(completed.load(Ordering::SeqCst), 20);
    assert_eq!(
        calls(&API.search),
        20,
        "the 21st search never reached the backend"
    );
    let m = session.metrics();
    assert_eq!(m.loop_detections_by_kind.depth, 1);
    assert_eq!(m.loop_detections, 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Inventory management agent: oscillation detection
// ---------------------------------------------------------------------------------------------

mod inventory {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    pub(super) struct InventoryError;

    /// Stock levels and a count of every call.
    pub(super) struct InventoryApi {
        pub(super) stock: Mutex<i64>,
        pub(super) get_stock: AtomicUsize,
        pub(super) adjust: AtomicUsize,
    }

    pub(super) static API: InventoryApi = InventoryApi {
        stock: Mutex::new(100),
        get_stock: AtomicUsize::new(0),
        adjust: AtomicUsize::new(0),
    };

    #[agent_cache(resource = "stock", scope = "global")]
    pub(super) async fn check_stock(item_id: &str) -> i64 {
        API.get_stock.fetch_add(1, Ordering::SeqCst);
        assert_eq!(item_id, "SKU-42");
        *API.stock.lock().unwrap()
    }

    #[agent_invalidator(resource = "stock", scope = "global")]
    pub(super) async fn update_stock(item_id: &str, delta: i64) -> Result<i64, InventoryError> {
        API.adjust.fetch_add(1, Ordering::SeqCst);
        assert_eq!(item_id, "SKU-42");
        let mut stock = API.stock.lock().unwrap();
        *stock += delta;
        Ok(*stock)
    }
}

#[tokio::test]
async fn inventory_agent_oscillating_between_check_and_update_is_halted_as_a_cycle() {
    use inventory::*;

    let session = AgentCacheSession::builder()
        .session_id("inventory-agent")
        .max_tool_repeats(100)
        .on_loop(OnLoop::Raise)
        .build();
    let seen = Mutex::new(Vec::new());
    let after_cycle = AtomicBool::new(false);
    let error = session
        .run(async {
            let record = |stock: i64| seen.lock().unwrap().push(stock);
            record(check_stock("SKU-42").await);
            record(update_stock("SKU-42", -1).await.unwrap());
            record(check_stock("SKU-42").await);
            record(update_stock("SKU-42", -1).await.unwrap());
            after_cycle.store(true, Ordering::SeqCst);
        })
        .await
        .expect_err("check, update, check, update is a cycle");

    assert_eq!(error.kind(), LoopKind::Cycle);
    assert!(
        error
            .message()
            .contains("Cycle detected: check_stock -> update_stock"),
        "message: {}",
        error.message()
    );
    assert!(
        error
            .to_string()
            .contains("Cycle detected: check_stock -> update_stock")
    );
    assert_eq!(error.cycle(), ["check_stock", "update_stock"]);
    assert_eq!(error.tool(), "update_stock");
    assert_eq!(error.session_id(), "inventory-agent");

    // Check (100), update (99), check re-fetched after the update (99); the second update did
    // not run.
    assert_eq!(*seen.lock().unwrap(), [100, 99, 99]);
    assert!(!after_cycle.load(Ordering::SeqCst));
    assert_eq!(calls(&API.adjust), 1, "the looping update did not run");
    assert_eq!(calls(&API.get_stock), 2);
    assert_eq!(*API.stock.lock().unwrap(), 99);

    let m = session.metrics();
    assert_eq!((m.hits, m.misses, m.invalidations), (0, 2, 1));
    assert_eq!(m.loop_detections, 1);
    assert_eq!(m.loop_detections_by_kind.cycle, 1);
    assert_eq!(m.tool_calls, 4);
}

// ---------------------------------------------------------------------------------------------
// 5. Multi-API orchestrator: retry storm detection
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct PaymentError(&'static str);

/// A payment provider that fails the first `failures` charges, and counts every charge.
struct PaymentApi {
    charges: AtomicUsize,
    failures: usize,
}

impl PaymentApi {
    fn charge(&self, order_id: &str, amount: f64) -> Result<String, PaymentError> {
        let attempt = self.charges.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt <= self.failures {
            Err(PaymentError("gateway timeout"))
        } else {
            Ok(format!("charged {order_id} {amount:.2}"))
        }
    }
}

mod payments_down {
    use super::*;

    pub(super) static API: PaymentApi = PaymentApi {
        charges: AtomicUsize::new(0),
        failures: usize::MAX,
    };

    #[agent_invalidator(resource = "payment", scope = "global")]
    pub(super) async fn charge_payment(
        order_id: &str,
        amount: f64,
    ) -> Result<String, PaymentError> {
        API.charge(order_id, amount)
    }
}

#[tokio::test]
async fn payment_retry_storm_is_halted_after_the_third_failure_before_the_fourth_charge() {
    use payments_down::*;

    let session = AgentCacheSession::builder()
        .session_id("orchestrator")
        .max_tool_repeats(3)
        .on_loop(OnLoop::Raise)
        .build();
    let attempts = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::new());
    let error = session
        .run(async {
            for _attempt in 0..10 {
                attempts.fetch_add(1, Ordering::SeqCst);
                match charge_payment("ORD-1", 99.99).await {
                    Ok(_) => break,
                    Err(error) => {
                        errors.lock().unwrap().push(error);
                        continue;
                    }
                }
            }
        })
        .await
        .expect_err("the fourth attempt is a retry storm");

    assert_eq!(error.kind(), LoopKind::RetryStorm);
    assert_eq!(error.tool(), "charge_payment");
    assert_eq!(error.session_id(), "orchestrator");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        4,
        "the fourth attempt began..."
    );
    assert_eq!(
        calls(&API.charges),
        3,
        "...but never reached the payment API"
    );
    assert_eq!(
        *errors.lock().unwrap(),
        vec![PaymentError("gateway timeout"); 3],
        "each failure came back to the agent unchanged"
    );

    let m = session.metrics();
    assert_eq!(m.loop_detections, 1);
    assert_eq!(m.loop_detections_by_kind.retry_storm, 1);
    assert_eq!(m.invalidations, 3);
    assert_eq!(m.tool_calls, 4);
}

mod payments_flaky {
    use super::*;

    pub(super) static API: PaymentApi = PaymentApi {
        charges: AtomicUsize::new(0),
        failures: 2,
    };

    #[agent_invalidator(resource = "payment_flaky", scope = "global")]
    pub(super) async fn charge_payment(
        order_id: &str,
        amount: f64,
    ) -> Result<String, PaymentError> {
        API.charge(order_id, amount)
    }
}

#[tokio::test]
async fn payment_api_that_recovers_on_the_third_attempt_is_not_a_retry_storm() {
    use payments_flaky::*;

    let session = AgentCacheSession::builder()
        .max_tool_repeats(3)
        .on_loop(OnLoop::Raise)
        .build();
    let receipt = session
        .run(async {
            for _attempt in 0..10 {
                match charge_payment("ORD-2", 10.0).await {
                    Ok(receipt) => return Some(receipt),
                    Err(_) => continue,
                }
            }
            None
        })
        .await
        .expect("two failures and a success are legitimate retries");
    assert_eq!(receipt.as_deref(), Some("charged ORD-2 10.00"));
    assert_eq!(calls(&API.charges), 3);
    assert_eq!(session.metrics().loop_detections, 0);
}
