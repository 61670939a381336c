//! The agent playground's endpoints: the seed scenarios and custom scripts of tool calls, run
//! in a session with the caller's loop-detection limits.

use std::sync::Arc;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::{ApiError, JsonBody};
use crate::dashboard::input::Fields;
use crate::dashboard::playground::Playground;
use crate::scenarios::{self, ON_LOOP_NAMES, Report, SessionLimits, TOOLS};

const LIMIT_FIELDS: [&str; 3] = ["max_tool_repeats", "max_execution_depth", "on_loop"];

pub(super) fn routes() -> Router<Arc<Playground>> {
    Router::new()
        .route("/api/agent", get(catalogue))
        .route("/api/agent/scenarios/{name}", post(run_scenario))
        .route("/api/agent/script", post(run_script))
}

/// `GET /api/agent`: the scenarios, the tools a script can call, and the default limits.
async fn catalogue() -> Json<Value> {
    let defaults = SessionLimits::default();
    Json(json!({
        "scenarios": scenarios::NAMES,
        "tools": TOOLS,
        "on_loop": ON_LOOP_NAMES,
        "default_limits": {
            "max_tool_repeats": defaults.max_tool_repeats,
            "max_execution_depth": defaults.max_execution_depth,
            "on_loop": "raise",
        },
    }))
}

/// `POST /api/agent/scenarios/{name}`, with the limits (`max_tool_repeats`,
/// `max_execution_depth`, `on_loop`: `raise`, `warn` or `short_circuit`) or an empty body
/// for the scenario's own.
async fn run_scenario(
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    if !scenarios::NAMES.contains(&name.as_str()) {
        return Err(ApiError::not_found(format!(
            "unknown scenario {name:?}: the scenarios are {}",
            scenarios::NAMES.join(", ")
        )));
    }
    let limits = if body.is_null() {
        None
    } else {
        Some(limits(&Fields::of(body, &LIMIT_FIELDS)?)?)
    };
    let report = scenarios::run_with_limits(&name, limits)
        .await
        .ok_or_else(|| ApiError::not_found(format!("unknown scenario {name:?}")))?;
    Ok(Json(report_json(&report)))
}

/// `POST /api/agent/script` with `script` (one tool call a line) and the limits.
async fn run_script(JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    let mut allowed = LIMIT_FIELDS.to_vec();
    allowed.push("script");
    let fields = Fields::of(body, &allowed)?;
    let script = fields
        .text("script", 20_000)?
        .ok_or_else(|| ApiError::bad_request("script is required: one tool call a line"))?;
    let calls = scenarios::parse_script(&script).map_err(|error| error.to_string())?;
    let limits = limits(&fields)?;
    let report = scenarios::run_script(&calls, limits).await;
    Ok(Json(report_json(&report)))
}

fn limits(fields: &Fields) -> Result<SessionLimits, String> {
    let defaults = SessionLimits::default();
    let on_loop = match fields.text("on_loop", 32)? {
        None => defaults.on_loop,
        Some(name) => scenarios::parse_on_loop(&name).ok_or_else(|| {
            format!(
                "on_loop must be one of {}, got {name:?}",
                ON_LOOP_NAMES.join(", ")
            )
        })?,
    };
    Ok(SessionLimits {
        max_tool_repeats: fields
            .whole_number("max_tool_repeats", 1..=1_000)?
            .map_or(defaults.max_tool_repeats, |n| n as u32),
        max_execution_depth: fields
            .whole_number("max_execution_depth", 1..=10_000)?
            .unwrap_or(defaults.max_execution_depth),
        on_loop,
    })
}

/// A report as the page draws it: the timeline, whether the session halted and why, and the
/// session's metrics.
fn report_json(report: &Report) -> Value {
    let (halted, outcome) = match &report.outcome {
        Ok(summary) => (false, summary),
        Err(message) => (true, message),
    };
    json!({
        "title": report.title,
        "steps": report.steps,
        "halted": halted,
        "outcome": outcome,
        "metrics": report.metrics,
        "backend_calls": report.backend_calls,
    })
}
