use agent_cache::agent_cache;

#[agent_cache(resource = "search", time_to_live = 600)]
async fn search_web(query: &str) -> String {
    query.to_owned()
}

fn main() {}
