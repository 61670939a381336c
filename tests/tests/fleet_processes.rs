//! Fleet coherence across real OS processes: each test spawns `fleet_worker` processes
//! (`src/bin/fleet_worker.rs`), each with its own fleet connection to a real `redis-server`,
//! and its caches loading from a "database" (counters in a second `redis-server`, which a
//! fault never touches). The same guarantees hold for a direct `AsyncCache`, an
//! `#[async_ttl(fleet = ...)]` fn and agent tools.

use std::time::{Duration, Instant};

use tests::proxy::FaultProxy;
use tests::redis_server::RedisServer;
use tests::worker::Worker;

/// A worker process of this test binary's package, with its fleet on `fleet_url`.
fn worker(fleet_url: &str, db: &RedisServer) -> Worker {
    Worker::spawn(env!("CARGO_BIN_EXE_fleet_worker"), fleet_url, &db.url())
}

const CACHES: [&str; 3] = ["direct", "macro", "agent"];

#[test]
fn a_write_in_one_process_reaches_every_other_process_for_every_kind_of_cache() {
    let (fleet, db) = (RedisServer::start(), RedisServer::start());
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&fleet.url(), &db)).collect();
    for (i, cache) in CACHES.into_iter().enumerate() {
        let k = i as u64;
        for worker in &mut workers[1..] {
            assert_eq!(worker.number(&format!("read {cache} {k}")), 0);
            assert_eq!(worker.number(&format!("read {cache} {k}")), 0, "a hit");
        }
        // Returns once Redis acknowledged the invalidation.
        let version = workers[0].number(&format!("write {cache} {k}"));
        assert_eq!(version, 1);
        for worker in &mut workers[1..] {
            let start = Instant::now();
            while worker.number(&format!("read {cache} {k}")) != version {
                assert!(
                    start.elapsed() < Duration::from_secs(2),
                    "{cache}: a process still serves version 0 2 s after the acknowledged write"
                );
            }
            println!("{cache}: fresh after {:?}", start.elapsed());
        }
    }
}

/// Runs `stress` on every worker at once (the first writes, the others read) and returns
/// each reader's (reads, stale, max staleness in µs).
fn stress(workers: &mut [Worker], cache: &str, ms: u64, bound_ms: u64) -> Vec<(u64, u64, u64)> {
    for (i, worker) in workers.iter_mut().enumerate() {
        let role = if i == 0 { "writer" } else { "reader" };
        worker.send(&format!("stress {cache} {role} 16 {ms} {bound_ms}"));
    }
    let writes = workers[0].answer();
    println!("{cache}: {writes}");
    workers[1..]
        .iter_mut()
        .map(|worker| {
            let answer = worker.answer();
            println!("{cache}: {answer}");
            let field = |name: &str| -> u64 {
                answer
                    .split_whitespace()
                    .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {answer:?}"))
            };
            (field("reads"), field("stale"), field("max_stale_us"))
        })
        .collect()
}

#[test]
fn no_process_serves_a_value_older_than_an_acknowledged_invalidation_past_the_bound() {
    // Connected, the bound is the propagation delay: well under a millisecond on loopback.
    // 100 ms leaves room for a 2-core machine running five processes and two servers.
    let (fleet, db) = (RedisServer::start(), RedisServer::start());
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&fleet.url(), &db)).collect();
    for cache in CACHES {
        for (reads, stale, max_stale_us) in stress(&mut workers, cache, 1_500, 100) {
            assert!(reads > 100, "{cache}: only {reads} reads");
            assert_eq!(
                stale, 0,
                "{cache}: {stale} reads served a value older than an invalidation acknowledged \
                 over 100 ms before (worst {max_stale_us} µs)"
            );
        }
    }
}

#[test]
fn under_a_kill_9_of_the_fleet_server_staleness_stays_within_detection_plus_max_staleness() {
    // Detection is two heartbeats (250 ms at a 500 ms bound); entries stored while degraded
    // live at most 500 ms. 1.5 s bounds both with room for a busy machine.
    let (mut fleet, db) = (RedisServer::start(), RedisServer::start());
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&fleet.url(), &db)).collect();
    for (i, worker) in workers.iter_mut().enumerate() {
        let role = if i == 0 { "writer" } else { "reader" };
        worker.send(&format!("stress direct {role} 16 3000 1500"));
    }
    std::thread::sleep(Duration::from_millis(800));
    fleet.kill();
    std::thread::sleep(Duration::from_millis(700));
    fleet.restart();
    let writes = workers[0].answer();
    println!("kill -9: {writes}");
    for worker in &mut workers[1..] {
        let answer = worker.answer();
        println!("kill -9: {answer}");
        assert!(answer.contains(" stale=0 "), "{answer}");
        assert_eq!(
            worker.ask("status"),
            "connected",
            "reconnected after the restart"
        );
    }
}

#[test]
fn under_a_half_open_link_a_reader_serves_stale_values_for_at_most_the_detection_time() {
    // The readers' links go silent while the writer keeps writing and Redis keeps
    // acknowledging: they must notice by themselves (unanswered PINGs) and flush.
    let (fleet, db) = (RedisServer::start(), RedisServer::start());
    let proxy = FaultProxy::start(fleet.port());
    let mut workers = vec![worker(&fleet.url(), &db)];
    workers.extend((0..2).map(|_| worker(&proxy.url(), &db)));
    for (i, worker) in workers.iter_mut().enumerate() {
        let role = if i == 0 { "writer" } else { "reader" };
        worker.send(&format!("stress direct {role} 16 3000 1500"));
    }
    std::thread::sleep(Duration::from_millis(800));
    proxy.blackhole();
    std::thread::sleep(Duration::from_millis(1_000));
    proxy.restore();
    println!("blackhole: {}", workers[0].answer());
    for worker in &mut workers[1..] {
        let answer = worker.answer();
        println!("blackhole: {answer}");
        assert!(answer.contains(" stale=0 "), "{answer}");
    }
    for worker in &mut workers[1..] {
        let start = Instant::now();
        while worker.ask("status") != "connected" {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "reconnects once restored"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
