//! The dashboard in a fleet, against a real `redis-server` started on a free loopback port:
//! another "process" (a second fleet connection of its own, holding plain `AsyncCache`s of the
//! dashboard's fleet names, as `fleet_coherence.rs` does) invalidates what the dashboard
//! holds, and the dashboard's HTTP API shows the entry gone and the fleet's state, through a
//! killed and restarted Redis. The dashboard binary itself, as an OS process, starts with
//! Redis down and with a bad URL.
//!
//! A process installs one fleet, and the dashboard's macro caches are process-wide, so the
//! in-process part is one test, in steps.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::http::Method;
use cache_core::AsyncCache;
use cache_redis::Fleet;
use examples::dashboard::{
    DIRECT_FLEET_NAME, DashboardFleet, FLEET_MAX_STALENESS, FLEET_NAMESPACE,
};
use serde_json::{Value, json};
use support::Dashboard;
use tests::redis_server::{RedisServer, free_port};

/// How long a remote invalidation, a lost link or a reconnection may take to show (they take
/// milliseconds; the reconnect backoff is at most 1 s).
const SOON: Duration = Duration::from_secs(10);

/// Polls `done` every 20 ms for up to `limit`; whether it came true.
async fn until(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done().await {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Another dashboard process's fleet: its own connection, in the dashboards' namespace.
async fn other_process(url: &str) -> Fleet {
    Fleet::builder(url)
        .namespace(FLEET_NAMESPACE)
        .max_staleness(FLEET_MAX_STALENESS)
        .connect()
        .await
        .expect("a valid URL")
}

fn fleet_cache(fleet: &Fleet, name: &str) -> AsyncCache<String, String> {
    AsyncCache::builder().fleet(fleet.cache(name)).build()
}

/// The other process's copy of the dashboard's direct cache, shared as the dashboard's is.
fn shared_direct(fleet: &Fleet) -> AsyncCache<String, String> {
    AsyncCache::builder()
        .fleet(fleet.cache(DIRECT_FLEET_NAME).shared())
        .build()
}

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("a count, got {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_cache_shares_its_values_with_the_other_processes_through_redis() {
    let redis = RedisServer::start();
    let dashboard =
        Dashboard::start_with(DashboardFleet::connect(&redis.url()).await.unwrap()).await;
    let other = other_process(&redis.url()).await;
    let other_direct = shared_direct(&other);

    // The other process loads s1: once it is in Redis, the dashboard's first call for it is
    // an L2 hit, with no backend call.
    assert_eq!(
        other_direct
            .get_with("s1".into(), async { "theirs".to_owned() })
            .await,
        "theirs"
    );
    let in_redis = |key: &str| {
        // The value's Redis key: the namespace, the cache, and the postcard of the String key.
        let name = format!(
            "{FLEET_NAMESPACE}:d:{DIRECT_FLEET_NAME}\u{0}{}{key}",
            char::from(key.len() as u8)
        );
        redis.command(&["EXISTS", &name]) == "1"
    };
    assert!(
        until(SOON, async || in_redis("s1")).await,
        "s1 reached Redis"
    );
    let before = count(&dashboard.cache_metrics("direct").await["backend_calls"]);
    let answer = dashboard
        .post("/api/caches/direct/call", json!({"key": "s1"}))
        .await;
    assert_eq!(answer["value"], "theirs", "{answer}");
    let direct = dashboard.cache_metrics("direct").await;
    assert_eq!(count(&direct["backend_calls"]), before, "no backend call");
    assert_eq!(count(&direct["l2_hits"]), 1, "{direct}");

    // The dashboard loads s2 from its backend: the other process's miss reads it from Redis.
    dashboard
        .post("/api/caches/direct/call", json!({"key": "s2"}))
        .await;
    assert!(
        until(SOON, async || in_redis("s2")).await,
        "s2 reached Redis"
    );
    let theirs = other_direct
        .get_with("s2".into(), async { unreachable!("an L2 hit") })
        .await;
    assert_eq!(theirs, "data-for-s2");
    assert_eq!(other_direct.metrics().l2_hits, 1);

    // The counters in the Prometheus export.
    let families = dashboard.exposition().await;
    assert_eq!(
        families["async_cache_l2_hits_total"].value("cache=\"direct\""),
        1.0
    );
    assert_eq!(
        families["async_cache_fleet_loads_total"].value("cache=\"direct\""),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_invalidates_what_the_dashboard_holds_and_the_api_shows_the_fleet() {
    let mut redis = RedisServer::start();
    let fleet = DashboardFleet::connect(&redis.url()).await.unwrap();
    assert!(fleet.fleet().status().is_connected());
    let dashboard = Dashboard::start_with(fleet).await;
    let other = other_process(&redis.url()).await;
    let other_direct = shared_direct(&other);
    let other_ttl = fleet_cache(&other, "dashboard-ttl-skip1");

    // The fleet object: connected, where to, and nothing counted yet.
    let metrics = dashboard.get("/api/metrics").await;
    let status = &metrics["fleet"];
    assert_eq!(status["link"], "connected", "{status}");
    assert_eq!(status["namespace"], FLEET_NAMESPACE);
    assert_eq!(status["server"], redis.url().as_str());
    assert_eq!(status["max_staleness_ms"], 1_000);
    assert!(status["reason"].is_null());
    assert!(count(&status["age_ms"]) < 60_000);
    for field in ["queued", "reconnects", "overflows"] {
        assert_eq!(status[field], 0, "{field}");
    }
    assert_eq!(
        dashboard.get("/api/config").await["fleet"],
        json!({"namespace": FLEET_NAMESPACE, "server": redis.url(), "direct": DIRECT_FLEET_NAME})
    );

    // A key loaded through the direct cache over HTTP, then invalidated by the other process.
    let answer = dashboard
        .post("/api/caches/direct/call", json!({"key": "k1"}))
        .await;
    assert_eq!(answer["value"], "data-for-k1");
    assert_eq!(dashboard.get("/api/direct/entries/k1").await["hit"], true);
    let direct = dashboard.cache_metrics("direct").await;
    assert_eq!(
        direct["fleet"],
        json!({"name": DIRECT_FLEET_NAME, "link": "connected"})
    );
    assert_eq!(direct["remote_invalidations"], 0);
    let loads = count(&direct["backend_calls"]);

    other_direct.invalidate("k1");
    other.flush().await;
    // Counted once applied: the count says k1 is gone.
    assert!(
        until(SOON, async || {
            dashboard.cache_metrics("direct").await["remote_invalidations"] == 1
        })
        .await,
        "the dashboard has not applied another process's acknowledged invalidation after 10 s"
    );
    assert_eq!(dashboard.get("/api/direct/entries/k1").await["hit"], false);
    let metrics = dashboard.get("/api/metrics").await;
    let direct = &metrics["caches"]["direct"];
    assert_eq!(direct["fleet"]["link"], "connected");
    assert_eq!(direct["fleet_errors"], 0);
    assert!(count(&metrics["fleet"]["received"]) >= 1);
    dashboard
        .post("/api/caches/direct/call", json!({"key": "k1"}))
        .await;
    assert_eq!(
        count(&dashboard.cache_metrics("direct").await["backend_calls"]),
        loads + 1,
        "the next call loads k1 again"
    );

    // A macro cache: `#[async_ttl(.., skip_args = 1, fleet = "dashboard-ttl-skip1")]`, whose
    // key is the request's key alone.
    dashboard
        .post("/api/caches/ttl/call", json!({"key": "t1"}))
        .await;
    let ttl = dashboard.cache_metrics("ttl_skip1").await;
    assert_eq!(
        ttl["fleet"],
        json!({"name": "dashboard-ttl-skip1", "link": "connected"})
    );
    assert_eq!(ttl["size"], 1);
    other_ttl.invalidate("t1");
    other.flush().await;
    assert!(
        until(SOON, async || {
            let ttl = dashboard.cache_metrics("ttl_skip1").await;
            ttl["remote_invalidations"] == 1 && ttl["size"] == 0
        })
        .await,
        "the macro cache still holds t1, or has not counted the invalidation"
    );

    // The other way: a delete on the dashboard reaches the other process, acknowledged.
    other_direct.insert("k2".into(), "the other's value".into());
    other.flush().await;
    assert!(
        until(SOON, async || {
            dashboard.cache_metrics("direct").await["remote_invalidations"] == 2
        })
        .await,
        "the other process's insert reaches the dashboard as an invalidation"
    );
    let issued = count(&dashboard.get("/api/metrics").await["fleet"]["issued"]);
    let answer = dashboard
        .ok(Method::DELETE, "/api/direct/entries/k2", None)
        .await;
    assert_eq!(answer["status"], "deleted");
    assert!(
        until(SOON, async || other_direct.get("k2").is_none()).await,
        "the dashboard's delete did not reach the other process"
    );
    let status = dashboard.get("/api/metrics").await["fleet"].clone();
    assert_eq!(count(&status["issued"]), issued + 1);
    assert!(
        until(SOON, async || {
            let status = dashboard.get("/api/metrics").await["fleet"].clone();
            status["acknowledged"] == status["issued"] && status["queued"] == 0
        })
        .await
    );

    // The same in the Prometheus text.
    let families = dashboard.exposition().await;
    let sample = |family: &str, labels: &str| families[family].value(labels);
    assert_eq!(
        sample("async_cache_remote_invalidations_total", "cache=\"direct\""),
        2.0
    );
    assert_eq!(
        sample(
            "async_cache_remote_invalidations_total",
            "cache=\"ttl_skip1\""
        ),
        1.0
    );
    assert_eq!(
        sample("async_cache_fleet_flushes_total", "cache=\"direct\""),
        0.0
    );
    let namespace = "namespace=\"dashboard\"";
    assert_eq!(sample("cache_redis_fleet_connected", namespace), 1.0);
    assert_eq!(
        sample("cache_redis_fleet_max_staleness_seconds", namespace),
        1.0
    );
    assert!(sample("cache_redis_fleet_received_total", namespace) >= 3.0);
    assert_eq!(
        sample("cache_redis_fleet_issued_total", namespace),
        sample("cache_redis_fleet_acknowledged_total", namespace)
    );

    // Redis killed: the dashboard says degraded, and why, and keeps serving.
    redis.kill();
    assert!(
        until(SOON, async || {
            dashboard.get("/api/metrics").await["fleet"]["link"] == "degraded"
        })
        .await,
        "the dashboard does not report the killed Redis"
    );
    let metrics = dashboard.get("/api/metrics").await;
    let reason = metrics["fleet"]["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "a degraded fleet says why");
    let direct = &metrics["caches"]["direct"];
    assert_eq!(direct["fleet"]["link"], "degraded");
    assert!(
        count(&direct["fleet_flushes"]) >= 1,
        "flushed on losing the link"
    );
    assert_eq!(direct["size"], 0);
    let answer = dashboard
        .post("/api/caches/direct/call", json!({"key": "k3"}))
        .await;
    assert_eq!(
        answer["value"], "data-for-k3",
        "reads never see a Redis error"
    );
    dashboard
        .ok(Method::DELETE, "/api/direct/entries/k3", None)
        .await;
    assert!(count(&dashboard.get("/api/metrics").await["fleet"]["queued"]) >= 1);
    assert_eq!(
        dashboard.exposition().await["cache_redis_fleet_connected"].value(namespace),
        0.0
    );

    // Restarted on the same port: connected again, the queue delivered.
    redis.restart();
    assert!(
        until(SOON, async || {
            let status = dashboard.get("/api/metrics").await["fleet"].clone();
            status["link"] == "connected" && status["queued"] == 0
        })
        .await,
        "the dashboard did not reconnect to the restarted Redis"
    );
    let metrics = dashboard.get("/api/metrics").await;
    assert_eq!(metrics["fleet"]["reconnects"], 1);
    assert!(metrics["fleet"]["reason"].is_null());
    assert!(count(&metrics["fleet"]["flushes"]) >= 2);
    assert_eq!(metrics["caches"]["direct"]["fleet"]["link"], "connected");
}

/// The dashboard binary, run as a user runs it (`cargo run -p examples --example dashboard
/// -- ARGS`; cargo replaces itself with the program), killed when dropped.
struct DashboardProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl DashboardProcess {
    fn spawn(args: &[&str]) -> Self {
        let mut child = cargo_run(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run cargo: {error}"));
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        DashboardProcess {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line of its output that contains `text` (the build may come first).
    fn wait_for_line(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        if let Some(line) = self.seen.iter().find(|line| line.contains(text)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "the dashboard did not print {text:?} within {limit:?}; it printed {:?}",
                    self.seen
                ),
            }
        }
    }

    /// The address it listens on, from its first line.
    fn address(&mut self) -> SocketAddr {
        let line = self.wait_for_line("running at http://", Duration::from_secs(600));
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        address.parse().unwrap()
    }
}

impl Drop for DashboardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cargo_run(args: &[&str]) -> Command {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new(env!("CARGO"));
    command
        .args([
            "run",
            "--quiet",
            "--package",
            "examples",
            "--example",
            "dashboard",
            "--",
        ])
        .args(args)
        .current_dir(workspace)
        .env_remove("PORT")
        .env_remove("REDIS_URL");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_starts_degraded_with_redis_down_and_joins_when_it_comes_up() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut process = DashboardProcess::spawn(&["--redis", &url, "--port", "0"]);
    let dashboard = Dashboard::at(process.address());

    let metrics = dashboard.get("/api/metrics").await;
    let status = &metrics["fleet"];
    assert_eq!(status["link"], "degraded", "{status}");
    assert_eq!(status["server"], url.as_str());
    let reason = status["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "a degraded fleet says why");
    process.wait_for_line("fleet: degraded", Duration::from_secs(10));
    // It works as without a fleet, entries capped at max_staleness.
    let answer = dashboard
        .post("/api/caches/direct/call", json!({"key": "d1"}))
        .await;
    assert_eq!(answer["value"], "data-for-d1");
    assert_eq!(
        dashboard.cache_metrics("direct").await["fleet"]["link"],
        "degraded"
    );
    let page = dashboard.send(Method::GET, "/", None).await;
    assert!(page.text.contains("id=\"fleet-panel\""));

    let _redis = RedisServer::start_on(port);
    assert!(
        until(SOON, async || {
            dashboard.get("/api/metrics").await["fleet"]["link"] == "connected"
        })
        .await,
        "the dashboard did not connect once Redis came up"
    );
    process.wait_for_line("fleet: connected", Duration::from_secs(10));
    let metrics = dashboard.get("/api/metrics").await;
    assert_eq!(metrics["caches"]["direct"]["fleet"]["link"], "connected");
    assert_eq!(
        metrics["fleet"]["reconnects"], 0,
        "the first connection is not a reconnection"
    );
}

#[test]
fn a_bad_redis_url_stops_the_dashboard_at_start_with_its_usage() {
    for url in ["http://127.0.0.1:6379", "localhost:6379"] {
        let output = cargo_run(&["--redis", url]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{url}: {stderr}");
        assert!(
            stderr.contains(&format!("--redis {url:?}: not a Redis URL")),
            "{stderr}"
        );
        assert!(stderr.contains("usage: dashboard [--port N] [--redis URL]"));
        assert!(output.stdout.is_empty(), "it did not start serving");
    }
}
