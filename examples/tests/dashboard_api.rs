//! The dashboard's cache playground over real HTTP on loopback: the page, the herd (100
//! concurrent same-key requests, one backend load), configuration, and the direct cache's
//! set, get, delete and warmup. The agent endpoints, the metrics and bad input have test
//! binaries of their own (`dashboard_agent_api`, `dashboard_metrics`, `dashboard_bad_input`).
//!
//! The macro caches and the backend counters are process-wide, so the tests of this binary
//! take turns through `SERIAL`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{Value, json};
use support::Dashboard;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Sends `n` concurrent calls of `key` to `target`, and returns the answers with the change
/// in that target's active cache's metrics.
async fn herd(dashboard: &Dashboard, target: &str, key: &str, body: Value) -> (Vec<Value>, Delta) {
    let cache = dashboard.get("/api/config").await["active"][target]
        .as_str()
        .unwrap()
        .to_owned();
    let before = dashboard.cache_metrics(&cache).await;
    let mut body = body;
    body["key"] = json!(key);
    let path = format!("/api/caches/{target}/call");
    let calls = (0..100).map(|_| dashboard.post(&path, body.clone()));
    let answers = join_all(calls).await;
    let after = dashboard.cache_metrics(&cache).await;
    (answers, Delta { before, after })
}

struct Delta {
    before: Value,
    after: Value,
}

impl Delta {
    fn of(&self, field: &str) -> u64 {
        self.after[field].as_u64().unwrap() - self.before[field].as_u64().unwrap()
    }
}

#[tokio::test]
async fn the_page_and_its_assets_come_from_the_binary_with_no_external_reference() {
    let _serial = SERIAL.lock().await;
    let dashboard = Dashboard::start().await;
    let page = dashboard.send(Method::GET, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.text.contains("async-cache dashboard"));
    for (path, content_type) in [
        ("/assets/dashboard.css", "text/css"),
        ("/assets/dashboard.js", "text/javascript"),
    ] {
        assert!(page.text.contains(path), "the page links {path}");
        let asset = dashboard.send(Method::GET, path, None).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert!(
            asset.content_type.starts_with(content_type),
            "{path}: {}",
            asset.content_type
        );
        assert!(!asset.text.is_empty());
    }
    for path in ["/", "/assets/dashboard.css", "/assets/dashboard.js"] {
        let text = dashboard.send(Method::GET, path, None).await.text;
        for external in ["src=\"http", "href=\"http", "url(http", "@import", "//cdn"] {
            assert!(!text.contains(external), "{path} refers to {external}...");
        }
    }
}

