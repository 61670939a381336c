//! The expansion of the agent attributes on rmcp tools is clean under the strictest lint
//! settings a user may have: this file is compiled with `deny(warnings)` by `cargo test` and
//! with `clippy::pedantic` by CI's clippy run.
#![deny(warnings, missing_docs, clippy::pedantic)]

use agent_cache::{AgentCacheSession, agent_cache, agent_invalidator};
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData, schemars, tool, tool_router};
use serde::{Deserialize, Serialize};

/// A user.
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct UserArgs {
    /// Its id.
    pub user_id: String,
}

/// A cart.
#[derive(Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Cart {
    /// What is in it.
    pub items: Vec<String>,
}

/// A shop.
#[derive(Clone, Default)]
pub struct Shop;

#[tool_router(server_handler)]
impl Shop {
    /// A cached read with structured output.
    #[agent_cache(resource = "lint_cart:{user_id}", ttl = 60)]
    #[tool(description = "The cart")]
    async fn get_cart(&self, Parameters(args): Parameters<UserArgs>) -> Json<Cart> {
        Json(Cart {
            items: vec![args.user_id],
        })
    }

    /// A session-scoped read returning a `Result`, with an early return.
    #[agent_cache(resource = "lint_orders:{user_id}", scope = "session")]
    #[tool(description = "The orders")]
    async fn get_orders(
        &self,
        Parameters(args): Parameters<UserArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.user_id.is_empty() {
            return Err(ErrorData::invalid_params("no user", None));
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(
            args.user_id,
        )]))
    }

    /// An invalidator.
    #[agent_invalidator(resource = ["lint_cart:{user_id}", "lint_orders:{user_id}"])]
    #[tool(description = "Empty the cart")]
    async fn clear_cart(&self, params: Parameters<UserArgs>) -> Result<String, String> {
        Ok(params.0.user_id)
    }
}

#[tokio::test]
async fn the_guarded_server_is_built() {
    let server = agent_cache::rmcp::guard(Shop, AgentCacheSession::builder());
    assert!(server.sessions().is_empty());
    assert_eq!(
        Shop.clear_cart(Parameters(UserArgs {
            user_id: "u1".into()
        }))
        .await,
        Ok("u1".into())
    );
}
