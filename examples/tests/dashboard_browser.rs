//! The dashboard in a real browser: headless Chromium driven through WebDriver presses the
//! page's buttons and reads the numbers it shows, the fleet panel's included (without a
//! fleet, then in one on a real `redis-server`, connected and after Redis is killed). It saves
//! a screenshot to `target/dashboard.png`, and to the README's `docs/dashboard.png` when
//! `UPDATE_SCREENSHOT=1` (so a test run leaves the checkout clean).
//!
//! Needs `chromedriver` and Chromium: on Debian or Ubuntu, `apt-get install chromium
//! chromium-driver` (`.ci/run` installs them). `CHROMEDRIVER` and `CHROME_BIN` override where
//! they are looked for.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cache_core::AsyncCache;
use cache_redis::Fleet;
use examples::dashboard::{DIRECT_FLEET_NAME, DashboardFleet, FLEET_NAMESPACE};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Map, Value, json};
use tests::redis_server::RedisServer;

const WAIT: Duration = Duration::from_secs(60);
const WIDTH: u32 = 1440;

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_one_backend_load_for_a_herd_the_inventory_cycle_and_the_fleet() {
    let chromedriver = ChromeDriver::start();
    let profile = std::env::temp_dir().join(format!("dashboard-browser-{}", std::process::id()));
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(chrome_capabilities(&profile))
        .connect(&chromedriver.url())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot start Chromium through chromedriver ({error}); is the `chromium` package \
                 installed (apt-get install -y chromium chromium-driver), or CHROME_BIN set?"
            )
        });
    // Two dashboards in this process: one without a fleet, one in a fleet on a real Redis
    // (which it installs; nothing calls a macro cache before that).
    let mut redis = RedisServer::start();
    let plain = support::start_dashboard().await;
    let fleet = DashboardFleet::connect(&redis.url()).await.unwrap();
    let dashboard = support::start_dashboard_with(Some(fleet)).await;

    let outcome = AssertUnwindSafe(async {
        without_a_fleet(&client, plain).await;
        drive(&client, dashboard, &mut redis).await;
    })
    .catch_unwind()
    .await;
    let _ = client.close().await;
    drop(chromedriver);
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// The fleet panel of a dashboard started without `--redis`: how to get one, and every cache
/// process-local, which reads as a state, not an error.
async fn without_a_fleet(client: &Client, dashboard: SocketAddr) {
    client.set_window_size(WIDTH, 1000).await.unwrap();
    client.goto(&format!("http://{dashboard}/")).await.unwrap();
    wait_for(client, "#fleet-panel[data-state='none']").await;
    let none = wait_for(client, "#fleet-none:not([hidden])").await;
    let message = none.text().await.unwrap();
    assert!(
        message.starts_with("No fleet: start with --redis URL"),
        "{message}"
    );
    assert_eq!(text(client, "fleet-indicator").await, "no fleet");
    assert_eq!(text(client, "fleet-link").await, "no fleet");
    let direct = wait_for(client, "#fleet-row-direct[data-link='local']").await;
    let row = direct.text().await.unwrap();
    assert!(
        row.contains("dashboard-direct") && row.contains("process-local"),
        "{row}"
    );
    assert!(
        client
            .find(Locator::Css("#fleet-live[hidden]"))
            .await
            .is_ok(),
        "no fleet counters without a fleet"
    );
}

