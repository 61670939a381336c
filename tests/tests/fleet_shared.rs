//! The shared tier (L2) between processes' worth of caches in one test process (each with its
//! own fleet connection to a real `redis-server`): values loaded once for the fleet, read
//! back with their remaining TTL, fenced by invalidations anywhere, and every way a value in
//! Redis can be wrong or absent. Across real OS processes: `fleet_shared_processes.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::AsyncCache;
use cache_redis::Fleet;
use tests::fleet::{connect, until};
use tests::redis_server::RedisServer;
use tokio::sync::Notify;

fn shared(fleet: &Fleet, name: &str) -> AsyncCache<u64, String> {
    AsyncCache::builder()
        .maxsize(10_000)
        .default_ttl(Duration::from_secs(60))
        .fleet(fleet.cache(name).shared())
        .build()
}

async fn fleets(n: usize) -> (RedisServer, Vec<Fleet>) {
    let redis = RedisServer::start();
    let mut fleets = Vec::new();
    for _ in 0..n {
        fleets.push(connect(&redis.url()).await);
    }
    (redis, fleets)
}

const SOON: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_loaded_by_one_process_is_read_from_redis_by_another() {
    let (redis, fleets) = fleets(2).await;
    let (a, b) = (shared(&fleets[0], "users"), shared(&fleets[1], "users"));
    assert_eq!(a.get_with(7, async { "ada".to_owned() }).await, "ada");
    // The store runs on its own: wait until it is in Redis.
    assert!(
        until(SOON, || redis
            .command(&["EXISTS", "test:d:users\u{0}\u{7}"])
            == "1")
        .await
    );
    let b_value = b
        .get_with(7, async { unreachable!("an L2 hit runs no loader") })
        .await;
    assert_eq!(b_value, "ada");
    let (ma, mb) = (a.metrics(), b.metrics());
    assert_eq!((ma.loads, ma.fleet_loads, ma.l2_misses), (1, 1, 1));
    assert_eq!((mb.loads, mb.l2_hits), (0, 1));
    // The value's TTL in Redis is the entry's.
    let pttl: i64 = redis
        .command(&["PTTL", "test:d:users\u{0}\u{7}"])
        .parse()
        .unwrap();
    assert!((55_000..=60_000).contains(&pttl), "PTTL {pttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_over_several_processes_loads_once() {
    let (_redis, fleets) = fleets(3).await;
    let caches: Vec<_> = fleets.iter().map(|f| shared(f, "herd")).collect();
    let loads = Arc::new(AtomicU64::new(0));
    let mut calls = Vec::new();
    for cache in &caches {
        for _ in 0..300 {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            calls.push(tokio::spawn(async move {
                cache
                    .get_with(1, async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        "loaded once".to_owned()
                    })
                    .await
            }));
        }
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), "loaded once");
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "one load for the whole fleet"
    );
    let waits: u64 = caches.iter().map(|c| c.metrics().lease_waits).sum();
    assert!(waits >= 1, "the other processes waited for the leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_began_before_an_invalidation_anywhere_never_stores() {
    let (redis, fleets) = fleets(3).await;
    let (a, b, c) = (
        shared(&fleets[0], "users"),
        shared(&fleets[1], "users"),
        shared(&fleets[2], "users"),
    );
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let slow = {
        let (a, started, release) = (a.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            a.get_with(1, async move {
                started.notify_one();
                release.notified().await;
                "read before the write".to_owned()
            })
            .await
        })
    };
    started.notified().await;
    b.invalidate(&1);
    fleets[1].flush().await;
    release.notify_one();
    assert_eq!(slow.await.unwrap(), "read before the write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        redis.command(&["EXISTS", "test:d:users\u{0}\u{1}"]),
        "0",
        "the stale value reached Redis"
    );
    let fresh = c.get_with(1, async { "fresh".to_owned() }).await;
    assert_eq!(fresh, "fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_removes_the_value_from_redis_for_every_process() {
    let (redis, fleets) = fleets(2).await;
    let (a, b) = (shared(&fleets[0], "users"), shared(&fleets[1], "users"));
    a.get_with(3, async { "v1".to_owned() }).await;
    assert!(
        until(SOON, || redis
            .command(&["EXISTS", "test:d:users\u{0}\u{3}"])
            == "1")
        .await
    );
    assert_eq!(b.get_with(3, async { unreachable!() }).await, "v1");
    a.invalidate(&3);
    fleets[0].flush().await;
    assert!(
        until(SOON, || b.get(&3).is_none()).await,
        "B's L1 copy dropped"
    );
    assert_eq!(redis.command(&["EXISTS", "test:d:users\u{0}\u{3}"]), "0");
    assert_eq!(b.get_with(3, async { "v2".to_owned() }).await, "v2");
    // A clear moves the cache's epoch: every value stored before is a miss.
    assert!(
        until(SOON, || redis
            .command(&["EXISTS", "test:d:users\u{0}\u{3}"])
            == "1")
        .await
    );
    a.clear();
    fleets[0].flush().await;
    assert!(until(SOON, || b.metrics().size == 0).await);
    assert_eq!(b.get_with(3, async { "v3".to_owned() }).await, "v3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_does_not_decode_is_a_counted_miss_and_is_overwritten() {
    let (redis, fleets) = fleets(2).await;
    let a = shared(&fleets[0], "users");
    // Epoch 0, schema 0, and bytes that are no postcard String.
    redis.command(&["SET", "test:d:users\u{0}\u{5}", "0|0|\u{ff}\u{ff}\u{ff}"]);
    assert_eq!(a.get_with(5, async { "loaded".to_owned() }).await, "loaded");
    let m = a.metrics();
    assert_eq!((m.decode_errors, m.loads, m.fleet_loads), (1, 1, 1));
    assert!(
        until(SOON, || redis
            .command(&["GET", "test:d:users\u{0}\u{5}"])
            .ends_with("loaded"))
        .await
    );
    let b = shared(&fleets[1], "users");
    assert_eq!(b.get_with(5, async { unreachable!() }).await, "loaded");

    // A value of another schema version is a miss too, and overwritten.
    let v2: AsyncCache<u64, String> = AsyncCache::builder()
        .fleet(fleets[1].cache("users").shared().version(2))
        .build();
    assert_eq!(
        v2.get_with(5, async { "v2 type".to_owned() }).await,
        "v2 type"
    );
    assert_eq!(v2.metrics().decode_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_lets_one_waiting_process_load_next() {
    let (_redis, fleets) = fleets(3).await;
    let caches: Vec<_> = fleets.iter().map(|f| shared(f, "flaky")).collect();
    let attempts = Arc::new(AtomicU64::new(0));
    let mut calls = Vec::new();
    for cache in &caches {
        for _ in 0..50 {
            let (cache, attempts) = (cache.clone(), Arc::clone(&attempts));
            calls.push(tokio::spawn(async move {
                cache
                    .try_get_with(1, async move {
                        let n = attempts.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        if n == 0 {
                            Err("backend down")
                        } else {
                            Ok("second try".to_owned())
                        }
                    })
                    .await
            }));
        }
    }
    let mut failed = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(value) => assert_eq!(value, "second try"),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one failed load, then one retry"
    );
    assert!(
        (1..=50).contains(&failed),
        "only the failed leader's process saw the error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_holder_vanished_expires_and_a_waiter_loads() {
    let (redis, fleets) = fleets(1).await;
    let cache: AsyncCache<u64, String> = AsyncCache::builder()
        .fleet(
            fleets[0]
                .cache("users")
                .shared()
                .lease(Duration::from_millis(300)),
        )
        .build();
    // A process took the lease and died before storing.
    redis.command(&["SET", "test:l:users\u{0}\u{9}", "dead-process", "PX", "300"]);
    let started = Instant::now();
    assert_eq!(
        cache
            .get_with(9, async { "after the lease".to_owned() })
            .await,
        "after the lease"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "waited {waited:?} for the lease"
    );
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(cache.metrics().loads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reads_redis_once_and_loads_only_what_it_lacks() {
    let (_redis, fleets) = fleets(2).await;
    let (a, b) = (shared(&fleets[0], "batch"), shared(&fleets[1], "batch"));
    for k in 0..50 {
        a.get_with(k, async move { format!("v{k}") }).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let loader = {
        let asked = Arc::clone(&asked);
        b.batch_loader(move |keys: Vec<u64>| {
            let asked = Arc::clone(&asked);
            async move {
                asked.lock().unwrap().extend(keys.iter().copied());
                Ok::<_, String>(
                    keys.into_iter()
                        .map(|k| (k, format!("v{k}")))
                        .collect::<HashMap<_, _>>(),
                )
            }
        })
    };
    let loads = futures_util::future::join_all((0..100).map(|k| loader.load(k))).await;
    assert!(
        loads
            .iter()
            .enumerate()
            .all(|(k, v)| v.as_ref().unwrap().as_deref() == Some(&*format!("v{k}")))
    );
    let mut asked = asked.lock().unwrap().clone();
    asked.sort_unstable();
    assert_eq!(
        asked,
        (50..100).collect::<Vec<u64>>(),
        "only the keys Redis lacked"
    );
    assert_eq!(b.metrics().l2_hits, 50);
    // Written back: a third reader finds all 100.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = shared(&fleets[0], "batch-other");
    drop(c);
    let warm: AsyncCache<u64, String> = AsyncCache::builder()
        .fleet(fleets[0].cache("batch").shared())
        .build();
    let report = warm
        .warmup(
            0..100,
            |k| async move { Ok::<_, String>(format!("loaded {k}")) },
        )
        .await;
    assert_eq!(
        report.skipped.len(),
        100,
        "warmup skips keys already in Redis"
    );
    assert_eq!(warm.get(&99).as_deref(), Some("v99"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_the_size_limit_stays_local() {
    let (redis, fleets) = fleets(1).await;
    let cache: AsyncCache<u64, String> = AsyncCache::builder()
        .fleet(fleets[0].cache("big").shared().max_value_bytes(100))
        .build();
    cache.get_with(1, async { "x".repeat(1_000) }).await;
    cache.get_with(2, async { "small".to_owned() }).await;
    assert!(
        until(SOON, || redis.command(&["EXISTS", "test:d:big\u{0}\u{2}"])
            == "1")
        .await
    );
    assert_eq!(redis.command(&["EXISTS", "test:d:big\u{0}\u{1}"]), "0");
    assert_eq!(cache.metrics().l2_oversize, 1);
    // The lease of the key was released, not left to expire.
    assert_eq!(redis.command(&["EXISTS", "test:l:big\u{0}\u{1}"]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_herd_each_process_loads_once_locally_and_nothing_hangs() {
    let (mut redis, fleets) = fleets(2).await;
    let caches: Vec<_> = fleets.iter().map(|f| shared(f, "herd")).collect();
    let loads = Arc::new(AtomicU64::new(0));
    let mut calls = Vec::new();
    for cache in &caches {
        for _ in 0..200 {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            calls.push(tokio::spawn(async move {
                cache
                    .get_with(1, async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "loaded".to_owned()
                    })
                    .await
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    redis.kill();
    let started = Instant::now();
    for call in calls {
        let value = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("no call hangs");
        assert_eq!(value.unwrap(), "loaded");
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    let loads = loads.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&loads),
        "{loads} loads: at most one per process"
    );
}

// One thread, so the store runs on the connection the first call opened and waits on a request
// Redis never answers (on another thread it would open a connection of its own).
#[tokio::test]
async fn a_store_that_redis_stops_answering_is_given_up_after_the_connect_timeout() {
    let redis = RedisServer::start();
    let proxy = Arc::new(tests::proxy::FaultProxy::start(redis.port()));
    let fleet = Fleet::builder(proxy.url())
        .namespace("test")
        .connect_timeout(Duration::from_millis(200))
        .max_staleness(Duration::from_secs(5)) // a slow heartbeat: the link stays "up"
        .connect()
        .await
        .unwrap();
    let cache: AsyncCache<u64, String> = AsyncCache::builder()
        .fleet(fleet.cache("stuck").shared())
        .build();
    cache.get_with(1, async { "one".to_owned() }).await;
    assert!(
        until(Duration::from_secs(5), || redis
            .command(&["EXISTS", "test:d:stuck\u{0}\u{1}"])
            == "1")
        .await,
        "the first value is stored"
    );
    assert_eq!(fleet.status().shared_write_errors, 0);
    // The read takes the lease; Redis goes silent while the value loads, so its store hangs.
    let silenced = Arc::clone(&proxy);
    let value = cache
        .get_with(2, async move {
            silenced.blackhole();
            "two".to_owned()
        })
        .await;
    assert_eq!(value, "two");
    let stored_at = Instant::now();
    assert!(
        until(Duration::from_secs(5), || fleet
            .status()
            .shared_write_errors
            == 1)
        .await,
        "the stuck store was never given up"
    );
    let waited = stored_at.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "given up after {waited:?}: sooner than the connect timeout (200 ms) from the store"
    );
    assert_eq!(
        cache.get(&2),
        Some("two".to_owned()),
        "still cached locally"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stops_answering_adds_at_most_the_timeout_to_a_call() {
    let redis = RedisServer::start();
    let proxy = tests::proxy::FaultProxy::start(redis.port());
    let fleet = Fleet::builder(proxy.url())
        .namespace("test")
        .max_staleness(Duration::from_secs(5)) // a slow heartbeat: the link stays "up"
        .connect()
        .await
        .unwrap();
    let cache: AsyncCache<u64, String> = AsyncCache::builder()
        .fleet(
            fleet
                .cache("slow")
                .shared()
                .timeout(Duration::from_millis(100)),
        )
        .build();
    // Warm the calling thread's connection, then silence Redis.
    cache.get_with(1, async { "one".to_owned() }).await;
    proxy.blackhole();
    assert!(
        fleet.status().is_connected(),
        "the link has not noticed yet"
    );
    let started = Instant::now();
    let value = cache
        .get_with(2, async { "loaded locally".to_owned() })
        .await;
    let took = started.elapsed();
    assert_eq!(value, "loaded locally");
    assert!(
        took < Duration::from_millis(600),
        "took {took:?}, timeout 100 ms"
    );
    assert!(cache.metrics().fleet_errors >= 1);
}
