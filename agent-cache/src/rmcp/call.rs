//! What the expansion of an rmcp tool calls: its reads and invalidations, within the call the
//! [`Guard`](super::Guard) is serving.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::handler::server::wrapper::Json;
use rmcp::model::CallToolResponse;

use super::arguments::Arguments;
use crate::tool::Tool;

/// The tools/call request being served, as the guard saw it.
#[derive(Clone, Debug)]
pub(crate) struct CallContext {
    /// The caller's identity, when the guard partitions global caches by one.
    pub(crate) partition: Option<Arc<str>>,
    /// A later round of a multi-round-trip call (it carries input responses or request
    /// state): its result depends on what the client answered, so it is never cached.
    pub(crate) continuation: bool,
}

tokio::task_local! {
    static CALL: CallContext;
}

/// Runs `call` as the tools/call request described by `context`.
pub(crate) fn scoped<F: Future>(context: CallContext, call: F) -> impl Future<Output = F::Output> {
    CALL.scope(context, call)
}

/// What a cached rmcp tool returns: anything rmcp turns into a tool result, cloned to serve
/// each hit. (`Json<T>` and `Result<Json<T>, E>`, which are not `Clone`, are cached as their
/// `T` instead.)
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of an agent-cache rmcp tool",
    label = "the result of a cached tool is cloned for every hit",
    note = "return a type that rmcp turns into a tool result (`IntoCallToolResult`) and that is \
            `Clone + Send + Sync + 'static`, such as `Result<CallToolResult, ErrorData>`, \
            `String`, or `Json<T>` with `T: Clone`"
)]
pub trait ToolOutput: IntoCallToolResult + Clone + Send + Sync + 'static {}

impl<T: IntoCallToolResult + Clone + Send + Sync + 'static> ToolOutput for T {}

/// Names a cached tool's result type where the expansion checks it is a [`ToolOutput`].
pub fn output<R: ToolOutput>() {}

/// What a tool's result is, for the cache and for retry-storm detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// A complete result that is not an error: cached.
    Complete,
    /// A tool error (`isError: true`) or a protocol error: never cached, and a failure.
    Failure,
    /// A result that needs another round trip (input required, or a task): never cached,
    /// and no failure.
    Incomplete,
}

fn outcome<R: ToolOutput>(result: &R) -> Outcome {
    match result.clone().into_call_tool_result() {
        Ok(CallToolResponse::Complete(result)) if result.is_error != Some(true) => {
            Outcome::Complete
        }
        Ok(CallToolResponse::Complete(_)) | Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Incomplete,
    }
}

/// A result the cache did not keep.
struct Uncached<R> {
    result: R,
    failure: bool,
}

