//! The dashboard's metrics over real HTTP: `/api/metrics` (JSON: every cache and the agent
//! layer) and `/metrics` (the Prometheus text exposition format, parsed strictly).

mod support;

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{Dashboard, parse_exposition};

#[tokio::test]
async fn metrics_cover_every_cache_and_the_agent_layer_in_json_and_prometheus_text() {
    let dashboard = Dashboard::start().await;
    dashboard
        .post("/api/caches/direct/call", json!({"key": "m1"}))
        .await;
    dashboard
        .post("/api/caches/direct/call", json!({"key": "m1"}))
        .await;
    dashboard
        .post("/api/agent/scenarios/inventory", json!({}))
        .await;

    let metrics = dashboard.get("/api/metrics").await;
    let caches = metrics["caches"].as_object().unwrap();
    let names: HashSet<&str> = caches.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        HashSet::from(["ttl_skip0", "ttl_skip1", "lru_skip0", "lru_skip1", "direct"])
    );
    for (name, cache) in caches {
        for field in [
            "hits",
            "misses",
            "size",
            "hit_rate",
            "loads",
            "load_errors",
            "evictions",
            "backend_calls",
            "active",
            "target",
            "declaration",
        ] {
            assert!(!cache[field].is_null(), "{name} has {field}");
        }
    }
    let direct = &caches["direct"];
    assert_eq!(
        (direct["hits"].as_u64(), direct["misses"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(direct["hit_rate"], 0.5);
    assert_eq!(metrics["active"]["direct"], "direct");
    for field in [
        "hits",
        "misses",
        "invalidations",
        "loop_detections",
        "hit_rate",
        "tool_calls",
    ] {
        assert!(!metrics["agent"][field].is_null(), "agent has {field}");
    }
    assert!(metrics["agent"]["loop_detections"].as_u64().unwrap() >= 1);

    let text = dashboard.send(Method::GET, "/metrics", None).await;
    assert_eq!(text.status, StatusCode::OK);
    assert_eq!(
        text.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let families = parse_exposition(&text.text);
    for family in [
        "async_cache_hits_total",
        "async_cache_misses_total",
        "async_cache_loads_total",
        "async_cache_evictions_total",
        "dashboard_backend_calls_total",
    ] {
        let samples = &families[family];
        assert_eq!(samples.kind, "counter", "{family}");
        let labelled: HashSet<&str> = samples
            .samples
            .iter()
            .map(|(labels, _)| labels.as_str())
            .collect();
        for cache in &names {
            assert!(
                labelled.contains(format!("cache=\"{cache}\"").as_str()),
                "{family} for {cache}"
            );
        }
    }
    assert_eq!(families["async_cache_size"].kind, "gauge");
    assert_eq!(
        families["async_cache_hit_rate"].value("cache=\"direct\""),
        0.5
    );
    assert_eq!(
        families["async_cache_hits_total"].value("cache=\"direct\""),
        1.0
    );
    let backend = direct["backend_calls"].as_f64().unwrap();
    assert_eq!(
        families["dashboard_backend_calls_total"].value("cache=\"direct\""),
        backend
    );
    assert!(families["agent_cache_loop_detections_total"].value("kind=\"cycle\"") >= 1.0);
    assert!(families["agent_cache_misses_total"].value("") >= 2.0);
}

/// Without `--redis` the dashboard has no fleet: `fleet` is `null`, each macro cache once
/// called says it is process-local (`not_installed`, its declared fleet name), the direct
/// cache has no fleet at all, and the fleet's Prometheus families are there without samples.
#[tokio::test]
async fn without_a_fleet_the_caches_say_they_are_process_local() {
    let dashboard = Dashboard::start().await;
    dashboard
        .post("/api/caches/lru/call", json!({"key": "local-1"}))
        .await;
    let metrics = dashboard.get("/api/metrics").await;
    assert!(metrics["fleet"].is_null(), "{}", metrics["fleet"]);
    assert!(dashboard.get("/api/config").await["fleet"].is_null());
    let lru = &metrics["caches"]["lru_skip1"];
    assert_eq!(
        lru["fleet"],
        json!({"name": "dashboard-lru-skip1", "link": "not_installed"})
    );
    assert_eq!(lru["fleet_name"], "dashboard-lru-skip1");
    let direct = &metrics["caches"]["direct"];
    assert!(direct["fleet"].is_null());
    assert_eq!(direct["fleet_name"], "dashboard-direct");
    for (name, cache) in metrics["caches"].as_object().unwrap() {
        for field in ["remote_invalidations", "fleet_flushes", "fleet_errors"] {
            assert_eq!(cache[field], 0, "{name}: {field}");
        }
    }
    assert_eq!(metrics["agent"]["remote_invalidations"], 0);

    let families = dashboard.exposition().await;
    for family in [
        "async_cache_remote_invalidations_total",
        "async_cache_fleet_flushes_total",
        "async_cache_fleet_errors_total",
    ] {
        assert_eq!(families[family].kind, "counter");
        assert_eq!(
            families[family].value("cache=\"lru_skip1\""),
            0.0,
            "{family}"
        );
        assert_eq!(families[family].samples.len(), 5, "{family}: every cache");
    }
    assert_eq!(
        families["agent_cache_remote_invalidations_total"].value(""),
        0.0
    );
    for family in [
        "cache_redis_fleet_connected",
        "cache_redis_fleet_queued",
        "cache_redis_fleet_received_total",
        "cache_redis_fleet_reconnects_total",
    ] {
        assert!(
            families[family].samples.is_empty(),
            "{family}: no fleet is not a degraded one"
        );
    }
}
