//! The fleet under faults, against a real `redis-server`: killed with `kill -9` and restarted
//! on its port, its connections killed, its link blackholed by a proxy (half-open), absent
//! when the process starts. Each test states what the user gets, and checks exactly that:
//! reads never fail, nothing hangs, a process that cannot hear the fleet drops its entries
//! within the detection time and keeps new ones at most `max_staleness`, and invalidations
//! issued meanwhile reach the other processes once the link is back.
//!
//! The fleets here use a 500 ms staleness bound, so a 125 ms heartbeat: a lost link is
//! noticed within about 250 ms. Each test prints the worst staleness it observed.

use std::time::{Duration, Instant};

use cache_core::AsyncCache;
use cache_core::fleet::{Delivered, FleetChannel, FleetLink, Message};
use cache_redis::Fleet;
use tests::fleet::{connect, until};
use tests::proxy::FaultProxy;
use tests::redis_server::{RedisServer, free_port};

fn users(fleet: &Fleet) -> AsyncCache<u64, String> {
    AsyncCache::builder()
        .maxsize(1_000)
        .fleet(fleet.cache("users"))
        .build()
}

/// How long a lost link may take to be noticed and acted on here: two heartbeats (250 ms)
/// plus room for a busy 2-core machine. The figures printed are what was observed.
const DETECTION_BOUND: Duration = Duration::from_secs(2);
const MAX_STALENESS: Duration = Duration::from_millis(500);
const RECONNECT_BOUND: Duration = Duration::from_secs(5);

