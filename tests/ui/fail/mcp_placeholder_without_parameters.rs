use agent_cache::agent_cache;
use rmcp::{tool, tool_router};

#[derive(Clone)]
struct Shop;

#[tool_router]
impl Shop {
    #[agent_cache(resource = "orders:{user_id}")]
    #[tool(description = "Every order")]
    async fn list_orders(&self) -> String {
        String::new()
    }
}

fn main() {}
