use agent_cache::agent_invalidator;

#[agent_invalidator(resource = ["cart:{user_id}", orders])]
async fn checkout(user_id: &str) -> Result<(), String> {
    let _ = user_id;
    Ok(())
}

fn main() {}
