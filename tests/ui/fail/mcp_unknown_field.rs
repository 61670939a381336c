use agent_cache::agent_cache;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{schemars, tool, tool_router};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct CartArgs {
    user_id: String,
}

#[derive(Clone)]
struct Shop;

#[tool_router]
impl Shop {
    #[agent_cache(resource = "cart:{user}")]
    #[tool(description = "The user's cart")]
    async fn get_cart(&self, Parameters(args): Parameters<CartArgs>) -> String {
        args.user_id
    }
}

fn main() {}