#[tokio::test]
async fn a_herd_of_100_same_key_requests_makes_one_backend_load_on_every_target() {
    let _serial = SERIAL.lock().await;
    let dashboard = Dashboard::start().await;
    let targets = [
        ("ttl", json!({})),
        ("lru", json!({})),
        ("direct", json!({})),
        ("direct", json!({ "batch": true })),
    ];
    for (n, (target, body)) in targets.into_iter().enumerate() {
        let key = format!("herd-{n}");
        let (answers, delta) = herd(&dashboard, target, &key, body.clone()).await;
        assert_eq!(
            delta.of("backend_calls"),
            1,
            "{target} {body}: one backend load"
        );
        assert_eq!(delta.of("loads"), 1, "{target} {body}: one loader run");
        assert_eq!(
            delta.of("hits") + delta.of("misses"),
            100,
            "{target} {body}"
        );
        let values: HashSet<&str> = answers
            .iter()
            .map(|a| a["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            values.len(),
            1,
            "{target}: every caller got the one load's value"
        );
        let value = values.into_iter().next().unwrap();
        assert!(value.starts_with(&format!("data-for-{key}")), "{value}");
        let peak = answers
            .iter()
            .map(|a| a["in_flight"].as_u64().unwrap())
            .max();
        assert!(
            peak > Some(1),
            "{target}: the server handled the requests concurrently"
        );
        assert_eq!(
            delta.after["size"],
            delta.before["size"].as_u64().unwrap() + 1
        );
    }
}

#[tokio::test]
async fn configure_rebuilds_the_direct_cache_and_skip_args_picks_the_macro_fn() {
    let _serial = SERIAL.lock().await;
    let dashboard = Dashboard::start().await;
    let config = dashboard.get("/api/config").await;
    assert_eq!(
        config["config"],
        json!({"maxsize": 128, "ttl": 60.0, "skip_args": 1, "batch_window_ms": 5.0, "max_batch_size": 100})
    );
    assert_eq!(
        config["active"],
        json!({"ttl": "ttl_skip1", "lru": "lru_skip1", "direct": "direct"})
    );
    assert!(
        config["declarations"]["lru"][0]
            .as_str()
            .unwrap()
            .starts_with("#[async_lru(maxsize = 64, fleet = \"dashboard-lru-skip0\")]")
    );
    assert!(config["fleet"].is_null(), "no fleet without --redis");

    // Form input arrives as strings; an empty TTL means never expire.
    let answer = dashboard
        .post(
            "/api/config",
            json!({"maxsize": "10", "ttl": "", "skip_args": 0, "batch_window_ms": "2.5", "max_batch_size": 4}),
        )
        .await;
    assert_eq!(answer["status"], "configured");
    assert_eq!(
        answer["config"],
        json!({"maxsize": 10, "ttl": null, "skip_args": 0, "batch_window_ms": 2.5, "max_batch_size": 4})
    );
    assert_eq!(answer["active"]["ttl"], "ttl_skip0");
    assert_eq!(answer["active"]["lru"], "lru_skip0");

    // skip_args = 0 keys by (replica, key): a herd spread over 4 replicas loads 4 times.
    let (answers, delta) = herd(&dashboard, "ttl", "per-replica", json!({})).await;
    assert_eq!(delta.of("backend_calls"), 4);
    let values: HashSet<&str> = answers
        .iter()
        .map(|a| a["value"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 4, "one value per replica: {values:?}");

    // The rebuilt direct cache holds at most 10 entries; 4 keys per batch call.
    let calls = (0..20).map(|i| {
        dashboard.post(
            "/api/caches/direct/call",
            json!({"key": format!("bound-{i}"), "batch": true}),
        )
    });
    join_all(calls).await;
    let direct = dashboard.cache_metrics("direct").await;
    assert_eq!(direct["size"], 10);
    assert_eq!(direct["capacity"], 10);
    assert_eq!(direct["evictions"], 10);
    assert!(
        direct["backend_calls"].as_u64().unwrap() >= 5,
        "batches of at most 4: {direct}"
    );

    dashboard.post("/api/config", json!({"skip_args": 1})).await;
    assert_eq!(
        dashboard.get("/api/config").await["active"]["ttl"],
        "ttl_skip1"
    );
}

#[tokio::test]
async fn set_get_delete_warmup_clear_and_refresh() {
    let _serial = SERIAL.lock().await;
    let dashboard = Dashboard::start().await;
    let entry = "/api/direct/entries/test%20key";
    let set = dashboard
        .ok(
            Method::PUT,
            entry,
            Some(json!({"value": "set-value", "ttl": 30})),
        )
        .await;
    assert_eq!(
        set,
        json!({"status": "set", "key": "test key", "ttl": 30.0})
    );
    assert_eq!(
        dashboard.get(entry).await,
        json!({"key": "test key", "hit": true, "value": "set-value"})
    );
    let deleted = dashboard.ok(Method::DELETE, entry, None).await;
    assert_eq!(
        deleted,
        json!({"status": "deleted", "key": "test key", "held": true})
    );
    assert_eq!(dashboard.get(entry).await["hit"], false);
    let direct = dashboard.cache_metrics("direct").await;
    assert_eq!(
        (direct["hits"].as_u64(), direct["misses"].as_u64()),
        (Some(1), Some(1))
    );

    // A short TTL expires; "never" does not.
    dashboard
        .ok(
            Method::PUT,
            "/api/direct/entries/brief",
            Some(json!({"value": "v", "ttl": 0.2})),
        )
        .await;
    let kept = dashboard
        .ok(
            Method::PUT,
            "/api/direct/entries/kept",
            Some(json!({"value": "v", "ttl": "never"})),
        )
        .await;
    assert_eq!(kept["ttl"], Value::Null);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        dashboard.get("/api/direct/entries/brief").await["hit"],
        false
    );
    assert_eq!(dashboard.get("/api/direct/entries/kept").await["hit"], true);

    let keys: Vec<String> = (0..20).map(|i| format!("warm-{i}")).collect();
    let before = dashboard.cache_metrics("direct").await["backend_calls"]
        .as_u64()
        .unwrap();
    let warmed = dashboard
        .post("/api/direct/warmup", json!({ "keys": keys }))
        .await;
    assert_eq!(
        (warmed["loaded"].as_u64(), warmed["skipped"].as_u64()),
        (Some(20), Some(0))
    );
    let again = dashboard
        .post("/api/direct/warmup", json!({ "keys": keys }))
        .await;
    assert_eq!(
        (again["loaded"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(20))
    );
    let after = dashboard.cache_metrics("direct").await["backend_calls"]
        .as_u64()
        .unwrap();
    assert_eq!(after - before, 20, "the second warmup loaded nothing");
    assert_eq!(
        dashboard.get("/api/direct/entries/warm-7").await["value"],
        "data-for-warm-7"
    );

    let cleared = dashboard
        .post("/api/caches/direct/clear", json!(null))
        .await;
    assert_eq!(
        cleared,
        json!({"status": "cleared", "target": "direct", "cache": "direct"})
    );
    let direct = dashboard.cache_metrics("direct").await;
    assert_eq!(
        (direct["size"].as_u64(), direct["hits"].as_u64()),
        (Some(0), Some(0))
    );

    // use_cache: false reloads through the macro's refresh helper.
    let before = dashboard.cache_metrics("lru_skip1").await["backend_calls"]
        .as_u64()
        .unwrap();
    for _ in 0..3 {
        dashboard
            .post(
                "/api/caches/lru/call",
                json!({"key": "fresh", "use_cache": false}),
            )
            .await;
    }
    dashboard
        .post("/api/caches/lru/call", json!({"key": "fresh"}))
        .await;
    let after = dashboard.cache_metrics("lru_skip1").await["backend_calls"]
        .as_u64()
        .unwrap();
    assert_eq!(
        after - before,
        3,
        "three refreshes load, the plain call is a hit"
    );
}
