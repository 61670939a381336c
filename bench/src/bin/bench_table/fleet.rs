//! The fleet tier (cache-redis) against a real `redis-server` the runner starts on a free
//! loopback port: the L1 hit of a fleet cache against the same cache without a fleet, the
//! propagation delay of an invalidation from this process to another OS process (the runner
//! itself, started with `--fleet-peer`), sustained invalidations from one process, and the
//! detection time and worst staleness under faults.
//!
//! Needs `redis-server` (`cargo xtask setup` installs it); without it the rows say so.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cache_core::AsyncCache;
use cache_redis::Fleet;
use tests::proxy::FaultProxy;
use tests::redis_server::RedisServer;

use crate::Settings;
use crate::peers::{CpuTimer, key_sets, median};
use crate::report::Table;

pub const HIT: &str = "fleet: L1 hit, 1 thread (ns per hit)";
pub const HIT_LOCAL: &str = "AsyncCache::get, no fleet";
pub const HIT_FLEET: &str = "AsyncCache::get, fleet cache (connected)";
pub const PROPAGATION: &str = "fleet: invalidation in A until B stops serving (µs)";
pub const P50: &str = "p50, A and B separate processes";
pub const P99: &str = "p99, A and B separate processes";
pub const SUSTAINED: &str = "fleet: sustained invalidations from one process (k/s)";
pub const DETECTION: &str = "fleet: fault detection (ms)";
pub const STALENESS: &str = "fleet: worst staleness past an acknowledged invalidation (ms)";

const MAX_STALENESS: Duration = Duration::from_millis(500);

