//! The agent layer's costs, each against its reference in one run:
//!
//! - `agent_hit`: an `#[agent_cache]` hit inside a session with loop detection on, against the
//!   same hit through `#[async_ttl]` (target: ratio <= 2.0);
//! - `invalidate_1m`: invalidating a resource that tags 1,000,000 cached entries (target:
//!   under 10 µs), and the same with nothing cached;
//! - `loop_detector`: `LoopDetector::record` in a fresh session and after 1,000,000 calls
//!   (target: constant), with the detector's heap measured by a counting allocator
//!   (target: bounded).

use std::hint::black_box;
use std::time::{Duration, Instant};

use agent_cache::{
    AgentCacheSession, LoopDetector, LoopLimits, OnLoop, agent_cache, agent_invalidator, signature,
};
use bench::alloc::{Counting, live_bytes};
use cache_core::async_ttl;
use criterion::{Criterion, criterion_group, criterion_main};

/// Counts live heap bytes, to show the loop detector's memory stays bounded.
#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEYS: u64 = 10_000;
const TAGGED: u64 = 1_000_000;

#[agent_cache(resource = "catalog", ttl = 3600, maxsize = 20_000)]
async fn agent_read(id: u64) -> u64 {
    id
}

#[async_ttl(time_to_live = 3600, maxsize = 20_000)]
async fn ttl_read(id: u64) -> u64 {
    id
}

#[agent_cache(resource = "inventory", maxsize = 1_100_000)]
async fn inventory(id: u64) -> u64 {
    id
}

#[agent_invalidator(resource = "inventory")]
async fn restock() {}

#[agent_invalidator(resource = "nothing-cached")]
async fn touch_nothing() {}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A session that detects loops but never stops this benchmark: hits of 10,000 keys read
/// round after round are repeats by design.
fn bench_session() -> AgentCacheSession {
    AgentCacheSession::builder()
        .session_id("bench")
        .max_tool_repeats(u32::MAX)
        .max_execution_depth(u64::MAX)
        .on_loop(OnLoop::Warn)
        .build()
}

fn agent_hit(c: &mut Criterion) {
    let runtime = runtime();
    let session = bench_session();
    runtime.block_on(async {
        session
            .run(async {
                for id in 0..KEYS {
                    agent_read(id).await;
                    ttl_read(id).await;
                }
            })
            .await
            .unwrap();
    });
    let mut group = c.benchmark_group("agent_hit");
    group.bench_function("async_ttl hit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for i in 0..iters {
                    black_box(ttl_read(black_box(i % KEYS)).await);
                }
                started.elapsed()
            })
        });
    });
    group.bench_function("agent_cache hit in a session, loop detection on", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                session
                    .run(async {
                        let started = Instant::now();
                        for i in 0..iters {
                            black_box(agent_read(black_box(i % KEYS)).await);
                        }
                        started.elapsed()
                    })
                    .await
                    .unwrap()
            })
        });
    });
    group.finish();
    let m = session.metrics();
    assert_eq!(
        m.misses, KEYS,
        "only the warm-up missed: every timed call was a hit"
    );
}

fn invalidate_1m(c: &mut Criterion) {
    let runtime = runtime();
    let fill = Instant::now();
    let before = agent_cache::metrics().misses;
    runtime.block_on(async {
        for id in 0..TAGGED {
            inventory(id).await;
        }
    });
    assert_eq!(agent_cache::metrics().misses - before, TAGGED);
    eprintln!(
        "filled {TAGGED} entries tagged `inventory` in {:?}",
        fill.elapsed()
    );
    let mut group = c.benchmark_group("invalidate_1m");
    group.bench_function("invalidate a resource tagging 1,000,000 entries", |b| {
        b.iter(|| runtime.block_on(restock()));
    });
    group.bench_function("invalidate a resource tagging nothing", |b| {
        b.iter(|| runtime.block_on(touch_nothing()));
    });
    group.finish();
    // After an invalidation every one of the million entries is stale: a read loads again.
    runtime.block_on(restock());
    let before = agent_cache::metrics().misses;
    runtime.block_on(inventory(7));
    assert_eq!(agent_cache::metrics().misses, before + 1);
}

fn loop_detector(c: &mut Criterion) {
    let mut limits = LoopLimits::default();
    limits.max_tool_repeats = u32::MAX;
    limits.max_execution_depth = u64::MAX;
    let signatures: Vec<u64> = (0..TAGGED).map(|i| signature("read", &i)).collect();
    let before = live_bytes();
    let mut long = LoopDetector::new(limits);
    let after_new = live_bytes() - before;
    for (i, signature) in signatures.iter().enumerate() {
        long.record("read", *signature);
        if [9_999, 99_999, 499_999].contains(&i) {
            eprintln!(
                "loop detector heap after {} calls: {} bytes",
                i + 1,
                live_bytes() - before
            );
        }
    }
    let after_million = live_bytes() - before;
    eprintln!(
        "loop detector heap: {after_new} bytes new, {after_million} bytes after {TAGGED} calls"
    );
    let mut group = c.benchmark_group("loop_detector");
    // Both detectors go on recording new calls, as a long agent session does: the cost per
    // call must not depend on how many calls came before.
    let mut short = LoopDetector::new(limits);
    for signature in &signatures[..10_000] {
        short.record("read", *signature);
    }
    group.bench_function("record, after 10,000 calls", |b| {
        let mut i = 10_000;
        b.iter(|| {
            i += 1;
            black_box(short.record("read", signatures[i % signatures.len()]))
        });
    });
    group.bench_function("record, after 1,000,000 calls", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(long.record("read", signatures[i % signatures.len()]))
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = agent_hit, invalidate_1m, loop_detector
}
criterion_main!(benches);