fn report(test: &str, what: &str, took: Duration) {
    println!("{test}: {what} {:.1} ms", took.as_secs_f64() * 1e3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_leaves_the_process_running_degraded_until_it_comes_up() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let fleet = connect(&url).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "connect waits for one attempt at most"
    );
    let status = fleet.status();
    assert!(!status.is_connected(), "{status:?}");
    let cache = users(&fleet);
    // Reads work, from the loader, with no Redis error anywhere.
    assert_eq!(cache.get_with(1, async { "loaded".into() }).await, "loaded");
    assert_eq!(
        cache.metrics().fleet.map(|f| f.link),
        Some(FleetLink::Degraded)
    );
    // An invalidation is queued, not lost, and the caller does not wait.
    let delivery = fleet.cache("users").publish(Message::Invalidate(&[9]));
    assert_eq!(
        tokio::time::timeout(Duration::from_millis(100), delivery).await,
        Ok(Delivered::Queued)
    );
    // Entries stored while degraded live at most max_staleness, whatever their TTL.
    cache.insert(2, "capped".into());
    tokio::time::sleep(MAX_STALENESS + Duration::from_millis(100)).await;
    assert_eq!(
        cache.get(&2),
        None,
        "an entry outlived max_staleness while degraded"
    );

    let redis = RedisServer::start_on(port);
    let took = Instant::now();
    assert!(until(RECONNECT_BOUND, || fleet.status().is_connected()).await);
    report(
        "down at start",
        "connected after the server came up in",
        took.elapsed(),
    );
    // Connected: the queued invalidation was sent, and entries are no longer capped.
    assert!(until(RECONNECT_BOUND, || fleet.status().queued == 0).await);
    cache.insert(3, "kept".into());
    tokio::time::sleep(MAX_STALENESS + Duration::from_millis(100)).await;
    assert_eq!(cache.get(&3).as_deref(), Some("kept"));
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_flushes_every_process_and_they_recover_after_a_restart() {
    let mut redis = RedisServer::start();
    let (a, b) = (connect(&redis.url()).await, connect(&redis.url()).await);
    let (users_a, users_b) = (users(&a), users(&b));
    users_b.insert(1, "before the kill".into());
    b.flush().await;

    let killed = Instant::now();
    redis.kill();
    assert!(until(DETECTION_BOUND, || users_b.get(&1).is_none()).await);
    let detection = killed.elapsed();
    report("kill -9", "entries dropped after the kill in", detection);
    assert!(!b.status().is_connected());
    // Reads keep working, locally; writes keep working and are queued.
    assert_eq!(users_b.get_with(1, async { "local".into() }).await, "local");
    users_a.invalidate(&5);
    let queued_at = a.status().queued;
    assert!(
        queued_at >= 1,
        "an invalidation issued during the outage is queued"
    );
    // Stored during the outage: capped.
    users_b.insert(2, "capped".into());
    tokio::time::sleep(MAX_STALENESS + Duration::from_millis(100)).await;
    assert_eq!(users_b.get(&2), None);

    redis.restart();
    assert!(until(RECONNECT_BOUND, || a.status().is_connected()).await);
    assert!(until(RECONNECT_BOUND, || b.status().is_connected()).await);
    assert!(until(RECONNECT_BOUND, || a.status().queued == 0).await);
    assert!(b.status().reconnects >= 1 && a.status().reconnects >= 1);
    // Coherent again.
    users_b.insert(7, "old".into());
    b.flush().await;
    users_a.invalidate(&7);
    a.flush().await;
    assert!(until(Duration::from_secs(2), || users_b.get(&7).is_none()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_is_noticed_at_once_and_replaced() {
    let redis = RedisServer::start();
    let (a, b) = (connect(&redis.url()).await, connect(&redis.url()).await);
    let (users_a, users_b) = (users(&a), users(&b));
    users_b.insert(1, "before".into());
    let flushes = users_b.metrics().fleet_flushes;
    let killed = Instant::now();
    // Every client's connection but this command's own (the fleet's link subscribes to the
    // shared tier's wake-ups, which makes it a pub/sub client to Redis).
    redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    redis.command(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(until(DETECTION_BOUND, || users_b.get(&1).is_none()).await);
    report("CLIENT KILL", "entries dropped in", killed.elapsed());
    assert!(until(RECONNECT_BOUND, || b.status().is_connected()).await);
    assert!(until(RECONNECT_BOUND, || a.status().is_connected()).await);
    report("CLIENT KILL", "reconnected in", killed.elapsed());
    // Flushed on losing the link and again on regaining it.
    assert!(users_b.metrics().fleet_flushes >= flushes + 2);
    users_b.insert(7, "old".into());
    b.flush().await;
    users_a.invalidate(&7);
    a.flush().await;
    assert!(until(Duration::from_secs(2), || users_b.get(&7).is_none()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_link_is_found_by_unanswered_pings() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port());
    let a = connect(&redis.url()).await;
    let b = connect(&proxy.url()).await;
    assert!(b.status().is_connected());
    let (users_a, users_b) = (users(&a), users(&b));
    users_b.insert(1, "served while the link dies".into());

    let cut = Instant::now();
    proxy.blackhole();
    // A's invalidation reaches Redis, but not B: B must find out by itself and flush.
    users_a.invalidate(&1);
    a.flush().await;
    let acknowledged = Instant::now();
    assert!(until(DETECTION_BOUND, || users_b.get(&1).is_none()).await);
    let stale_for = acknowledged.elapsed();
    report("blackhole", "link loss found after", cut.elapsed());
    report(
        "blackhole",
        "worst staleness past an acknowledged invalidation",
        stale_for,
    );
    let status = b.status();
    assert!(!status.is_connected(), "{status:?}");
    match &status.link {
        cache_redis::Link::Degraded { reason, .. } => {
            assert!(
                reason.contains("half-open") || reason.contains("timed out"),
                "{reason}"
            )
        }
        connected => panic!("still {connected:?}"),
    }
    // Nothing hangs while the link is silent: reads, writes and invalidations return at once.
    let quick = Instant::now();
    assert_eq!(users_b.get_with(2, async { "local".into() }).await, "local");
    users_b.invalidate(&3);
    users_b.clear();
    assert!(quick.elapsed() < Duration::from_millis(100));
    users_b.insert(4, "capped".into());
    tokio::time::sleep(MAX_STALENESS + Duration::from_millis(100)).await;
    assert_eq!(users_b.get(&4), None);

    proxy.restore();
    let restored = Instant::now();
    assert!(until(RECONNECT_BOUND, || b.status().is_connected()).await);
    report(
        "blackhole",
        "reconnected after the link came back in",
        restored.elapsed(),
    );
    assert!(until(RECONNECT_BOUND, || b.status().queued == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_issued_during_an_outage_reach_the_others_after_it() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port());
    let a = connect(&proxy.url()).await; // A's link fails; B stays connected
    let b = connect(&redis.url()).await;
    let (users_a, users_b) = (users(&a), users(&b));
    proxy.sever();
    proxy.blackhole();
    assert!(until(DETECTION_BOUND, || !a.status().is_connected()).await);
    // B caches while A is away.
    for k in 0..20 {
        users_b.insert(k, format!("b{k}"));
    }
    b.flush().await;
    // A invalidates during its outage: queued, and the call returns at once.
    let deliveries: Vec<_> = (0..10u64)
        .map(|k| {
            users_a.invalidate(&k);
            a.cache("users")
                .publish(Message::Invalidate(&postcard_u64(k)))
        })
        .collect();
    for delivery in deliveries {
        assert_eq!(delivery.await, Delivered::Queued);
    }
    assert_eq!(users_b.metrics().size, 20, "B cannot have heard yet");
    proxy.restore();
    let restored = Instant::now();
    assert!(
        until(RECONNECT_BOUND, || (0..10)
            .all(|k| users_b.get(&k).is_none()))
        .await,
        "B still serves keys A invalidated during its outage"
    );
    report(
        "outage",
        "queued invalidations reached B after the link came back in",
        restored.elapsed(),
    );
    assert!(
        (10..20).all(|k| users_b.get(&k).is_some()),
        "only those keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_queue_turns_into_a_clear_of_the_cache_concerned() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port());
    let a = Fleet::builder(proxy.url())
        .namespace("test")
        .max_staleness(MAX_STALENESS)
        .max_queued(10)
        .connect()
        .await
        .unwrap();
    let b = connect(&redis.url()).await;
    let (users_a, users_b) = (users(&a), users(&b));
    let orders_b: AsyncCache<u64, String> = AsyncCache::builder().fleet(b.cache("orders")).build();
    proxy.sever();
    proxy.blackhole();
    assert!(until(DETECTION_BOUND, || !a.status().is_connected()).await);
    for k in 0..100 {
        users_b.insert(k, "b".into());
    }
    orders_b.insert(1, "kept".into());
    b.flush().await;
    for k in 0..50 {
        users_a.invalidate(&k);
    }
    let status = a.status();
    assert!(status.overflows >= 1 && status.queued <= 10, "{status:?}");
    proxy.restore();
    // The 50 invalidations arrive as one clear: every users entry goes, orders stays.
    assert!(until(RECONNECT_BOUND, || users_b.metrics().size == 0).await);
    assert_eq!(orders_b.get(&1).as_deref(), Some("kept"));
}

#[test]
fn the_fleet_outlives_the_runtime_that_connected_it() {
    let redis = RedisServer::start();
    // Connected from a runtime that then shuts down, as each `#[tokio::test]` does.
    let connect_in_a_runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(connect(&redis.url()))
    };
    let (a, b) = (connect_in_a_runtime(), connect_in_a_runtime());
    let (users_a, users_b) = (users(&a), users(&b));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        users_b.insert(1, "old".into());
        b.flush().await;
        users_a.invalidate(&1);
        a.flush().await;
        assert!(until(Duration::from_secs(2), || users_b.get(&1).is_none()).await);
    });
}

/// A `u64` key as the fleet encodes it (postcard: a varint).
fn postcard_u64(mut k: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (k & 0x7f) as u8;
        k >>= 7;
        if k == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
