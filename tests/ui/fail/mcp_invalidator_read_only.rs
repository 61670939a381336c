use agent_cache::agent_invalidator;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{schemars, tool, tool_router};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct AddArgs {
    user_id: String,
    item: String,
}

#[derive(Clone)]
struct Shop;

#[tool_router]
impl Shop {
    #[agent_invalidator(resource = "cart:{user_id}")]
    #[tool(description = "Add an item", annotations(read_only_hint))]
    async fn add_to_cart(&self, Parameters(args): Parameters<AddArgs>) -> String {
        args.item
    }
}

fn main() {}
