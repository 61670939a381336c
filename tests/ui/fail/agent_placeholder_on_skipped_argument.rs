use agent_cache::agent_cache;

struct Db;

// `user_id` is left out of the key, so u2 would be served u1's cart.
#[agent_cache(resource = "cart:{user_id}", skip_args = 2)]
async fn get_cart(db: &Db, user_id: &str, page: u32) -> String {
    let _ = db;
    format!("{user_id}/{page}")
}

fn main() {}
