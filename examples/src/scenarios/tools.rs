//! The tools of the five scenarios, over simulated backends (shared by the scripted
//! sequences of the dashboard).

use std::sync::atomic::{AtomicU64, Ordering};

use agent_cache::{agent_cache, agent_invalidator};
use parking_lot::Mutex;

use super::timeline::backend;

// 1. E-commerce shopping agent.

#[derive(Clone, Debug)]
pub(super) struct Cart {
    pub(super) items: Vec<String>,
    pub(super) total_cents: u64,
}

pub(super) static CARTS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

#[agent_cache(resource = "cart", scope = "global", ttl = 120)]
pub(super) async fn get_cart(user_id: &str) -> Cart {
    let items: Vec<String> = CARTS
        .lock()
        .iter()
        .filter(|(user, _)| user == user_id)
        .map(|(_, item)| item.clone())
        .collect();
    let total_cents = 99_900 * items.len() as u64;
    backend(Cart { items, total_cents }).await
}

#[agent_cache(resource = "product", scope = "global", ttl = 300)]
pub(super) async fn get_product(product_id: &str) -> String {
    backend(format!("{product_id}: $999.00")).await
}

#[agent_invalidator(resource = "cart", scope = "global")]
pub(super) async fn add_to_cart(user_id: &str, product_id: &str) -> Result<(), String> {
    CARTS
        .lock()
        .push((user_id.to_owned(), product_id.to_owned()));
    backend(Ok(())).await
}

#[agent_invalidator(resource = "cart", scope = "global")]
pub(super) async fn checkout(user_id: &str) -> Result<String, String> {
    CARTS.lock().retain(|(user, _)| user != user_id);
    backend(Ok(format!("order placed for {user_id}"))).await
}

// 2. Customer-support sessions A and B.

#[agent_cache(resource = "ticket", scope = "session")]
pub(super) async fn get_ticket(ticket_id: &str) -> String {
    let status = TICKETS
        .lock()
        .iter()
        .rev()
        .find(|(id, _)| id == ticket_id)
        .map_or_else(|| "open".to_owned(), |(_, status)| status.clone());
    backend(format!("{ticket_id}: {status}")).await
}

pub(super) static TICKETS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

#[agent_invalidator(resource = "ticket", scope = "session")]
pub(super) async fn update_ticket(ticket_id: &str, status: &str) -> Result<(), String> {
    TICKETS
        .lock()
        .push((ticket_id.to_owned(), status.to_owned()));
    backend(Ok(())).await
}

// 3. Research agent with a search loop.

#[agent_cache(resource = "search", scope = "global", ttl = 600)]
pub(super) async fn search_web(query: &str) -> Vec<String> {
    backend(vec![
        format!("{query}: result 1"),
        format!("{query}: result 2"),
    ])
    .await
}

#[agent_cache(resource = "page", scope = "global", ttl = 600)]
pub(super) async fn fetch_page(url: &str) -> usize {
    backend(url.len() * 100).await
}

// 4. Inventory oscillation.

pub(super) static STOCK: AtomicU64 = AtomicU64::new(100);

#[agent_cache(resource = "stock", scope = "global")]
pub(super) async fn check_stock(item_id: &str) -> u64 {
    backend(STOCK.load(Ordering::SeqCst)).await
}

#[agent_invalidator(resource = "stock", scope = "global")]
pub(super) async fn update_stock(item_id: &str, delta: i64) -> Result<u64, String> {
    let stock = STOCK
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |stock| {
            stock.checked_add_signed(delta)
        })
        .map_err(|stock| format!("{item_id}: cannot apply {delta} to {stock}"))?
        .wrapping_add_signed(delta);
    backend(Ok(stock)).await
}

// 5. Payment retry storm.

#[agent_invalidator(resource = "payment", scope = "global")]
pub(super) async fn charge_payment(order_id: &str, amount: f64) -> Result<String, String> {
    backend(Err(format!(
        "PaymentError: gateway timeout charging {order_id} ${amount:.2}"
    )))
    .await
}
