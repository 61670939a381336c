use agent_cache::{agent_cache, agent_invalidator};

#[agent_cache(resource = "stock", engine = "redis")]
async fn get_stock(item_id: &str) -> i64 {
    item_id.len() as i64
}

#[agent_invalidator(resource = "stock", engine = "moka")]
async fn update_stock(item_id: &str) {
    let _ = item_id;
}

fn main() {}
