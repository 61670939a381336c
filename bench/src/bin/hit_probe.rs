//! Instruction counts of one hit, for `valgrind --tool=callgrind` (deterministic, so not moved
//! by the machine's load, unlike the runner's timings).
//!
//! ```sh
//! cargo build --release -p bench --bin hit_probe
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*measured*' \
//!   target/release/hit_probe session 100000 10000 2>&1 | grep Collected
//! ```
//!
//! `--toggle-collect` counts the timed calls only (not the warm-up, whose cost moves with the
//! tables' random seeds): the count divided by `CALLS` is the instructions of one hit. The
//! reads are `ttl` (`#[async_ttl]`), `lru` (`#[async_lru]`), `get` (`AsyncCache::get`),
//! `detached` (`AsyncCache::get_with_detached`), `weighed` (`get` on a cache with a weigher
//! and an eviction listener), `outside` (`#[agent_cache]` outside any session),
//! `no-detection` (in a session with loop detection off), `session` (loop detection on,
//! limits that never trip) and `cart` (a session-scoped `#[agent_cache]` whose resource names
//! its parameter, `cart:{id}`, in such a session), each over 1,000 warm keys (or `KEYS`, the
//! optional third argument: the runner reads 10,000) in a shuffled order, the runner's keys.
//!
//! callgrind's `--cache-sim=yes` counts the misses of the CPU's caches as well, but slows the
//! calls below the rate that starts the coarse clock's thread (`cache-core/src/clock.rs`), so
//! every row with a TTL then counts a read of the OS clock on each hit too.
//!
//! The tables' hashers are seeded at random, so a count moves by a few instructions from one
//! process to the next: compare the medians of several runs, never two single runs.

use std::hint::black_box;

use agent_cache::{AgentCacheSession, OnLoop, agent_cache};
use bench::poll_once;
use cache_core::{AsyncCache, async_lru, async_ttl};

/// Warm keys read in turn, unless the third argument says how many.
const KEYS: usize = 1_000;

#[async_ttl(time_to_live = 3600, maxsize = 20_000)]
async fn ttl_read(id: u64) -> u64 {
    id
}

#[async_lru(maxsize = 20_000)]
async fn lru_read(id: u64) -> u64 {
    id
}

#[agent_cache(resource = "catalog", ttl = 3600, maxsize = 20_000)]
async fn agent_read(id: u64) -> u64 {
    id
}

#[agent_cache(
    resource = "cart:{id}",
    scope = "session",
    ttl = 3600,
    maxsize = 20_000
)]
async fn cart_read(id: u64) -> u64 {
    id
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hit_probe ttl|lru|get|detached|weighed|outside|no-detection|session|cart \
                 CALLS [KEYS]";
    let read = args.next().expect(usage);
    let calls: usize = args.next().and_then(|n| n.parse().ok()).expect(usage);
    let keys: usize = args.next().map_or(KEYS, |n| n.parse().expect(usage));
    // The runner's keys: pseudo-random, read in a shuffled order.
    let (inserted, lookups) = bench::key_sets(keys);
    let calls = || lookups.iter().cycle().take(calls).copied();
    let plain: AsyncCache<u64, u64> = AsyncCache::builder().maxsize(20_000).build();
    let weighed: AsyncCache<u64, u64> = AsyncCache::builder()
        .max_weight(20_000)
        .weigher(|_, _| 1)
        .on_evict(|_, _, _| {})
        .build();
    for &key in &inserted {
        poll_once(ttl_read(key));
        poll_once(lru_read(key));
        poll_once(agent_read(key));
        plain.insert(key, key);
        weighed.insert(key, key);
    }
    let gets = |cache: &AsyncCache<u64, u64>| {
        for key in calls() {
            black_box(cache.get(black_box(&key)));
        }
    };
    let agent_calls = || async move {
        for key in calls() {
            black_box(agent_read(black_box(key)).await);
        }
    };
    let session = |detection| {
        AgentCacheSession::builder()
            .loop_detection(detection)
            .max_tool_repeats(u32::MAX)
            .max_execution_depth(u64::MAX)
            .on_loop(OnLoop::Warn)
            .build()
    };
    if read == "cart" {
        let session = session(true);
        let start = poll_once(session.run(async {
            for &key in &inserted {
                cart_read(key).await;
            }
            let start = std::time::Instant::now();
            measured(|| {
                for key in calls() {
                    black_box(poll_once(cart_read(black_box(key))));
                }
            });
            start
        }))
        .expect("no loop");
        let ns = start.elapsed().as_nanos() as f64 / calls().count() as f64;
        eprintln!("{read}: {ns:.1} ns per call");
        return;
    }
    let start = std::time::Instant::now();
    measured(|| match read.as_str() {
        "ttl" => poll_once(async {
            for key in calls() {
                black_box(ttl_read(black_box(key)).await);
            }
        }),
        "lru" => poll_once(async {
            for key in calls() {
                black_box(lru_read(black_box(key)).await);
            }
        }),
        "get" => gets(&plain),
        "weighed" => gets(&weighed),
        "detached" => poll_once(async {
            for key in calls() {
                let key = black_box(key);
                black_box(plain.get_with_detached(key, async move { key }).await);
            }
        }),
        "outside" => poll_once(agent_calls()),
        "no-detection" => poll_once(session(false).run(agent_calls())).expect("no loop"),
        "session" => poll_once(session(true).run(agent_calls())).expect("no loop"),
        // Warmed up inside the run its session-scoped cache lives in, outside `measured`.
        "cart" => unreachable!("read before `measured`"),
        _ => panic!("{usage}"),
    });
    // Outside valgrind, a rough timing (wall clock, one run): the runner's rows are the figures.
    let ns = start.elapsed().as_nanos() as f64 / calls().count() as f64;
    eprintln!("{read}: {ns:.1} ns per call");
}

/// Runs the timed calls: what `--toggle-collect='*measured*'` counts.
#[inline(never)]
fn measured(calls: impl FnOnce()) {
    calls();
}
