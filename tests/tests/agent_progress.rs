//! Progress-aware repeats: a read repeated after its resources were invalidated is progress
//! (the agent reads again because something changed) and does not count toward
//! `max_tool_repeats`; the same read repeated with nothing changed is still a repeat, and
//! identical calls going round are still a cycle.
//!
//! Both sides of each rule are shown with the default limits (`max_tool_repeats = 5`,
//! `max_execution_depth = 50`) unless a test says otherwise. Every tool has one process-wide
//! cache and tests run in parallel, so each test has its own tools and resource names.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use agent_cache::{AgentCacheSession, LoopKind, agent_cache, agent_invalidator};

/// A shop backend: carts by user, and a count of every request it serves.
#[derive(Default)]
struct Shop {
    carts: Mutex<HashMap<String, Vec<String>>>,
    cart_reads: AtomicUsize,
    additions: AtomicUsize,
}

impl Shop {
    fn cart(&self, user: &str) -> Vec<String> {
        self.cart_reads.fetch_add(1, Ordering::SeqCst);
        self.carts
            .lock()
            .unwrap()
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    fn add(&self, user: &str, item: &str) {
        self.additions.fetch_add(1, Ordering::SeqCst);
        self.carts
            .lock()
            .unwrap()
            .entry(user.to_owned())
            .or_default()
            .push(item.to_owned());
    }

    fn reads(&self) -> usize {
        self.cart_reads.load(Ordering::SeqCst)
    }
}

mod filling {
    use super::*;

    pub(super) static SHOP: LazyLock<Shop> = LazyLock::new(Shop::default);

    #[agent_cache(resource = "progress_cart:{user}")]
    pub(super) async fn get_cart(user: &str) -> Vec<String> {
        SHOP.cart(user)
    }

    #[agent_invalidator(resource = "progress_cart:{user}")]
    pub(super) async fn add_to_cart(user: &str, item: &str) -> Result<(), String> {
        SHOP.add(user, item);
        Ok(())
    }
}

#[tokio::test]
async fn eight_rereads_of_a_cart_between_eight_different_additions_run_to_the_end() {
    use filling::*;

    let session = AgentCacheSession::builder().build(); // default limits
    let carts = session
        .run(async {
            let mut seen = vec![get_cart("u1").await];
            for item in 0..8 {
                add_to_cart("u1", &format!("item-{item}")).await.unwrap();
                seen.push(get_cart("u1").await); // the 2nd..9th read of the same cart
            }
            seen
        })
        .await
        .expect("every re-read followed a change: progress, not a loop");

    // Each read saw the cart as it was: fetched again after each addition, never stale.
    for (added, cart) in carts.iter().enumerate() {
        assert_eq!(cart.len(), added, "{cart:?}");
    }
    assert_eq!(
        SHOP.reads(),
        9,
        "nine reads, each after a change, each fetched"
    );
    assert_eq!(SHOP.additions.load(Ordering::SeqCst), 8);
    let m = session.metrics();
    assert_eq!(m.loop_detections, 0);
    assert_eq!((m.hits, m.misses, m.invalidations), (0, 9, 8));
}

mod idle {
    use super::*;

    pub(super) static SHOP: LazyLock<Shop> = LazyLock::new(Shop::default);

    #[agent_cache(resource = "progress_idle_cart:{user}")]
    pub(super) async fn get_cart(user: &str) -> Vec<String> {
        SHOP.cart(user)
    }

