//! Fleet coherence between two processes' worth of caches in one test process: each side has
//! its own `Fleet`, so its own connection to a real `redis-server`, exactly as two processes
//! would. The same guarantees across real OS processes are in `fleet_processes.rs`; what
//! happens under faults is in `fleet_faults.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cache_core::fleet::{Delivered, FleetChannel, FleetLink, Message};
use cache_core::{AsyncCache, Engine};
use cache_redis::Fleet;
use tests::fleet::{connect, until};
use tests::redis_server::RedisServer;
use tokio::sync::Notify;

fn cache<K>(fleet: &Fleet, name: &str, engine: Engine) -> AsyncCache<K, String>
where
    K: std::hash::Hash
        + Eq
        + Clone
        + Send
        + Sync
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static,
{
    AsyncCache::builder()
        .maxsize(1_000)
        .engine(engine)
        .fleet(fleet.cache(name))
        .build()
}

/// Two processes' fleets on one fresh server.
async fn two_fleets() -> (RedisServer, Fleet, Fleet) {
    let redis = RedisServer::start();
    let a = connect(&redis.url()).await;
    let b = connect(&redis.url()).await;
    assert!(a.status().is_connected() && b.status().is_connected());
    (redis, a, b)
}

const SOON: Duration = Duration::from_secs(2);

tests::test_on_every_engine!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn an_invalidation_in_one_process_removes_the_entry_in_the_other);
async fn an_invalidation_in_one_process_removes_the_entry_in_the_other(engine: Engine) {
    let (_redis, a, b) = two_fleets().await;
    let (users_a, users_b) = (
        cache::<u64>(&a, "users", engine),
        cache::<u64>(&b, "users", engine),
    );
    users_b.insert(7, "old".into());
    b.flush().await;
    assert!(until(SOON, || users_a.metrics().remote_invalidations == 1).await);
    assert_eq!(users_b.get(&7).as_deref(), Some("old"));

    users_a.invalidate(&7);
    a.flush().await;
    // Counted once applied: the count says the entry is gone.
    assert!(
        until(SOON, || users_b.metrics().remote_invalidations == 1).await,
        "B has not applied A's acknowledged invalidation after 2 s"
    );
    assert_eq!(users_b.get(&7), None);
    let m = users_b.metrics();
    assert_eq!(m.fleet.map(|f| f.link), Some(FleetLink::Connected));
    // A cache of another name is not touched.
    let orders_b = cache::<u64>(&b, "orders", engine);
    orders_b.insert(7, "kept".into());
    users_a.invalidate(&7);
    a.flush().await;
    assert!(until(SOON, || users_b.metrics().remote_invalidations == 2).await);
    assert_eq!(orders_b.get(&7).as_deref(), Some("kept"));
}

tests::test_on_every_engine!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn clear_and_insert_reach_the_other_process);
async fn clear_and_insert_reach_the_other_process(engine: Engine) {
    let (_redis, a, b) = two_fleets().await;
    let (users_a, users_b) = (
        cache::<u64>(&a, "users", engine),
        cache::<u64>(&b, "users", engine),
    );
    for k in 0..10 {
        users_b.insert(k, format!("b{k}"));
    }
    b.flush().await;
    assert!(until(SOON, || users_a.metrics().remote_invalidations == 10).await);
    users_a.clear();
    a.flush().await;
    assert!(until(SOON, || users_b.metrics().size == 0).await);

    // An insert is a write: the other process drops its (now different) value.
    users_b.insert(1, "b1".into());
    b.flush().await;
    // Counted once applied: A's insert after the count is not undone by B's message.
    assert!(until(SOON, || users_a.metrics().remote_invalidations == 11).await);
    users_a.insert(1, "a1".into());
    a.flush().await;
    assert!(until(SOON, || users_b.get(&1).is_none()).await);
    assert_eq!(
        users_a.get(&1).as_deref(),
        Some("a1"),
        "its own insert stays"
    );
}

