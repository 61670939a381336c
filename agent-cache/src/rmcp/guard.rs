//! [`Guard`]: an rmcp server whose clients each get their own agent session.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use cache_core::AsyncCache;
use parking_lot::Mutex;
use rmcp::model::{CallToolRequestParams, CallToolResponse, RequestMetaObject};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};

use super::call::{self, CallContext};
use super::report;
use crate::session::{Served, ServedSession};
use crate::{AgentCacheSession, AgentCacheSessionBuilder};

/// The `_meta` key of a tool call's run id, by which a client's calls share one session
/// where the transport has none (streamable HTTP with the 2026-07-28 protocol, which is
/// sessionless). Its value is a string; any other value is ignored.
pub const RUN_ID_META_KEY: &str = "io.github.async-cache-rs/runId";

/// Computes a call's partition: the identity under which its global-scope results are
/// cached (an auth subject, a user id from a header), or `None` for the shared partition.
type Partition = Arc<dyn Fn(&RequestContext<RoleServer>) -> Option<String> + Send + Sync>;

/// Guards `server`: every MCP client gets its own [`AgentCacheSession`], built from
/// `sessions`, in which its tool calls run. See the [module docs](super).
///
/// `sessions` is a template: each client's session gets its own id (`connection-3`,
/// `http-session:<id>`, `run:<id>`, after the template's id and a `/` when it has one).
pub fn guard<S>(server: S, sessions: AgentCacheSessionBuilder) -> Guard<S> {
    Guard {
        inner: server,
        config: Arc::new(Config {
            sessions,
            partition: None,
            run_id_key: Cow::Borrowed(RUN_ID_META_KEY),
            max_runs: 10_000,
            run_idle: Duration::from_secs(60 * 60),
        }),
        state: Arc::new(State::default()),
        connection: OnceLock::new(),
    }
}

/// An rmcp server whose tool calls run in per-client agent sessions; made by [`guard`].
///
/// Serve it as the server itself (`guard(..).serve(transport)`, or from the service factory
/// of a streamable HTTP service). A guard is one connection: its clones share configuration
/// and run-id sessions but each is a connection of its own, so a factory that clones one
/// guard per HTTP session gives each session its own agent session.
pub struct Guard<S> {
    pub(super) inner: S,
    config: Arc<Config>,
    state: Arc<State>,
    /// This connection's session, made on its first tool call.
    connection: OnceLock<Arc<ServedSession>>,
}

#[derive(Clone)]
struct Config {
    sessions: AgentCacheSessionBuilder,
    partition: Option<Partition>,
    run_id_key: Cow<'static, str>,
    max_runs: u64,
    run_idle: Duration,
}

/// A run-id session's key: the partition it belongs to, and the run id.
type RunKey = (Option<Arc<str>>, Box<str>);

/// What the clones of one guard share.
#[derive(Default)]
struct State {
    /// Sessions by (partition, run id), bounded in number and in idle time.
    runs: OnceLock<AsyncCache<RunKey, Arc<ServedSession>>>,
    /// Every client session made, for [`Guard::sessions`]; dead ones are pruned.
    live: Mutex<Vec<Weak<ServedSession>>>,
    connections: AtomicU64,
}

impl<S: Clone> Clone for Guard<S> {
    /// Another connection of the same server: configuration and run-id sessions are shared,
    /// the connection's own session is not.
    fn clone(&self) -> Self {
        Guard {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            state: Arc::clone(&self.state),
            connection: OnceLock::new(),
        }
    }
}

impl<S> fmt::Debug for Guard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("sessions", &self.config.sessions)
            .field("partitioned", &self.config.partition.is_some())
            .field("run_id_key", &self.config.run_id_key)
            .field("max_runs", &self.config.max_runs)
            .field("run_idle", &self.config.run_idle)
            .finish_non_exhaustive()
    }
}