    #[agent_invalidator(resource = "progress_idle_cart:{user}")]
    pub(super) async fn add_to_cart(user: &str, item: &str) -> Result<(), String> {
        SHOP.add(user, item);
        Ok(())
    }
}

#[tokio::test]
async fn rereads_with_nothing_changed_are_still_a_repeat_on_the_sixth_read() {
    use idle::*;

    let session = AgentCacheSession::builder().build();
    let completed = AtomicUsize::new(0);
    let error = session
        .run(async {
            for _ in 0..9 {
                get_cart("u1").await;
                completed.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .expect_err("nothing changed between the reads");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(error.tool(), "get_cart");
    assert_eq!(completed.load(Ordering::SeqCst), 5, "max_tool_repeats = 5");
    assert_eq!(SHOP.reads(), 1, "the other four were hits");
}

mod neighbour {
    use super::*;

    pub(super) static SHOP: LazyLock<Shop> = LazyLock::new(Shop::default);

    #[agent_cache(resource = "progress_neighbour_cart:{user}")]
    pub(super) async fn get_cart(user: &str) -> Vec<String> {
        SHOP.cart(user)
    }

    #[agent_invalidator(resource = "progress_neighbour_cart:{user}")]
    pub(super) async fn add_to_cart(user: &str, item: &str) -> Result<(), String> {
        SHOP.add(user, item);
        Ok(())
    }
}

#[tokio::test]
async fn a_change_to_another_users_cart_is_no_progress_for_this_users_reads() {
    use neighbour::*;

    let session = AgentCacheSession::builder().build();
    let completed = AtomicUsize::new(0);
    let error = session
        .run(async {
            for item in 0..9 {
                get_cart("u7").await;
                completed.fetch_add(1, Ordering::SeqCst);
                // u8's cart changes; u7's does not.
                add_to_cart("u8", &format!("item-{item}")).await.unwrap();
            }
        })
        .await
        .expect_err("u7's cart never changed");
    assert_eq!(error.kind(), LoopKind::Repeat);
    assert_eq!(error.tool(), "get_cart");
    assert_eq!(completed.load(Ordering::SeqCst), 5);
    assert_eq!(
        SHOP.reads(),
        1,
        "u7's cart was fetched once, then served from the cache"
    );
}

mod same_item {
    use super::*;

    pub(super) static SHOP: LazyLock<Shop> = LazyLock::new(Shop::default);

    #[agent_cache(resource = "progress_same_cart:{user}")]
    pub(super) async fn get_cart(user: &str) -> Vec<String> {
        SHOP.cart(user)
    }

    #[agent_invalidator(resource = "progress_same_cart:{user}")]
    pub(super) async fn add_to_cart(user: &str, item: &str) -> Result<(), String> {
        SHOP.add(user, item);
        Ok(())
    }
}

#[tokio::test]
async fn adding_the_same_item_again_and_again_between_reads_is_still_a_cycle() {
    use same_item::*;

    let session = AgentCacheSession::builder().build();
    let error = session
        .run(async {
            for _ in 0..8 {
                get_cart("u1").await;
                add_to_cart("u1", "laptop").await.unwrap();
            }
        })
        .await
        .expect_err("identical calls going round");
    assert_eq!(error.kind(), LoopKind::Cycle);
    assert_eq!(error.cycle(), ["get_cart", "add_to_cart"]);
    assert_eq!(
        SHOP.additions.load(Ordering::SeqCst),
        1,
        "the second identical addition was stopped"
    );
}

mod inventory {
    use super::*;

    pub(super) static STOCK: Mutex<i64> = Mutex::new(100);
    pub(super) static UPDATES: AtomicUsize = AtomicUsize::new(0);

    #[agent_cache(resource = "progress_stock")]
    pub(super) async fn check_stock(item_id: &str) -> i64 {
        let _ = item_id;
        *STOCK.lock().unwrap()
    }

    #[agent_invalidator(resource = "progress_stock")]
    pub(super) async fn update_stock(item_id: &str, delta: i64) -> Result<i64, String> {
        let _ = item_id;
        UPDATES.fetch_add(1, Ordering::SeqCst);
        let mut stock = STOCK.lock().unwrap();
        *stock += delta;
        Ok(*stock)
    }
}

#[tokio::test]
async fn the_inventory_oscillation_is_still_caught_although_every_check_follows_an_update() {
    use inventory::*;

    // Default limits: each check after an update is progress for the repeat count, and the
    // oscillation is caught as a cycle on its second turn all the same.
    let session = AgentCacheSession::builder().build();
    let error = session
        .run(async {
            for _ in 0..10 {
                check_stock("SKU-42").await;
                update_stock("SKU-42", -1).await.unwrap();
            }
        })
        .await
        .expect_err("check, update, check, update");
    assert_eq!(error.kind(), LoopKind::Cycle);
    assert_eq!(
        error.message(),
        "Cycle detected: check_stock -> update_stock"
    );
    assert_eq!(
        UPDATES.load(Ordering::SeqCst),
        1,
        "the second update did not run"
    );
}

mod session_scoped {
    use super::*;

    pub(super) static TICKET_READS: AtomicUsize = AtomicUsize::new(0);

    #[agent_cache(resource = "progress_ticket", scope = "session")]
    pub(super) async fn get_ticket(id: u64) -> String {
        TICKET_READS.fetch_add(1, Ordering::SeqCst);
        format!("ticket {id}")
    }

    #[agent_invalidator(resource = "progress_ticket", scope = "session")]
    pub(super) async fn comment(id: u64, text: &str) -> Result<(), String> {
        let _ = (id, text);
        Ok(())
    }
}

#[tokio::test]
async fn a_session_scoped_invalidation_is_progress_for_that_sessions_reads() {
    use session_scoped::*;

    let session = AgentCacheSession::builder().max_tool_repeats(2).build();
    session
        .run(async {
            get_ticket(1).await;
            for n in 0..6 {
                comment(1, &format!("note {n}")).await.unwrap();
                get_ticket(1).await;
            }
        })
        .await
        .expect("each re-read followed a comment");
    assert_eq!(TICKET_READS.load(Ordering::SeqCst), 7);
    assert_eq!(session.metrics().loop_detections, 0);
}
