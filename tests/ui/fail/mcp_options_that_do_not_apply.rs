use agent_cache::{agent_cache, agent_invalidator};
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
    #[agent_cache(resource = "cart", skip_args = 1, key = 7, result = true, shared = true)]
    #[tool(description = "The user's cart")]
    async fn get_cart(&self, Parameters(args): Parameters<CartArgs>) -> String {
        args.user_id
    }

    #[agent_invalidator(resource = "cart", result = false)]
    #[tool(description = "Empty the cart")]
    async fn clear_cart(&self, Parameters(args): Parameters<CartArgs>) -> String {
        args.user_id
    }
}

fn main() {}
