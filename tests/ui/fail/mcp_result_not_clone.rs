use agent_cache::agent_cache;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use rmcp::{ErrorData, schemars, tool, tool_router};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct CartArgs {
    user_id: String,
}

/// A result rmcp can send, but not `Clone`.
struct CartView(String);

impl IntoCallToolResult for CartView {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(self.0)]).into())
    }
}

#[derive(Clone)]
struct Shop;

#[tool_router]
impl Shop {
    #[agent_cache(resource = "cart:{user_id}")]
    #[tool(description = "The user's cart")]
    async fn get_cart(&self, Parameters(args): Parameters<CartArgs>) -> CartView {
        CartView(args.user_id)
    }
}

fn main() {}