pub fn run(settings: &Settings, table: &mut Table) {
    if !RedisServer::is_installed() {
        table.push_noted(
            HIT,
            HIT_FLEET,
            None,
            "ns",
            "redis-server not found: `cargo xtask setup` installs it",
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let redis = RedisServer::start();
    let fleet = runtime.block_on(connect(&redis.url()));
    l1_hit(settings, table, &runtime, &fleet);
    let invalidations = if settings.rounds >= 7 { 10_000 } else { 1_000 };
    propagation(table, &redis, &fleet, invalidations);
    sustained(table, &runtime, &fleet, invalidations * 10);
    drop(fleet);
    faults(table, &runtime);
}

async fn connect(url: &str) -> Fleet {
    Fleet::builder(url)
        .namespace("bench")
        .max_staleness(MAX_STALENESS)
        .connect()
        .await
        .expect("a valid URL")
}

/// The same warm hits on a cache without a fleet and on a connected fleet cache, in turns.
fn l1_hit(
    settings: &Settings,
    table: &mut Table,
    runtime: &tokio::runtime::Runtime,
    fleet: &Fleet,
) {
    let (inserted, lookups) = key_sets();
    let build = |fleet: Option<&Fleet>| -> AsyncCache<u64, u64> {
        let builder = AsyncCache::builder().maxsize(inserted.len() as u64);
        match fleet {
            Some(fleet) => builder.fleet(fleet.cache("hit")).build(),
            None => builder.build(),
        }
    };
    let (local, attached) = (build(None), build(Some(fleet)));
    for &key in &inserted {
        local.insert(key, key);
        attached.insert(key, key);
    }
    // The inserts' invalidations sent, so the link is idle while hits are timed.
    runtime.block_on(fleet.flush());
    assert!(
        fleet.status().is_connected(),
        "the fleet row needs a live link"
    );
    // The hitting thread's CPU time, as every single-thread row of the runner.
    let time = |cache: &AsyncCache<u64, u64>| {
        let timer = CpuTimer::start();
        for key in lookups.iter().cycle().take(settings.ops) {
            std::hint::black_box(cache.get(std::hint::black_box(key)));
        }
        timer.elapsed().as_nanos() as f64 / settings.ops as f64
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..settings.rounds * 3 {
        a.push(time(&local));
        b.push(time(&attached));
    }
    assert_eq!(attached.metrics().misses, 0, "every timed call a hit");
    table.push(HIT, HIT_LOCAL, median(a), "ns");
    table.push(HIT, HIT_FLEET, median(b), "ns");
}

/// `n` invalidations from this process, each timed until the peer process (the runner with
/// `--fleet-peer`) sees its entry gone; the peer holds all `n` keys.
fn propagation(table: &mut Table, redis: &RedisServer, fleet: &Fleet, n: u64) {
    let cache: AsyncCache<u64, u64> = AsyncCache::builder()
        .unbounded()
        .fleet(fleet.cache("propagation"))
        .build();
    let mut peer = Command::new(std::env::current_exe().expect("the runner's path"))
        .args(["--fleet-peer", &redis.url(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the peer starts");
    let mut to_peer = peer.stdin.take().expect("piped");
    let mut from_peer = BufReader::new(peer.stdout.take().expect("piped")).lines();
    let mut line = || from_peer.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(line(), "ready", "the peer holds its keys");
    let mut delays = Vec::with_capacity(n as usize);
    for k in 0..n {
        let sent = now_ns();
        cache.invalidate(&k);
        let seen: u64 = line().parse().expect("the peer's timestamp");
        delays.push(seen.saturating_sub(sent) as f64 / 1e3);
    }
    let _ = writeln!(to_peer, "done");
    let _ = peer.wait();
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    let note = format!("{n} invalidations, loopback");
    table.push_noted(PROPAGATION, P50, Some(at(0.50)), "µs", note.clone());
    table.push_noted(PROPAGATION, P99, Some(at(0.99)), "µs", note);
}

/// The peer process of [`propagation`]: holds keys `0..n` in a fleet cache and reports, for
/// each in order, the wall-clock time it saw it invalidated.
pub fn peer(url: &str, n: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let fleet = runtime.block_on(connect(url));
    let cache: AsyncCache<u64, u64> = AsyncCache::builder()
        .unbounded()
        .fleet(fleet.cache("propagation"))
        .build();
    for k in 0..n {
        cache.insert(k, k);
    }
    runtime.block_on(fleet.flush());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    for k in 0..n {
        while cache.contains_key(&k) {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        let _ = writeln!(out, "{}", now_ns());
        let _ = out.flush();
    }
    let mut done = String::new();
    let _ = std::io::stdin().read_line(&mut done);
}

/// `n` invalidations of distinct keys issued at once, until Redis acknowledged the last.
fn sustained(table: &mut Table, runtime: &tokio::runtime::Runtime, fleet: &Fleet, n: u64) {
    let cache: AsyncCache<u64, u64> = AsyncCache::builder().fleet(fleet.cache("burst")).build();
    let start = Instant::now();
    for k in 0..n {
        cache.invalidate(&k);
    }
    runtime.block_on(fleet.flush());
    let rate = n as f64 / start.elapsed().as_secs_f64() / 1e3;
    table.push_noted(
        SUSTAINED,
        "invalidate, then Fleet::flush",
        Some(rate),
        "k/s",
        format!("{n} keys, acknowledged by Redis"),
    );
}

/// The link's faults, five trials each: how long until the process notices (and has flushed),
/// and for a half-open link, the worst time a value was served past an invalidation Redis had
/// acknowledged.
fn faults(table: &mut Table, runtime: &tokio::runtime::Runtime) {
    const TRIALS: usize = 5;
    let (mut killed, mut client_kill, mut half_open, mut stale) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..TRIALS {
        runtime.block_on(async {
            // kill -9 of the server.
            let mut redis = RedisServer::start();
            let b = connect(&redis.url()).await;
            let cache = watched(&b);
            let at = Instant::now();
            redis.kill();
            killed.push(gone(&cache, at).await);

            // The server kills the connection.
            redis.restart();
            let b = connect(&redis.url()).await;
            let cache = watched(&b);
            let at = Instant::now();
            // The link is a pub/sub client (it subscribes to the shared tier's wake-ups).
            redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
            client_kill.push(gone(&cache, at).await);

            // A half-open link: B's traffic vanishes while A's invalidation is acknowledged.
            let proxy = FaultProxy::start(redis.port());
            let a = connect(&redis.url()).await;
            let b = connect(&proxy.url()).await;
            let cache = watched(&b);
            let cut = Instant::now();
            proxy.blackhole();
            let writer: AsyncCache<u64, u64> =
                AsyncCache::builder().fleet(a.cache("watched")).build();
            writer.invalidate(&1);
            a.flush().await;
            let acknowledged = Instant::now();
            half_open.push(gone(&cache, cut).await);
            stale.push(acknowledged.elapsed().as_secs_f64() * 1e3);
        });
    }
    let worst = |samples: Vec<f64>| samples.into_iter().fold(0.0, f64::max);
    let note = format!("worst of {TRIALS}; heartbeat 125 ms (max_staleness 500 ms)");
    table.push_noted(
        DETECTION,
        "kill -9 of redis-server",
        Some(worst(killed)),
        "ms",
        note.clone(),
    );
    table.push_noted(
        DETECTION,
        "CLIENT KILL of the connection",
        Some(worst(client_kill)),
        "ms",
        note.clone(),
    );
    table.push_noted(
        DETECTION,
        "half-open link (blackholed)",
        Some(worst(half_open)),
        "ms",
        note.clone(),
    );
    table.push_noted(
        STALENESS,
        "half-open link (blackholed)",
        Some(worst(stale)),
        "ms",
        note,
    );
}

/// A connected fleet cache of `fleet` holding key 1.
fn watched(fleet: &Fleet) -> AsyncCache<u64, u64> {
    assert!(fleet.status().is_connected());
    let cache = AsyncCache::builder().fleet(fleet.cache("watched")).build();
    cache.insert(1, 1);
    cache
}

/// Milliseconds from `since` until key 1 is gone from `cache` (at most 10 s).
async fn gone(cache: &AsyncCache<u64, u64>, since: Instant) -> f64 {
    while cache.contains_key(&1) && since.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
    since.elapsed().as_secs_f64() * 1e3
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
