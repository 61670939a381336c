use agent_cache::agent_cache;

#[derive(Clone)]
struct Cart {
    items: Vec<String>,
}

// A shared tool's results live in Redis: `Cart` has no serde impls.
#[agent_cache(resource = "cart:{user_id}", shared = true)]
async fn get_cart(user_id: u64) -> Cart {
    let _ = user_id;
    Cart { items: Vec::new() }
}

fn main() {}
