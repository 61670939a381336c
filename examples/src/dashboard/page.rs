//! The page: one HTML document, its stylesheet and its script, compiled into the binary so the
//! dashboard needs nothing from the network.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("assets/index.html");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");

pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route("/assets/dashboard.css", get(stylesheet))
        .route("/assets/dashboard.js", get(script))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        DASHBOARD_CSS,
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        DASHBOARD_JS,
    )
}
