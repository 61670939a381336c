//! The dashboard's metrics over real HTTP: `/api/metrics` (JSON: every cache and the agent
//! layer) and `/metrics` (the Prometheus text exposition format, parsed strictly).

mod support;

use std::collections::{HashMap, HashSet};

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::Dashboard;

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

/// One metric family of a text exposition.
struct Family {
    kind: String,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn value(&self, labels: &str) -> f64 {
        self.samples
            .iter()
            .find(|(l, _)| l == labels)
            .unwrap_or_else(|| panic!("no sample {{{labels}}}"))
            .1
    }
}

/// Parses the text exposition strictly: each family opens with `# HELP` then `# TYPE`,
/// appears once, and its samples follow, named after it.
fn parse_exposition(text: &str) -> HashMap<String, Family> {
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut current: Option<String> = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, doc) = help.split_once(' ').expect("HELP has a name and a text");
            assert!(!doc.is_empty(), "{name} has help text");
            let type_line = lines.next().expect("TYPE follows HELP");
            let kind = type_line
                .strip_prefix(&format!("# TYPE {name} "))
                .unwrap_or_else(|| panic!("TYPE of {name} follows its HELP: {type_line}"));
            assert!(matches!(kind, "counter" | "gauge"), "{name}: {kind}");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} is a {kind}"
            );
            let fresh = families
                .insert(
                    name.to_owned(),
                    Family {
                        kind: kind.to_owned(),
                        samples: Vec::new(),
                    },
                )
                .is_none();
            assert!(fresh, "{name} appears once");
            current = Some(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let name = current
            .as_ref()
            .expect("a sample follows its family's HELP and TYPE");
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let labels = match series.strip_prefix(name.as_str()) {
            Some("") => String::new(),
            Some(labelled) => labelled
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels in braces: {line}"))
                .to_owned(),
            None => panic!("sample {line} is not of family {name}"),
        };
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        families
            .get_mut(name)
            .unwrap()
            .samples
            .push((labels, value));
    }
    families
}
