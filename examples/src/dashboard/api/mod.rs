//! The HTTP surface: the page, the JSON API and the metrics endpoints.
//!
//! Every refusal is a 4xx with `{"error": "..."}`, unknown paths and methods included.

mod agent;
mod cache;
mod error;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use self::error::ApiError;
use super::metrics::MetricsSnapshot;
use super::playground::Playground;
use super::{page, prometheus};

/// Every route of the dashboard, over `playground`.
pub(crate) fn router(playground: Arc<Playground>) -> Router {
    Router::new()
        .merge(page::routes())
        .merge(cache::routes())
        .merge(agent::routes())
        .route("/api/metrics", get(metrics_json))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(playground)
}

/// `GET /api/metrics`: every cache and the agent layer, as JSON.
async fn metrics_json(State(playground): State<Arc<Playground>>) -> Json<Value> {
    Json(MetricsSnapshot::take(&playground).to_json())
}

/// `GET /metrics`: the same, in the Prometheus text exposition format.
async fn metrics_text(State(playground): State<Arc<Playground>>) -> impl IntoResponse {
    let text = prometheus::render(&MetricsSnapshot::take(&playground));
    ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such page or endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{} does not accept {method}", uri.path()),
    }
}
