use agent_cache::agent_cache;

#[agent_cache(scope = "session", ttl = 60)]
async fn get_ticket(id: u64) -> u64 {
    id
}

fn main() {}
