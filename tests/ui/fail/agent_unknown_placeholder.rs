use agent_cache::agent_invalidator;

#[agent_invalidator(resource = ["orders", "cart:{user}"])]
async fn add_to_cart(user_id: &str, item: &str) -> Result<(), String> {
    let _ = (user_id, item);
    Ok(())
}

fn main() {}