/// A cached rmcp tool's call: a hit, or the body, whose result is cached when it is
/// complete and not an error. Outside a guarded call (no [`Guard`](super::Guard) served
/// it), a continuation round, and parameters that cannot be serialized run the body
/// uncached.
pub async fn read<R, F>(
    tool: &'static Tool,
    arguments: Arguments,
    resources: &[Cow<'_, str>],
    body: impl FnOnce() -> F,
) -> R
where
    R: ToolOutput,
    F: Future<Output = R>,
{
    let body = || async {
        let result = body().await;
        match outcome(&result) {
            Outcome::Complete => Ok(result),
            outcome => Err(Uncached {
                result,
                failure: outcome == Outcome::Failure,
            }),
        }
    };
    match read_classified(tool, arguments, resources, body).await {
        Ok(result) | Err(result) => result,
    }
}

/// [`read`] for a tool returning `Json<T>` (structured output), which is not `Clone`: the
/// `T` is cached.
pub async fn read_json<T, F>(
    tool: &'static Tool,
    arguments: Arguments,
    resources: &[Cow<'_, str>],
    body: impl FnOnce() -> F,
) -> Json<T>
where
    T: Clone + Send + Sync + 'static,
    F: Future<Output = Json<T>>,
{
    let body = || async { Ok::<_, Uncached<T>>(body().await.0) };
    match read_classified(tool, arguments, resources, body).await {
        Ok(value) | Err(value) => Json(value),
    }
}

/// [`read`] for a tool returning `Result<Json<T>, E>`: an `Ok` is cached (its `T`), an `Err`
/// (a tool error) is not.
pub async fn read_json_result<T, E, F>(
    tool: &'static Tool,
    arguments: Arguments,
    resources: &[Cow<'_, str>],
    body: impl FnOnce() -> F,
) -> Result<Json<T>, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
    F: Future<Output = Result<Json<T>, E>>,
{
    let body = || async {
        body().await.map(|json| json.0).map_err(|error| Uncached {
            result: error,
            failure: true,
        })
    };
    read_classified(tool, arguments, resources, body)
        .await
        .map(Json)
}

/// The read every form shares: `body`'s `Ok` is cached, its `Err` returned as it is.
async fn read_classified<V, E, F>(
    tool: &'static Tool,
    arguments: Arguments,
    resources: &[Cow<'_, str>],
    body: impl FnOnce() -> F,
) -> Result<V, E>
where
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
    F: Future<Output = Result<V, Uncached<E>>>,
{
    let Ok(call) = CALL.try_with(CallContext::clone) else {
        unguarded(tool);
        return body().await.map_err(|uncached| uncached.result);
    };
    let Some(arguments) = arguments.into_json().filter(|_| !call.continuation) else {
        return body().await.map_err(|uncached| uncached.result);
    };
    let loaded = tool
        .read_with((call.partition, arguments), resources, body, |uncached| {
            uncached.failure
        })
        .value()
        .await;
    loaded.map_err(|shared| match Arc::try_unwrap(shared) {
        Ok(uncached) => uncached.result,
        // Callers that waited on the same load share its result.
        Err(shared) => shared.result.clone(),
    })
}

/// An invalidating rmcp tool's call: as any invalidator (invalidate, run, invalidate).
/// `failed` tells a failed call for retry-storm detection (the expansion builds it with
/// [`Failed`]).
pub async fn mutate<R, F>(
    tool: &'static Tool,
    arguments: Arguments,
    resources: &[Cow<'_, str>],
    failed: fn(&R) -> bool,
    body: F,
) -> R
where
    F: Future<Output = R>,
{
    let signature = tool.signature_of(&[&arguments]);
    drop(arguments);
    tool.mutate(signature, resources, failed, body).await
}

/// Whether an invalidator's result is a failure, by the first of these its type allows
/// (chosen at compile time by autoref specialisation, as `(&&Failed(&result)).failed()`):
///
/// 1. a [`ToolOutput`]: what rmcp makes of it is a tool error or a protocol error;
/// 2. a `Result<T, E>` (with a `T` that is not `Clone`, such as `Json<T>`): an `Err`;
/// 3. anything else: never.
pub struct Failed<'a, R>(pub &'a R);

/// Tier 1 of [`Failed`].
pub trait ViaConversion {
    /// Whether the result is a failure.
    fn failed(self) -> bool;
}

impl<R: ToolOutput> ViaConversion for &&Failed<'_, R> {
    fn failed(self) -> bool {
        outcome(self.0) == Outcome::Failure
    }
}

/// Tier 2 of [`Failed`].
pub trait ViaResult {
    /// Whether the result is a failure.
    fn failed(self) -> bool;
}

impl<T, E> ViaResult for &Failed<'_, Result<T, E>> {
    fn failed(self) -> bool {
        self.0.is_err()
    }
}

/// Tier 3 of [`Failed`].
pub trait ViaNothing {
    /// Whether the result is a failure.
    fn failed(self) -> bool;
}

impl<R> ViaNothing for Failed<'_, R> {
    fn failed(self) -> bool {
        false
    }
}

/// Says once that a cached tool ran outside the guard, which is what gives each client its
/// session and partition: without it, caching could serve one client another's result.
#[cold]
fn unguarded(tool: &Tool) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "agent_cache",
            tool = tool.name(),
            "an agent-cache rmcp tool was called outside `agent_cache::rmcp::guard`: it runs \
             uncached, with no loop detection (serve the guard, not the bare server)"
        );
    }
}

#[cfg(test)]
mod tests {
    use rmcp::ErrorData;
    use rmcp::model::{CallToolResult, ContentBlock, InputRequiredResult};

    use super::*;

    #[test]
    fn only_complete_results_that_are_no_errors_are_cached() {
        let ok: Result<CallToolResult, ErrorData> =
            Ok(CallToolResult::success(vec![ContentBlock::text("cart")]));
        assert_eq!(outcome(&ok), Outcome::Complete);
        assert_eq!(outcome(&"text".to_owned()), Outcome::Complete);

        let tool_error: Result<CallToolResult, ErrorData> =
            Ok(CallToolResult::error(vec![ContentBlock::text(
                "no such cart",
            )]));
        assert_eq!(outcome(&tool_error), Outcome::Failure);
        let protocol_error: Result<CallToolResult, ErrorData> =
            Err(ErrorData::internal_error("db down", None));
        assert_eq!(outcome(&protocol_error), Outcome::Failure);
        let err_branch: Result<String, String> = Err("out of stock".into());
        assert_eq!(outcome(&err_branch), Outcome::Failure);

        let input: Result<InputRequiredResult, ErrorData> =
            Ok(InputRequiredResult::from_request_state("round-1"));
        assert_eq!(outcome(&input), Outcome::Incomplete);
    }
}
