use agent_cache::agent_invalidator;

#[agent_invalidator(resource = "stock", ttl = 60)]
async fn update_stock(item_id: &str, delta: i64) -> Result<(), String> {
    let _ = (item_id, delta);
    Ok(())
}

fn main() {}
