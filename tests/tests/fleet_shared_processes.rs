//! The shared tier (L2) across real OS processes: `fleet_worker` processes, each with its own
//! fleet connection to a real `redis-server` and its loads reading a "database" (a second
//! server). A herd over four processes loads once; values loaded in one process serve the
//! others; invalidation still wins; a leader killed with `kill -9` mid-load strands nobody.

use std::time::{Duration, Instant};

use tests::redis_server::RedisServer;
use tests::worker::Worker;

fn worker(fleet: &RedisServer, db: &RedisServer) -> Worker {
    Worker::spawn(env!("CARGO_BIN_EXE_fleet_worker"), &fleet.url(), &db.url())
}

const SHARED: [&str; 3] = ["direct-shared", "macro-shared", "agent-shared"];

#[test]
fn a_herd_of_4_processes_times_2500_callers_on_a_cold_key_loads_once() {
    let (fleet, db) = (RedisServer::start(), RedisServer::start());
    let mut workers: Vec<Worker> = (0..4).map(|_| worker(&fleet, &db)).collect();
    for (i, cache) in SHARED.into_iter().enumerate() {
        let k = 100 + i as u64;
        for worker in &mut workers {
            worker.ask("delay 50");
        }
        let started = Instant::now();
        for worker in &mut workers {
            worker.send(&format!("herd {cache} {k} 2500"));
        }
        let loads: u64 = workers
            .iter_mut()
            .map(|worker| worker.answer().parse::<u64>().expect("a number"))
            .sum();
        println!(
            "{cache}: 4 processes x 2,500 callers, 50 ms loader: {loads} load(s) in {:?}",
            started.elapsed()
        );
        assert_eq!(loads, 1, "{cache}: one load for the whole fleet");
    }
}

#[test]
fn a_value_loaded_in_one_process_serves_the_others_until_a_write_anywhere() {
    let (fleet, db) = (RedisServer::start(), RedisServer::start());
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&fleet, &db)).collect();
    for (i, cache) in SHARED.into_iter().enumerate() {
        let k = i as u64;
        assert_eq!(workers[0].number(&format!("read {cache} {k}")), 0);
        let loads_before: Vec<u64> = workers[1..].iter_mut().map(|w| w.number("loads")).collect();
        // The store to Redis runs on its own, so it may take a moment to be there.
        for (worker, before) in workers[1..].iter_mut().zip(&loads_before) {
            assert_eq!(worker.number(&format!("read {cache} {k}")), 0);
            assert!(
                worker.number("loads") - before <= 1,
                "{cache}: at most a load racing the first store"
            );
        }
        // A write in the third process: everyone reads the new version, loaded once more.
        let version = workers[2].number(&format!("write {cache} {k}"));
        for worker in &mut workers[..2] {
            let start = Instant::now();
            while worker.number(&format!("read {cache} {k}")) != version {
                assert!(
                    start.elapsed() < Duration::from_secs(2),
                    "{cache}: still the old value 2 s after the acknowledged write"
                );
            }
        }
    }
}

#[test]
fn with_the_shared_tier_no_process_serves_a_value_older_than_an_acknowledged_invalidation() {
    let (fleet, db) = (RedisServer::start(), RedisServer::start());
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&fleet, &db)).collect();
    for cache in SHARED {
        for (i, worker) in workers.iter_mut().enumerate() {
            let role = if i == 0 { "writer" } else { "reader" };
            worker.send(&format!("stress {cache} {role} 16 1500 100"));
        }
        println!("{cache}: {}", workers[0].answer());
        for worker in &mut workers[1..] {
            let answer = worker.answer();
            println!("{cache}: {answer}");
            assert!(answer.contains(" stale=0 "), "{cache}: {answer}");
        }
    }
}

#[test]
fn a_leader_killed_mid_load_strands_nobody_a_waiter_loads_after_its_lease() {
    // The workers' direct-shared cache has a 1 s lease.
    let (fleet, db) = (RedisServer::start(), RedisServer::start());
    let mut leader = worker(&fleet, &db);
    let mut waiter = worker(&fleet, &db);
    leader.ask("delay 30000");
    leader.send("read direct-shared 7");
    // Until the leader holds the lease.
    let start = Instant::now();
    while fleet.command(&["EXISTS", "workers:l:direct-shared\u{0}\u{7}"]) != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the leader takes the lease"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    waiter.send("read direct-shared 7");
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    leader.kill();
    assert_eq!(waiter.answer(), "0", "the waiter loaded the value itself");
    let took = killed.elapsed();
    println!("leader killed: a waiter loaded {took:?} after the kill");
    assert!(
        took < Duration::from_secs(3),
        "within the lease and a little"
    );
    assert_eq!(waiter.number("loads"), 1);
}
