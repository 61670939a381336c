//! Bad input to the dashboard's API, over real HTTP: each refusal is a 4xx with
//! `{"error": "..."}` saying what is allowed, and the server keeps serving afterwards.

mod support;

use axum::http::Method;
use serde_json::json;
use support::Dashboard;

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_and_the_server_keeps_serving() {
    let dashboard = Dashboard::start().await;
    #[rustfmt::skip]
    let cases: [(Method, &str, &str, u16, &str); 22] = [
        (Method::POST, "/api/config", r#"{"maxsize": -5}"#, 400, "maxsize must be a whole number from 0 to 1000000, got -5"),
        (Method::POST, "/api/config", r#"{"maxsize": "abc"}"#, 400, "maxsize must be a whole number from 0 to 1000000, got \"abc\""),
        (Method::POST, "/api/config", r#"{"maxsize": 1.5}"#, 400, "maxsize must be a whole number"),
        (Method::POST, "/api/config", r#"{"ttl": -1}"#, 400, "ttl must be a number of seconds"),
        (Method::POST, "/api/config", r#"{"batch_window_ms": "soon"}"#, 400, "batch_window_ms must be a number"),
        (Method::POST, "/api/config", r#"{"max_batch_size": 0}"#, 400, "max_batch_size must be a whole number from 1"),
        (Method::POST, "/api/config", r#"{"skip_args": 3}"#, 400, "skip_args must be a whole number from 0 to 1"),
        (Method::POST, "/api/config", r#"{"maxsise": 10}"#, 400, "unknown field \"maxsise\""),
        (Method::POST, "/api/config", "{not json", 400, "the body is not valid JSON"),
        (Method::POST, "/api/config", "[1, 2]", 400, "the body must be a JSON object"),
        (Method::POST, "/api/caches/memcached/call", r#"{"key": "k"}"#, 404, "unknown cache kind \"memcached\": the kinds are ttl, lru, direct"),
        (Method::POST, "/api/caches/ttl/call", "{}", 400, "key is required"),
        (Method::POST, "/api/caches/direct/call", r#"{"key": 5}"#, 400, "key must be a string"),
        (Method::POST, "/api/caches/lru/call", r#"{"key": "k", "batch": true}"#, 400, "batch applies to the direct cache only"),
        (Method::POST, "/api/direct/warmup", r#"{"keys": "k1"}"#, 400, "keys must be a list of strings"),
        (Method::PUT, "/api/direct/entries/k", r#"{"ttl": 5}"#, 400, "value is required"),
        (Method::POST, "/api/agent/scenarios/teleport", "", 404, "unknown scenario \"teleport\""),
        (Method::POST, "/api/agent/scenarios/inventory", r#"{"on_loop": "explode"}"#, 400, "on_loop must be one of raise, warn, short_circuit"),
        (Method::POST, "/api/agent/scenarios/inventory", r#"{"max_tool_repeats": 0}"#, 400, "max_tool_repeats must be a whole number from 1"),
        (Method::POST, "/api/agent/script", r#"{"script": "get_cart u1\nfly_to_moon now"}"#, 400, "line 2: unknown tool \"fly_to_moon\""),
        (Method::GET, "/api/nothing-here", "", 404, "no such page or endpoint: /api/nothing-here"),
        (Method::DELETE, "/api/metrics", "", 405, "/api/metrics does not accept DELETE"),
    ];
    for (method, path, body, status, message) in cases {
        let body = (!body.is_empty()).then_some(body);
        let answer = dashboard.send(method.clone(), path, body).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {path} {body:?}: {answer:?}"
        );
        assert!(
            answer.content_type.starts_with("application/json"),
            "{answer:?}"
        );
        let error = answer.json()["error"].as_str().map(str::to_owned);
        let error = error.unwrap_or_else(|| panic!("{{\"error\": ...}}: {answer:?}"));
        assert!(
            error.contains(message),
            "{method} {path}: {error:?} should say {message:?}"
        );
    }
    // Every invalid field is reported at once, and nothing was applied.
    let answer = dashboard
        .send(
            Method::POST,
            "/api/config",
            Some(r#"{"maxsize": -1, "max_batch_size": "x"}"#),
        )
        .await;
    let error = answer.json()["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("maxsize") && error.contains("max_batch_size"),
        "{error}"
    );
    assert_eq!(dashboard.get("/api/config").await["config"]["maxsize"], 128);

    let answer = dashboard
        .post("/api/caches/direct/call", json!({"key": "still-up"}))
        .await;
    assert_eq!(answer["value"], "data-for-still-up");
}