tests::test_on_every_engine!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn a_remote_invalidation_fences_a_load_in_flight);
async fn a_remote_invalidation_fences_a_load_in_flight(engine: Engine) {
    let (_redis, a, b) = two_fleets().await;
    let (users_a, users_b) = (
        cache::<u64>(&a, "users", engine),
        cache::<u64>(&b, "users", engine),
    );
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let load = {
        let (users_b, started, release) = (users_b.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            users_b
                .get_with(7, async {
                    started.notify_one();
                    release.notified().await;
                    "read before the write".to_owned()
                })
                .await
        })
    };
    started.notified().await;
    users_a.invalidate(&7);
    a.flush().await;
    assert!(until(SOON, || users_b.metrics().remote_invalidations == 1).await);
    release.notify_one();
    // The caller already waiting gets the value; the cache does not keep it.
    assert_eq!(load.await.unwrap(), "read before the write");
    assert_eq!(users_b.get(&7), None);
    assert_eq!(users_b.get_with(7, async { "fresh".into() }).await, "fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_invalidation_fences_a_batch_load_in_flight() {
    let (_redis, a, b) = two_fleets().await;
    let users_a = cache::<u64>(&a, "users", Engine::default());
    let users_b = cache::<u64>(&b, "users", Engine::default());
    let release = Arc::new(Notify::new());
    let batches = Arc::new(AtomicU64::new(0));
    let loader = {
        let (release, batches) = (release.clone(), batches.clone());
        users_b.batch_loader(move |ids: Vec<u64>| {
            let (release, batches) = (release.clone(), batches.clone());
            async move {
                batches.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                Ok::<_, String>(ids.into_iter().map(|id| (id, format!("v{id}"))).collect())
            }
        })
    };
    let waiting = {
        let loader = loader.clone();
        tokio::spawn(async move { tokio::join!(loader.load(1), loader.load(2)) })
    };
    assert!(until(SOON, || batches.load(Ordering::SeqCst) == 1).await);
    users_a.invalidate(&1);
    a.flush().await;
    assert!(until(SOON, || users_b.metrics().remote_invalidations == 1).await);
    release.notify_one();
    let (one, two) = waiting.await.unwrap();
    assert_eq!(
        (one.unwrap(), two.unwrap()),
        (Some("v1".into()), Some("v2".into()))
    );
    assert_eq!(users_b.get(&1), None, "the fenced key is not stored");
    assert_eq!(users_b.get(&2).as_deref(), Some("v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_key_invalidated_by_str_reaches_the_other_process() {
    let (_redis, a, b) = two_fleets().await;
    let (names_a, names_b) = (
        cache::<String>(&a, "names", Engine::default()),
        cache::<String>(&b, "names", Engine::default()),
    );
    names_b.insert("ada".into(), "Ada".into());
    b.flush().await;
    names_a.invalidate("ada"); // a `&str`, not a `&String`
    a.flush().await;
    assert!(until(SOON, || names_b.get("ada").is_none()).await);
    assert_eq!(names_b.metrics().fleet_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borrowed_key_that_cannot_be_encoded_clears_the_cache_everywhere() {
    let (_redis, a, b) = two_fleets().await;
    let paths_a = cache::<Vec<u64>>(&a, "paths", Engine::default());
    let paths_b = cache::<Vec<u64>>(&b, "paths", Engine::default());
    paths_b.insert(vec![1, 2], "x".into());
    paths_b.insert(vec![3], "y".into());
    b.flush().await;
    // `[u64]` is a borrowed form of `Vec<u64>` with no encoding of its own: never stale.
    paths_a.invalidate(&[1u64, 2][..]);
    a.flush().await;
    assert!(until(SOON, || paths_b.metrics().size == 0).await);
    assert_eq!(paths_a.metrics().fleet_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invalidations_of_one_key_by_two_processes_reach_both() {
    // Redis remembers one writer per key and event-loop cycle in BCAST mode; per-writer
    // markers keep both processes told even when they write in the same cycle.
    let (_redis, a, b) = two_fleets().await;
    let users_a = cache::<u64>(&a, "users", Engine::default());
    let users_b = cache::<u64>(&b, "users", Engine::default());
    const ROUNDS: u64 = 2_000;
    for k in 0..ROUNDS {
        users_a.invalidate(&k);
        users_b.invalidate(&k);
    }
    tokio::join!(a.flush(), b.flush());
    let both = || {
        users_a.metrics().remote_invalidations == ROUNDS
            && users_b.metrics().remote_invalidations == ROUNDS
    };
    assert!(
        until(SOON, both).await,
        "remote invalidations: A {} and B {} of {ROUNDS}",
        users_a.metrics().remote_invalidations,
        users_b.metrics().remote_invalidations
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_of_the_whole_database_flushes_every_fleet_cache() {
    let (redis, _a, b) = two_fleets().await;
    let users_b = cache::<u64>(&b, "users", Engine::default());
    let orders_b = cache::<u64>(&b, "orders", Engine::default());
    users_b.insert(1, "u".into());
    orders_b.insert(1, "o".into());
    redis.command(&["FLUSHALL"]); // a NULL invalidation to every tracking client
    assert!(
        until(SOON, || users_b.metrics().size + orders_b.metrics().size
            == 0)
        .await
    );
    assert_eq!(users_b.metrics().fleet_flushes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_that_does_not_decode_is_counted_and_changes_nothing() {
    let (_redis, a, b) = two_fleets().await;
    let users_b = cache::<u64>(&b, "users", Engine::default());
    users_b.insert(1, "kept".into());
    // Another deploy's key type: a `String` key published on the `u64` cache's channel.
    let foreign = a.cache("users");
    let delivered = foreign
        .publish(Message::Invalidate(&[0xff, 0xff, 0xff]))
        .await;
    assert_eq!(delivered, Delivered::Acknowledged);
    assert!(until(SOON, || users_b.metrics().fleet_errors == 1).await);
    assert_eq!(users_b.get(&1).as_deref(), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_resolves_once_redis_acknowledged_it() {
    let redis = RedisServer::start();
    // A long staleness bound, so a heartbeat of 2.5 s: on a machine so loaded that the link's
    // thread misses two 125 ms heartbeats, the link degrades and a delivery is (rightly)
    // `Queued`, which is not what this test is about.
    let a = Fleet::builder(redis.url())
        .namespace("test")
        .max_staleness(Duration::from_secs(10))
        .connect()
        .await
        .expect("a valid URL");
    assert!(a.status().is_connected());
    let channel = a.cache("users");
    let deliveries: Vec<_> = (0u8..100)
        .map(|k| channel.publish(Message::Invalidate(&[k])))
        .collect();
    for delivery in deliveries {
        assert_eq!(delivery.await, Delivered::Acknowledged);
    }
    let status = a.status();
    assert_eq!(
        (status.issued, status.acknowledged, status.queued),
        (100, 100, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_keys_invalidated_at_once_all_reach_the_other_process() {
    let (_redis, a, b) = two_fleets().await;
    let users_a = cache::<u64>(&a, "users", Engine::default());
    let users_b: AsyncCache<u64, String> = AsyncCache::builder()
        .maxsize(20_000)
        .fleet(b.cache("users"))
        .build();
    let expected: HashMap<u64, String> = (0..10_000).map(|k| (k, k.to_string())).collect();
    for (k, v) in &expected {
        users_b.insert(*k, v.clone());
    }
    b.flush().await;
    assert!(until(SOON, || users_a.metrics().remote_invalidations == 10_000).await);
    for k in 0..10_000u64 {
        users_a.invalidate(&k);
    }
    a.flush().await;
    assert!(
        until(Duration::from_secs(10), || {
            let m = users_b.metrics();
            m.remote_invalidations == 10_000 && m.size == 0
        })
        .await
    );
}