impl<S> Guard<S> {
    /// Partitions global-scope caches by an identity computed from each call's request
    /// context (an auth subject, a header set by a gateway): a call is served only what was
    /// cached for the same identity, so one user never gets another's result. `None` is a
    /// partition of its own, shared by every call without an identity. Run-id sessions are
    /// partitioned the same way. Invalidations reach every partition.
    ///
    /// Configure the guard before serving it.
    #[must_use]
    pub fn partition_by(
        mut self,
        identity: impl Fn(&RequestContext<RoleServer>) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.config).partition = Some(Arc::new(identity));
        self
    }

    /// The `_meta` key of the run id (default [`RUN_ID_META_KEY`]).
    #[must_use]
    pub fn run_id_key(mut self, key: impl Into<Cow<'static, str>>) -> Self {
        Arc::make_mut(&mut self.config).run_id_key = key.into();
        self
    }

    /// At most this many run-id sessions are kept (default 10,000); beyond it the least
    /// recently used go first. A run whose session went starts afresh.
    #[must_use]
    pub fn max_runs(mut self, runs: u64) -> Self {
        Arc::make_mut(&mut self.config).max_runs = runs;
        self
    }

    /// A run-id session unused this long is dropped (default one hour).
    #[must_use]
    pub fn run_idle_timeout(mut self, idle: Duration) -> Self {
        Arc::make_mut(&mut self.config).run_idle = idle;
        self
    }

    /// The guarded server.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The sessions of the clients this guard (and its clones) serve now, oldest first:
    /// their ids and metrics.
    pub fn sessions(&self) -> Vec<AgentCacheSession> {
        let mut live = self.state.live.lock();
        live.retain(|session| session.strong_count() > 0);
        live.iter()
            .filter_map(Weak::upgrade)
            .map(|served| served.session().clone())
            .collect()
    }

    fn partition(&self, context: &RequestContext<RoleServer>) -> Option<Arc<str>> {
        let identity = self.config.partition.as_ref()?;
        identity(context).map(Arc::from)
    }

    fn new_session(&self, name: &str) -> Arc<ServedSession> {
        let id = match self.config.sessions.given_id() {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name.to_owned(),
        };
        let session = self.config.sessions.clone().session_id(id).build();
        let served = Arc::new(ServedSession::new(session));
        let mut live = self.state.live.lock();
        live.retain(|session| session.strong_count() > 0);
        live.push(Arc::downgrade(&served));
        served
    }

    /// The session a call runs in: its run's, given a run id, else its connection's.
    async fn session_for(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        partition: &Option<Arc<str>>,
    ) -> Arc<ServedSession> {
        let meta = params.meta.as_ref();
        let run_id = run_id(&context.meta, &self.config.run_id_key)
            .or_else(|| meta.and_then(|meta| run_id(meta, &self.config.run_id_key)));
        let Some(run_id) = run_id else {
            return Arc::clone(self.connection.get_or_init(|| {
                let name = match http_session_id(context) {
                    Some(id) => format!("http-session:{id}"),
                    None => format!(
                        "connection-{}",
                        self.state.connections.fetch_add(1, Ordering::Relaxed) + 1
                    ),
                };
                self.new_session(&name)
            }));
        };
        let runs = self.state.runs.get_or_init(|| {
            AsyncCache::builder()
                .maxsize(self.config.max_runs)
                .default_ttl(self.config.run_idle)
                .build()
        });
        let key = (partition.clone(), Box::from(run_id));
        // Boxed: a call with no run id does not carry the lookup's future.
        let created = async { self.new_session(&format!("run:{run_id}")) };
        let session = Box::pin(runs.get_with(key.clone(), created)).await;
        // Stored again, so the idle timeout counts from this call.
        runs.insert(key, Arc::clone(&session));
        session
    }

    /// A tool call, in its client's session.
    pub(super) async fn guarded_call(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData>
    where
        S: ServerHandler,
    {
        let partition = self.partition(&context);
        let session = self.session_for(&params, &context, &partition).await;
        let call = CallContext {
            partition,
            continuation: params.input_responses.is_some() || params.request_state.is_some(),
        };
        // Boxed once, so that the layers around it (and rmcp's request task) move a pointer
        // rather than the tool's whole future: without it a hit cost 1.65x the instructions
        // of a bare call, most of them copying futures.
        let tool_call = Box::pin(self.inner.call_tool(params, context));
        let served = session.call(call::scoped(call, tool_call)).await;
        match served {
            Served::Done {
                output: Ok(CallToolResponse::Complete(mut result)),
                noted,
            } if !noted.is_empty() => {
                report::note(
                    &mut result,
                    &noted,
                    session.on_loop(),
                    session.session().id(),
                );
                Ok(CallToolResponse::Complete(result))
            }
            Served::Done { output, .. } => output,
            Served::Halted(error) => {
                tracing::info!(
                    target: "agent_cache",
                    session = error.session_id(),
                    tool = error.tool(),
                    kind = %error.kind(),
                    "a loop reached the client as a tool error"
                );
                Ok(CallToolResponse::Complete(report::halted(&error)))
            }
        }
    }
}

fn run_id<'a>(meta: &'a RequestMetaObject, key: &str) -> Option<&'a str> {
    meta.0.0.get(key)?.as_str().filter(|id| !id.is_empty())
}

/// The legacy `Mcp-Session-Id` of a call served over streamable HTTP, for the session's name.
fn http_session_id(context: &RequestContext<RoleServer>) -> Option<String> {
    let parts = context.extensions.get::<http::request::Parts>()?;
    let id = parts.headers.get("mcp-session-id")?.to_str().ok()?;
    Some(id.to_owned())
}

/// A partition by the value of an HTTP request header (streamable HTTP), for
/// [`Guard::partition_by`]: `guard(..).partition_by(by_header("x-user-id"))`. Calls without
/// the header, or over other transports, share the partition `None`.
///
/// Only trust a header that something in front of the server sets (an auth gateway), never
/// one a client chooses freely.
pub fn by_header(
    name: &'static str,
) -> impl Fn(&RequestContext<RoleServer>) -> Option<String> + Send + Sync + 'static {
    move |context| {
        let parts = context.extensions.get::<http::request::Parts>()?;
        let value = parts.headers.get(name)?.to_str().ok()?;
        Some(value.to_owned())
    }
}