async fn drive(client: &Client, dashboard: SocketAddr, redis: &mut RedisServer) {
    client.set_window_size(WIDTH, 1000).await.unwrap();
    client.goto(&format!("http://{dashboard}/")).await.unwrap();
    // The page has loaded its configuration and polled the metrics once.
    wait_for(client, "#live-status.on").await;

    // Bad input: the server's message on the page, the field marked, and nothing broken.
    let maxsize = client.find(Locator::Id("cfg-maxsize")).await.unwrap();
    maxsize.clear().await.unwrap();
    maxsize.send_keys("-5").await.unwrap();
    click(client, "apply-config").await;
    let banner = wait_for(client, "#error-banner:not([hidden])").await;
    let message = banner.text().await.unwrap();
    assert!(
        message.contains("maxsize must be a whole number from 0 to 1000000, got -5"),
        "{message}"
    );
    wait_for(client, "#cfg-maxsize[aria-invalid='true']").await;
    maxsize.clear().await.unwrap();
    maxsize.send_keys("128").await.unwrap();
    click(client, "apply-config").await;
    wait_for(client, "#error-banner[hidden]").await;

    // 100 unique keys through the #[async_lru(maxsize = 64)] fn: 100 loads, 64 kept.
    click(client, "target-lru").await;
    click(client, "fire-unique").await;
    finished_run(client, 1).await;
    assert_eq!(text(client, "stat-loads").await, "100");
    assert_eq!(text(client, "stat-size").await, "0 → 64");

    // The herd, against the direct AsyncCache and then the #[async_ttl] fn: one load each.
    for (n, target) in [(2, "target-direct"), (3, "target-ttl")] {
        click(client, target).await;
        click(client, "fire-same").await;
        finished_run(client, n).await;
        assert_eq!(
            text(client, "stat-loads").await,
            "1",
            "{target}: one backend load"
        );
        let hits: u64 = text(client, "stat-hits").await.parse().unwrap();
        let misses: u64 = text(client, "stat-misses").await.parse().unwrap();
        assert_eq!(hits + misses, 100, "{target}");
        let explain = text(client, "run-explain").await;
        assert!(
            explain.starts_with("100 requests, 1 backend load."),
            "{explain}"
        );
    }

    // The inventory scenario: halted on its cycle, the marker in the timeline.
    click(client, "scenario-inventory").await;
    wait_for(client, "#agent-status[data-state='done']").await;
    let outcome = text(client, "agent-outcome").await;
    assert!(
        outcome.starts_with("Halted: Cycle detected: check_stock -> update_stock"),
        "{outcome}"
    );
    let detected = wait_for(client, "#timeline tr[data-marker='loop_detected']").await;
    let row = detected.text().await.unwrap();
    assert!(
        row.contains("LOOP DETECTED") && row.contains("update_stock"),
        "{row}"
    );
    let markers: Vec<String> = texts(client, "#timeline .pill").await;
    assert_eq!(markers, ["MISS", "INVALIDATION", "MISS", "LOOP DETECTED"]);
    assert_eq!(text(client, "agent-loop-detections").await, "1");

    // The fleet panel: connected, then another process's invalidation counted on the page.
    wait_for(client, "#fleet-panel[data-state='connected']").await;
    assert_eq!(text(client, "fleet-indicator").await, "fleet connected");
    let line = text(client, "fleet-state").await;
    assert!(
        line.starts_with("Connected for ")
            && line.contains(&redis.url())
            && line.contains("namespace dashboard"),
        "{line}"
    );
    for cache in ["direct", "ttl_skip1", "lru_skip1"] {
        wait_for(
            client,
            &format!("#fleet-row-{cache}[data-link='connected']"),
        )
        .await;
    }
    let other = Fleet::builder(redis.url())
        .namespace(FLEET_NAMESPACE)
        .connect()
        .await
        .unwrap();
    let other_direct: AsyncCache<String, String> = AsyncCache::builder()
        .fleet(other.cache(DIRECT_FLEET_NAME))
        .build();
    other_direct.invalidate("any-key");
    other.flush().await;
    wait_for_text(client, "fleet-remote-direct", "1").await;
    assert_ne!(text(client, "fleet-received").await, "0");

    // A few samples on the chart, then the screenshot of the whole page.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let screenshot = full_page_screenshot(client).await;
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = vec![root.join("target/dashboard.png")];
    if std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|value| value == "1") {
        paths.push(root.join("docs/dashboard.png"));
    }
    for path in paths {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &screenshot).unwrap();
    }

    // Redis killed: the panel says degraded, and why.
    redis.kill();
    wait_for(client, "#fleet-panel[data-state='degraded']").await;
    let reason = wait_for(client, "#fleet-reason:not([hidden])").await;
    let why = reason.text().await.unwrap();
    assert!(
        why.starts_with("Why: ") && why.contains("reads go on"),
        "{why}"
    );
    assert!(
        text(client, "fleet-state")
            .await
            .starts_with("Degraded for ")
    );
    assert_eq!(text(client, "fleet-indicator").await, "fleet degraded");
    wait_for(client, "#fleet-row-direct[data-link='degraded']").await;
}

