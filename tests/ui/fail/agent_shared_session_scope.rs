use agent_cache::agent_cache;

#[agent_cache(resource = "ticket", scope = "session", shared = true)]
async fn get_ticket(id: u64) -> String {
    format!("ticket {id}")
}

fn main() {}
