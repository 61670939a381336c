use agent_cache::agent_cache;

#[agent_cache(resource = "ticket", scope = "request")]
async fn get_ticket(id: u64) -> u64 {
    id
}

fn main() {}