/// Waits until the element `id` shows `expected` (the page refreshes every second).
async fn wait_for_text(client: &Client, id: &str, expected: &str) {
    let started = Instant::now();
    loop {
        let shown = text(client, id).await;
        if shown == expected {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "#{id} shows {shown:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("waiting for {css}: {error}"))
}

/// Waits until the playground's `n`th run has finished, and checks that it succeeded.
async fn finished_run(client: &Client, n: u32) {
    let status = wait_for(client, &format!("#run-status[data-runs='{n}']")).await;
    let state = status.attr("data-state").await.unwrap();
    let line = status.text().await.unwrap();
    assert_eq!(state.as_deref(), Some("done"), "run {n}: {line}");
}

async fn click(client: &Client, id: &str) {
    let button = client.find(Locator::Id(id)).await.unwrap();
    button.click().await.unwrap();
}

/// The text of the element with this id. The live metrics re-render their rows every
/// refresh, so an element found may be replaced before its text is read: look again then.
async fn text(client: &Client, id: &str) -> String {
    let mut attempts = 0;
    loop {
        let element = client.find(Locator::Id(id)).await.unwrap();
        match element.text().await {
            Ok(text) => return text.trim().to_owned(),
            Err(error)
                if attempts < 20 && format!("{error:?}").contains("StaleElementReference") =>
            {
                attempts += 1;
            }
            Err(error) => panic!("the text of #{id}: {error:?}"),
        }
    }
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.unwrap() {
        texts.push(element.text().await.unwrap());
    }
    texts
}

/// Resizes the window to the page's height, so one viewport screenshot shows all of it.
async fn full_page_screenshot(client: &Client) -> Vec<u8> {
    let measure =
        "return [document.documentElement.scrollHeight, window.innerHeight, window.outerHeight];";
    for _ in 0..3 {
        let sizes = client.execute(measure, Vec::new()).await.unwrap();
        let [page, inner, outer] = [0, 1, 2].map(|i| sizes[i].as_u64().unwrap_or(0) as u32);
        if page == inner {
            break;
        }
        client
            .set_window_size(WIDTH, page + outer.saturating_sub(inner))
            .await
            .unwrap();
    }
    client.screenshot().await.unwrap()
}

fn chrome_capabilities(profile: &Path) -> Map<String, Value> {
    let mut options = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    let binary = std::env::var_os("CHROME_BIN")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|path| path.exists()));
    if let Some(binary) = binary {
        options["binary"] = json!(binary);
    }
    let mut capabilities = Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities
}

/// A `chromedriver` started for this test on a free port, killed when dropped.
struct ChromeDriver {
    process: Child,
    port: u16,
}

impl ChromeDriver {
    fn start() -> Self {
        let path = chromedriver_path().unwrap_or_else(|| {
            panic!(
                "chromedriver not found: the dashboard's browser test needs Chromium and its \
                 WebDriver. Install the Debian/Ubuntu packages `chromium chromium-driver` \
                 (apt-get install -y chromium chromium-driver), or set CHROMEDRIVER to its path."
            )
        });
        let port = free_port();
        let process = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", path.display()));
        let driver = ChromeDriver { process, port };
        let started = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `CHROMEDRIVER` if set, else `chromedriver` on the `PATH` or where Debian puts it.
fn chromedriver_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("chromedriver"))
                .collect()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([
            PathBuf::from("/usr/bin/chromedriver"),
            PathBuf::from("/usr/lib/chromium/chromedriver"),
        ])
        .find(|path| path.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}
