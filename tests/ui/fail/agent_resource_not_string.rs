use agent_cache::agent_cache;

#[agent_cache(resource = cart)]
async fn get_cart(user_id: &str) -> usize {
    user_id.len()
}

fn main() {}
