//! Every shape an rmcp tool takes under the agent attributes compiles, serves through the
//! guard, and keeps its future `Send` (rmcp's router requires it).
use std::sync::Arc;

use agent_cache::{AgentCacheSession, agent_cache, agent_invalidator};
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Filter {
    region: String,
}

#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Search {
    user_id: u64,
    filter: Filter,
}

#[derive(Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Hits {
    hits: Vec<String>,
}

trait Catalogue: Send + Sync + 'static {
    fn name(&self) -> String;
}

#[derive(Clone)]
struct Books;

impl Catalogue for Books {
    fn name(&self) -> String {
        "books".into()
    }
}

#[derive(Clone)]
struct Shop<C: Catalogue> {
    catalogue: Arc<C>,
}

#[tool_router]
impl<C: Catalogue> Shop<C> {
    /// A doc comment is the description; a dotted placeholder names a nested field.
    #[agent_cache(resource = ["search:{user_id}:{filter.region}", "catalogue"], ttl = 0.5)]
    #[rmcp::tool]
    async fn search(&self, Parameters(args): Parameters<Search>) -> Json<Hits> {
        Json(Hits {
            hits: vec![format!("{}:{}:{}", self.catalogue.name(), args.user_id, args.filter.region)],
        })
    }

    /// Destructured, `mut`, with an extractor after it and `?` in the body.
    #[agent_cache(resource = "orders:{user_id}", scope = "session", maxsize = 10, engine = "moka")]
    #[tool(name = "list-orders", annotations(title = "Orders", read_only_hint = true))]
    async fn list_orders(
        &self,
        Parameters(Search { mut user_id, .. }): Parameters<Search>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<Hits>, String> {
        user_id += 1;
        let id: u64 = "7".parse().map_err(|_| "bad id".to_owned())?;
        let _ = context.id;
        Ok(Json(Hits { hits: vec![format!("{}", user_id + id)] }))
    }

    /// Bound whole, and no description at all.
    #[agent_cache(resource = "user:{user_id}")]
    #[tool]
    async fn profile(&self, params: Parameters<Search>) -> Result<CallToolResult, ErrorData> {
        if params.0.user_id == 0 {
            return Err(ErrorData::invalid_params("no user 0", None));
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(params.0.filter.region)]))
    }

    /// Raw arguments.
    #[agent_cache(resource = "raw")]
    #[tool(description = "Raw arguments")]
    async fn raw(&self, arguments: JsonObject) -> String {
        arguments.len().to_string()
    }

    /// No parameters.
    #[agent_cache(resource = "catalogue")]
    #[tool(description = "The catalogue's name")]
    async fn catalogue_name(&self) -> String {
        self.catalogue.name()
    }

    #[agent_invalidator(resource = ["search:{user_id}", "user:{user_id}"])]
    #[tool(description = "Forget a user", annotations(destructive_hint = true))]
    async fn forget(&self, Parameters(args): Parameters<Search>) -> Result<Json<Hits>, String> {
        Ok(Json(Hits { hits: vec![args.user_id.to_string()] }))
    }

    #[agent_invalidator(resource = "catalogue")]
    #[tool(description = "Reload the catalogue")]
    async fn reload(&self) {}

    /// An `impl Trait` result.
    #[agent_invalidator(resource = "catalogue", scope = "session")]
    #[tool(description = "Touch the catalogue")]
    async fn touch(&self) -> impl rmcp::handler::server::tool::IntoCallToolResult + use<C> {
        String::from("touched")
    }

    /// Tools without the attributes sit beside them.
    #[tool(description = "Plain")]
    async fn plain(&self) -> String {
        "plain".into()
    }
}

#[tool_handler]
impl<C: Catalogue> rmcp::ServerHandler for Shop<C> {}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let shop = Shop { catalogue: Arc::new(Books) };
    let search = Search { user_id: 1, filter: Filter { region: "eu".into() } };
    let future = shop.search(Parameters(search));
    assert_send(&future);
    assert_eq!(future.await.0.hits, ["books:1:eu"]);
    assert_eq!(shop.catalogue_name().await, "books");
    shop.reload().await;
    let _guarded = agent_cache::rmcp::guard(shop.clone(), AgentCacheSession::builder());
    let _ = ToolCallContext::<Shop<Books>>::name;
    let tool = Shop::<Books>::list_orders_tool_attr();
    assert_eq!(tool.annotations.and_then(|a| a.read_only_hint), Some(true));
    let tool = Shop::<Books>::forget_tool_attr();
    let annotations = tool.annotations.unwrap();
    assert_eq!((annotations.read_only_hint, annotations.destructive_hint), (Some(false), Some(true)));
}
