//! How a loop reaches the model: a tool error result that names the loop and says what to do
//! instead, or a note on a result that was served anyway.

use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde_json::{Value, json};

use crate::{AgentLoopDetected, Detection, LoopKind, OnLoop};

/// The `_meta` key under which a loop report's details travel (kind, tool, cycle, session),
/// for clients that act on loops programmatically.
pub const LOOP_META_KEY: &str = "io.github.async-cache-rs/loop";

/// What the model should do instead of the call that completed `kind`.
fn advice(kind: LoopKind) -> &'static str {
    match kind {
        LoopKind::Repeat => {
            "Nothing it reads has changed since the earlier identical calls, so it would \
             return the same result: use the result you already have, or call it with \
             different arguments."
        }
        LoopKind::Cycle => {
            "These calls have gone round in the same order with the same arguments, so \
             another turn would give the same results: stop the cycle and continue with the \
             results you have, or try a different approach."
        }
        LoopKind::Depth => {
            "This session has used its tool-call budget: answer with what you have instead \
             of calling more tools."
        }
        LoopKind::RetryStorm => {
            "It failed every time with these arguments: do not retry it unchanged; report the \
             failure, or change the arguments."
        }
    }
}

/// The tool error result of a call halted by a loop (the tool did not run).
pub(crate) fn halted(error: &AgentLoopDetected) -> CallToolResult {
    let text = format!(
        "Loop detected ({}): {}. agent-cache stopped this call; the tool did not run. {}",
        error.kind(),
        error.message(),
        advice(error.kind())
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.meta = Some(meta(
        error.kind(),
        error.tool(),
        error.cycle(),
        error.session_id(),
        "halted",
    ));
    result
}

/// Adds to a result that was served the loops its call completed without being halted
/// (`Warn`: the tool ran; `ShortCircuit`: the cached result of an earlier call).
pub(crate) fn note(
    result: &mut CallToolResult,
    noted: &[Detection],
    on_loop: OnLoop,
    session: &str,
) {
    let (action, served) = match on_loop {
        OnLoop::ShortCircuit => (
            "short_circuited",
            "the tool did not run again; this is its cached result",
        ),
        OnLoop::Warn | OnLoop::Raise => ("warned", "the call ran"),
    };
    for detection in noted {
        result.content.push(ContentBlock::text(format!(
            "Note from agent-cache: loop detected ({}): {}; {served}. {}",
            detection.kind,
            detection.message,
            advice(detection.kind)
        )));
    }
    if let Some(last) = noted.last() {
        let report = meta(last.kind, last.tool, &last.cycle, session, action);
        result
            .meta
            .get_or_insert_with(MetaObject::new)
            .extend(report);
    }
}

fn meta(kind: LoopKind, tool: &str, cycle: &[&str], session: &str, action: &str) -> MetaObject {
    let mut meta = MetaObject::new();
    meta.0.insert(
        LOOP_META_KEY.to_owned(),
        json!({
            "kind": kind,
            "tool": tool,
            "cycle": cycle,
            "session": session,
            "action": action,
        }),
    );
    meta
}

/// The loop report in a result's `_meta`, if any (for tests and clients).
pub fn loop_report(result: &CallToolResult) -> Option<&Value> {
    result.meta.as_ref()?.0.get(LOOP_META_KEY)
}
